"""Task worker process: pulls parts from TASKS_WORK, runs them, records their outcome.

Any number of workers, on any machine that reaches NATS and PostgreSQL, share one durable pull
consumer. A part is acked only after its outcome is committed; while it runs the worker sends
in-progress heartbeats, so a long part keeps its message and a dead worker's part comes back
after the ack wait. A part that keeps failing is retried a bounded number of times and then
recorded as a task error (the dead letter) instead of blocking its task.

    python -m services.tasks.worker
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import orjson
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from services.common import config, db, errors, grpc_client, logs, nats_streams
from services.common.stopping import cancel_and_wait
from services.tasks import engine, kinds, settings
from services.tasks.kinds import Deps, Outcome
from services.tasks.settings import Work
from services.tasks.store import (
    CANCELLED,
    COLLECTING,
    SUB_DONE,
    SUB_FAILED,
    ItemError,
    TaskStore,
)
from services.tasks.types import load_all

log = logging.getLogger("luna.tasks.worker")

DURABLE = "tasks-workers"
CANCEL_POLL_S = 0.5
# How long a worker waits for more parts of a task it can apply together (they are pulled only
# when already waiting; a part never waits for others).
BATCH_PULL_S = 0.05
DEAD_LETTER = errors.INTERNAL


async def ensure_consumer(js: JetStreamContext, work: Work) -> None:
    cfg = nats_streams.work_consumer_config(
        DURABLE,
        f"{engine.WORK_SUBJECT}.>",
        ack_wait_s=work.ack_wait_s,
        # One more delivery than attempts, so the worker sees the part once more and records
        # the dead letter instead of NATS dropping it silently.
        max_deliver=work.max_attempts + 1,
    )
    try:
        await js.add_consumer("TASKS_WORK", cfg)
    except BadRequestError:
        await js.update_consumer("TASKS_WORK", cfg)


def make_deps() -> Deps:
    from luna.estimator.v1 import estimator_pb2_grpc
    from luna.events.v1 import events_pb2_grpc, handlers_pb2_grpc, pipeline_pb2_grpc
    from luna.faces.v1 import blobs_pb2_grpc, faces_pb2_grpc, lists_pb2_grpc

    faces, events = grpc_client.channel("faces"), grpc_client.channel("events")
    return Deps(
        faces=grpc_client.stub(faces_pb2_grpc.FacesServiceStub, faces),
        lists=grpc_client.stub(lists_pb2_grpc.ListsServiceStub, faces),
        events=grpc_client.stub(events_pb2_grpc.EventsServiceStub, events),
        handlers=grpc_client.stub(handlers_pb2_grpc.HandlersServiceStub, events),
        blobs=grpc_client.stub(blobs_pb2_grpc.BlobsServiceStub, faces),
        pipeline=grpc_client.stub(pipeline_pb2_grpc.PipelineServiceStub, events),
        estimator=grpc_client.stub(
            estimator_pb2_grpc.EstimatorServiceStub, grpc_client.channel("estimator")
        ),
        matcher=_matcher_stub(),
        attributes=_attributes_stub(faces),
        types=settings.types(),
        sources=settings.sources(),
    )


def _attributes_stub(faces: Any) -> Any:
    from luna.faces.v1 import attributes_pb2_grpc

    return grpc_client.stub(attributes_pb2_grpc.AttributesServiceStub, faces)


def _matcher_stub() -> Any:
    from luna.matcher.v1 import matcher_pb2_grpc

    channel = grpc_client.channel("matcher")
    return grpc_client.stub(matcher_pb2_grpc.MatcherServiceStub, channel)


async def _one(run: Any) -> list[Outcome | errors.LunaError]:
    return [await run]


class Worker:
    def __init__(self, store: TaskStore, deps: Deps, work: Work) -> None:
        self.store = store
        self.deps = deps
        self.work = work

    async def handle_batch(self, sub: Any, msg: Any) -> None:
        """`msg`'s part, with more parts of its task where its kind applies several together
        (`Kind.batch_parts`): those already waiting are pulled without waiting and applied
        with it. A part of anything else pulled alongside runs on its own afterwards, its ack
        wait kept by heartbeats meanwhile. A failure leaves every part for redelivery."""
        try:
            batch_parts = kinds.kind_for(int(msg.subject.rsplit(".", 1)[-1])).batch_parts
        except (ValueError, errors.LunaError):
            batch_parts = 1
        if batch_parts <= 1:
            await self.handle(msg)
            return
        try:
            extra = await sub.fetch(batch_parts - 1, timeout=BATCH_PULL_S)
        except Exception:  # nothing waiting (a timeout), or NATS busy: this part alone
            extra = []
        task_id = orjson.loads(msg.data)["task_id"]
        same = [
            m
            for m in extra
            if m.subject == msg.subject and orjson.loads(m.data)["task_id"] == task_id
        ]
        others = [m for m in extra if all(m is not o for o in same)]
        beats = [asyncio.create_task(self._heartbeat(m)) for m in others]
        try:
            await self.handle_many([msg, *same])
            for other in others:
                await self.handle(other)
        except Exception:  # the database or NATS went away mid-part: retry later
            log.exception("part delivery failed; it will be redelivered")
            for m in (msg, *extra):
                with contextlib.suppress(Exception):
                    await m.nak(delay=5)
        finally:
            for beat in beats:
                beat.cancel()

    async def handle(self, msg: Any) -> None:
        """Run one delivered part to its recorded outcome, then ack it."""
        await self.handle_many([msg])

    async def handle_many(self, msgs: list[Any]) -> None:
        """Run delivered parts of one task (one, or several a kind applies together:
        `Kind.batch_parts`) to their recorded outcomes, then ack them. They are claimed in one
        transaction and recorded in one; each is still recorded only by the delivery that
        finds it in progress, so a redelivered part changes nothing twice."""
        load_all()
        refs = [int(orjson.loads(m.data)["subtask_id"]) for m in msgs]
        claimed = {s["subtask_id"]: s for s in await self.store.claim_subtasks(refs)}
        started = time.perf_counter()
        parts: list[tuple[Any, dict[str, Any]]] = []
        for msg, subtask_id in zip(msgs, refs, strict=True):
            subtask = claimed.get(subtask_id)
            if subtask is None:  # finished, cancelled or deleted meanwhile
                await msg.ack()
                continue
            if not subtask["content"]:
                # The engine's one placeholder part of a task whose plan selected nothing: a
                # kind's run never sees it, so no kind can read "no filter" as "everything".
                await self._finish([msg], [(subtask, SUB_DONE, None, [])])
                continue
            if subtask["attempts"] > self.work.max_attempts:
                abandoned = ItemError(
                    DEAD_LETTER,
                    f"Subtask {subtask_id} failed {self.work.max_attempts} times and was abandoned",
                )
                await self._finish([msg], [(subtask, SUB_FAILED, None, [abandoned])])
                continue
            parts.append((msg, subtask))
        if not parts:
            return
        msgs = [m for m, _ in parts]
        subtasks = [s for _, s in parts]
        task_id = subtasks[0]["task_id"]
        kind = kinds.kind_for(subtasks[0]["task_type"])
        beats = [asyncio.create_task(self._heartbeat(m)) for m in msgs]
        if len(subtasks) == 1:
            run = asyncio.create_task(_one(kind.run(self.deps, subtasks[0])))
        else:
            run = asyncio.create_task(kind.run_many(self.deps, subtasks))
        names = ",".join(str(s["subtask_id"]) for s in subtasks)
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=CANCEL_POLL_S)
                if not run.done() and await self.store.status(task_id) in (CANCELLED, None):
                    await cancel_and_wait(run)
                    log.info("part %s stopped: its task was cancelled", names)
                    for msg in msgs:
                        await msg.ack()
                    return
            try:
                outcomes = run.result()
            except errors.LunaError as err:
                if err.code in engine.RETRYABLE:
                    raise
                # The part itself is refused (its list was deleted, ...): retrying cannot help.
                await self._finish(
                    msgs, [(s, SUB_FAILED, None, [ItemError.of(err)]) for s in subtasks]
                )
                return
            ran = time.perf_counter() - started
            records: list[tuple[dict[str, Any], int, Any, list[ItemError]]] = []
            for subtask, outcome in zip(subtasks, outcomes, strict=True):
                if isinstance(outcome, errors.LunaError):
                    if outcome.code in engine.RETRYABLE:
                        raise outcome
                    records.append((subtask, SUB_FAILED, None, [ItemError.of(outcome)]))
                else:
                    records.append((subtask, SUB_DONE, outcome.result, outcome.errors))
            await self._finish(msgs, records)
            log.info(
                "part %s of task %s done in %.3fs (recorded in %.3fs)",
                names,
                task_id,
                ran,
                time.perf_counter() - started - ran,
            )
        except Exception as exc:
            log.warning(
                "part %s attempt %s failed: %s; it will be retried",
                names,
                subtasks[0]["attempts"],
                exc,
            )
            for msg, subtask in parts:
                await msg.nak(delay=min(30.0, 2.0 ** subtask["attempts"]))
        finally:
            for beat in beats:
                beat.cancel()

    async def _finish(
        self, msgs: list[Any], outcomes: list[tuple[dict[str, Any], int, Any, list[ItemError]]]
    ) -> None:
        new_status = await self.store.finish_subtasks(outcomes)
        for msg in msgs:
            await msg.ack()
        if new_status == COLLECTING:
            task_id = outcomes[0][0]["task_id"]
            started = time.perf_counter()
            await engine.collect(self.store, task_id, self.work.max_result_errors)
            log.info("task %s collected in %.3fs", task_id, time.perf_counter() - started)

    async def _heartbeat(self, msg: Any) -> None:
        while True:
            await asyncio.sleep(self.work.ack_wait_s / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()


async def serve() -> None:
    # Every task type (and what it imports: numpy, scipy, hnswlib) before the first pull, so
    # the first part of a task does not pay a second of imports inside its ack wait.
    load_all()
    pool = await db.create_pool(config.database_url(), max_size=10)
    nc = await nats_streams.connect(config.nats_url(), name="tasks-worker")
    js = nc.jetstream()
    await nats_streams.ensure_streams(js)
    work = settings.work()
    await ensure_consumer(js, work)
    store = TaskStore(pool)
    deps = make_deps()
    deps.store = store
    worker = Worker(store, deps, work)
    lanes_n = settings.CONCURRENCY.get_int()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def lane() -> None:
        # One pull subscription per lane: concurrent fetches on one subscription share its
        # inbox and were seen to serialise the lanes.
        sub = await js.pull_subscribe(
            f"{engine.WORK_SUBJECT}.>", durable=DURABLE, stream="TASKS_WORK"
        )
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=2)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as exc:  # NATS reconnecting: wait and pull again
                log.warning("fetch failed: %s", exc)
                await asyncio.sleep(1)
                continue
            try:
                await worker.handle_batch(sub, msgs[0])
            except Exception:  # the database or NATS went away mid-part: retry later
                log.exception("part delivery failed; it will be redelivered")
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=5)

    log.info("tasks worker pulling from TASKS_WORK (%d lanes)", lanes_n)
    lanes = [asyncio.create_task(lane()) for _ in range(lanes_n)]
    await stop.wait()
    # A part in flight finishes and is acked; an unfinished one is redelivered elsewhere.
    await asyncio.wait(lanes, timeout=work.ack_wait_s)
    for t in lanes:
        t.cancel()
    await nc.drain()
    await pool.close()


def main() -> None:
    logs.setup("tasks-worker")
    asyncio.run(serve())


if __name__ == "__main__":
    main()
