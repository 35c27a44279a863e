"""The matcher proxy's plain core: which shards a match goes to, what each is asked, and the
exact merge of their answers (no network here; `services.matcher.proxy` is the adapter).

- A match within one account (the scope's account, or `filter_account_id` when it sees all)
  goes to the shard that owns the account; an account keyed by face id (a spread account) and
  a match over every account go to every routed shard.
- Each shard resolves the references itself (the same faces/attributes/events reads, so the
  same results and errors) and answers its own top `limit` of each candidate set. The merge
  takes the union per (result, candidate set), drops duplicates by face id (a face two shards
  hold while a partition moves, the same descriptor on both), orders by similarity with the
  face id breaking ties, and cuts to `limit`: every face of the true top k is in its holding
  shard's top k, so the merge is exact.
- Event candidates are no shard's partition: only the first target is asked for them.
- Read-your-writes over several shards: the first target reads the changes stream's position
  (as a lone matcher does, overlapped with its search) and reports it; the others answer at
  once and report what they had applied; the router asks again one below that position.
"""

from __future__ import annotations

from collections.abc import Sequence

from luna.matcher.v1 import matcher_pb2

from services.matcher.shard.partition import ShardMap

DEFAULT_LIMIT = 3  # LUNA's default, as the matcher's


def search_account(scope: object) -> str | None:
    """Whose faces a match may touch; None: every account (as the matcher's own rule)."""
    if scope.see_all:  # type: ignore[attr-defined]
        return scope.filter_account_id or None  # type: ignore[attr-defined]
    return scope.account_id  # type: ignore[attr-defined]


def targets(shard_map: ShardMap, request: matcher_pb2.MatchFacesRequest) -> list[int]:
    """Routed shard ids a match is sent to, in shard order."""
    routed = sorted(s.id for s in shard_map.routed())
    account = search_account(request.scope)
    fan_out = account is None or account in shard_map.spread_accounts
    if not request.candidates:  # event candidates only: one shard answers it
        return routed[:1] if fan_out else [shard_map.owner(account or "")]
    return routed if fan_out else [shard_map.owner(account or "")]


def requests_for(
    request: matcher_pb2.MatchFacesRequest, shard_ids: Sequence[int]
) -> dict[int, matcher_pb2.MatchFacesRequest]:
    """What each target is asked. The first: the request itself (with the event candidate
    sets); it reads the changes stream's position for read-your-writes, as a lone matcher,
    and reports it (`stream_position`). The others: a copy without event candidates and with
    `min_applied_seq=0`: they answer at once from what they applied and say which sequence
    that was (`applied_seq`), so the router asks again one that is below the position. A
    request that brings its own `min_applied_seq` goes to every target as it is."""
    if len(shard_ids) == 1:
        return {shard_ids[0]: request}
    rest = request
    if request.event_candidates or not request.HasField("min_applied_seq"):
        rest = matcher_pb2.MatchFacesRequest()
        rest.CopyFrom(request)
        del rest.event_candidates[:]
        if not request.HasField("min_applied_seq"):
            rest.min_applied_seq = 0
    return {s: (request if i == 0 else rest) for i, s in enumerate(shard_ids)}


def _result_key(r: matcher_pb2.ReferenceResult) -> tuple[int, str, str]:
    return (r.reference_index, r.face_id, r.event_id)


def _rank(row: tuple[float, str, object]) -> tuple[float, str]:
    return (-row[0], row[1])


def merge(
    request: matcher_pb2.MatchFacesRequest,
    replies: Sequence[matcher_pb2.MatchFacesResponse],
) -> matcher_pb2.MatchFacesResponse:
    """One answer from the targets' answers (the first holds the event candidates). The
    first reply becomes the answer, its candidate lists replaced in place by the merged
    top k: no copy of references, results or event candidates (the replies are the caller's
    own, freshly decoded)."""
    if len(replies) == 1:
        return replies[0]
    first = replies[0]
    # A shard's applied sequence is not the answer's; the first shard's `stream_position`
    # is: every shard answered at or past it, as a lone matcher answers.
    first.applied_seq = 0
    limits = [c.limit or DEFAULT_LIMIT for c in request.candidates]
    # Results line up by (reference position, resolved face, resolved event): every shard
    # resolves the same references the same way; keyed anyway, never zipped blindly.
    others = [{_result_key(r): r for r in reply.results} for reply in replies[1:]]
    for res in first.results:
        key = _result_key(res)
        peers = [o[key] for o in others if key in o]
        for i, cand in enumerate(res.candidates):
            rows = [(m.similarity, m.face.face_id, m) for m in cand.matches]
            for peer in peers:
                if i < len(peer.candidates):
                    rows.extend(
                        (m.similarity, m.face.face_id, m) for m in peer.candidates[i].matches
                    )
            rows.sort(key=_rank)  # by similarity, the face id breaking ties
            limit = limits[i] if i < len(limits) else DEFAULT_LIMIT
            seen: set[str] = set()
            top = []
            for _, face_id, m in rows:  # a face two shards hold: its first (best) row
                if face_id not in seen:
                    seen.add(face_id)
                    top.append(m)
                    if len(top) == limit:
                        break
            del cand.matches[:]
            cand.matches.extend(top)
            cand.total_found = len(top)
    return first


def merge_stats(
    replies: Sequence[matcher_pb2.GetIndexStatsResponse],
) -> matcher_pb2.GetIndexStatsResponse:
    """Index stats over shards: faces and collections summed/concatenated, the stream
    position the lowest any shard applied (what every shard has at least seen)."""
    out = matcher_pb2.GetIndexStatsResponse()
    for r in replies:
        out.faces += r.faces
        out.descriptor_version = out.descriptor_version or r.descriptor_version
        out.collections.extend(r.collections)
    out.applied_seq = min((r.applied_seq for r in replies), default=0)
    out.snapshot_seq = min((r.snapshot_seq for r in replies), default=0)
    out.shard_map_version = min((r.shard_map_version for r in replies), default=0)
    return out
