"""The handler pipeline (LUNA's luna-handlers side): generate events and verify.

Modules, in the order a request meets them:
- `service`: PipelineService, the thin gRPC adapter; `wiring`: its stubs and cores in the app.
- `generate`: GenerateEvents (policies, event fields, Detect, match, tags, storage, save).
- `verify`: Verify and VerifyRaw with a verifier's policies.
- `units`: detections -> what becomes one event (one per face, or one aggregated).
- `match`: match_policy entries against faces (MatchFaces) or events (MatchRaw).
- `filters`: detect_policy filters and LUNA's complex filters.
- `store`: storage_policy, one function per policy (samples, images, attribute, face,
  notification, event).
- `render`: protobuf -> the LUNA JSON events and answers show.
- `callbacks`: a handler's HTTP callbacks.
- `shared`: the stubs, the undo log of writes, Detect and the descriptor check.

The pipeline reaches the event store only through the cores' public calls (`Events.save`,
`Events.descriptors`, `candidates.select_event_candidates`, `Handlers.get_own`,
`Verifiers.get`), each of which an EventsService/HandlersService/VerifiersService RPC
serves; nothing in the store imports the pipeline. docs/DECISIONS.md says why it stays in the
events process.
"""
