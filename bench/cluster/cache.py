"""bench/cluster's data and shard snapshots, built once and kept on disk across runs.

An HNSW build of 1M faces takes ~15 min on this box's 2 cores; a matcher loads the same index
from its snapshot in ~10 s. So each shard's IndexSet is built here once, with every core (the
matcher core's own build path), and saved with the matcher's own `save_snapshot`; a run then
only hard-links the files into the shard's snapshot directory and the shard loads them with its
own loader, as after a restart.

    python -m bench.cluster.cache --n 1000000 --snapshot-cache /work/bigcache   # build only

Layout: `<cache>/<key>/` with key = n per shard, seed, descriptor version, the index settings
that shape a graph and the snapshot format (anything else, e.g. ef, is read at load time):
    data/             the synthetic descriptors (bench.matcher.data, 2n rows)
    shard<s>/         a snapshot root (CURRENT, snap-...) at stream sequence 0
    shard<s>/build.json   written last: the shard is complete (faces, build seconds)

The account and list ids are fixed per seed: the snapshot holds them (its collections, its
face records), so a run creates the account with `Luna-Account-Id` and the list row with that
id rather than taking fresh ones. FACES_CHANGES sequence: a cached snapshot says 0; `install`
writes the fresh stream's current sequence into the copy a shard loads, because the rows are
COPY'd into PostgreSQL without stream messages: the shard must replay exactly what comes after
that point (a higher number would make it skip changes or reload everything; a lower one would
replay messages of another run's stream).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from bench.matcher.data import FaceData, load_or_generate
from bench.matcher.raw import face_id, trim_heap
from bench.matcher.run import bulk_records
from services.matcher.core import IndexSet, MatcherConfig
from services.matcher.core.snapshot import FORMAT, current_snapshot, save_snapshot
from services.matcher.shard.partition import ShardMap

VERSION = 200
SHARDS = 2
N_QUERIES = 1000
_IDS = uuid.UUID("6f1d2c0e-5b8a-4c1e-9d7a-2b6c3e4f5a10")  # namespace of the fixed ids
DONE = "build.json"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True)
class Layout:
    """Where one (n, seed, settings) combination lives, and the ids its snapshots hold."""

    root: Path
    n: int
    seed: int
    config: MatcherConfig

    @classmethod
    def of(cls, cache: Path, n: int, seed: int, config: MatcherConfig) -> Layout:
        key = (
            f"n{n}-shards{SHARDS}-seed{seed}-v{VERSION}-m{config.hnsw_m}"
            f"-efc{config.hnsw_ef_construction}-thr{config.index_threshold}"
            f"-acc{int(config.index_account_views)}-fmt{FORMAT}"
        )
        return cls(cache / key, n, seed, config)

    @property
    def account_id(self) -> str:
        return str(uuid.uuid5(_IDS, f"account-{self.seed}"))

    @property
    def list_id(self) -> str:
        return str(uuid.uuid5(_IDS, f"list-{self.seed}"))

    @property
    def shard_map(self) -> ShardMap:
        return ShardMap.uniform(SHARDS, spread_accounts=[self.account_id])

    def shard_dir(self, shard: int) -> Path:
        return self.root / f"shard{shard}"

    def data(self) -> FaceData:
        return load_or_generate(
            SHARDS * self.n, n_queries=N_QUERIES, cache_dir=self.root / "data", seed=self.seed
        )

    def rows(self) -> list[np.ndarray]:
        """Gallery rows per shard: the shard map's owner of each face id (face-id hashing,
        as the shards themselves decide)."""
        smap, acc = self.shard_map, self.account_id
        owner = np.fromiter(
            (smap.owner(acc, face_id(i)) for i in range(SHARDS * self.n)),
            dtype=np.int8,
            count=SHARDS * self.n,
        )
        return [np.flatnonzero(owner == s) for s in range(SHARDS)]

    def built(self, shard: int) -> dict | None:
        done = self.shard_dir(shard) / DONE
        return json.loads(done.read_text()) if done.exists() else None


class _Progress:
    """A line every `every` seconds while a phase runs: its elapsed time, the cores this
    process got meanwhile (CPU seconds / wall seconds: on a shared box, well under its build
    threads) and its memory. The HNSW build itself logs its row count through logging."""

    def __init__(self, what: str, every: float = 60.0) -> None:
        self.what, self.every = what, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.began = time.perf_counter()

    def _run(self) -> None:
        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        while not self._stop.wait(self.every):
            wall = time.perf_counter() - self.began
            cores = (sum(me.cpu_times()[:2]) - cpu0) / wall
            rss = me.memory_info().rss / 2**30
            log(f"{self.what}: {wall:.0f} s, {cores:.2f} cores used, RSS {rss:.1f} GiB")

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def build_shard(layout: Layout, shard: int, data: FaceData, rows: np.ndarray) -> dict:
    """Build one shard's IndexSet with every build thread and save it as its snapshot."""
    root = layout.shard_dir(shard)
    shutil.rmtree(root, ignore_errors=True)  # a build interrupted before build.json
    cfg = layout.config
    ix = IndexSet(version=VERSION, config=cfg)
    ids = [face_id(int(i)) for i in rows]
    log(f"shard {shard}: building {len(ids)} faces, {cfg.effective_build_threads} threads")
    t0 = time.perf_counter()
    with _Progress(f"shard {shard} build"):
        ix.add_many(layout.account_id, ids, data.gallery[rows], VERSION, [layout.list_id])
        ix.wait_for_builds(None)
    built = time.perf_counter() - t0
    del ids
    stats = ix.stats()
    t0 = time.perf_counter()
    records = bulk_records(layout.account_id, layout.list_id, rows)
    save_snapshot(ix, root, 0, records.save)
    saved = time.perf_counter() - t0
    ix.close()
    del ix, records
    gc.collect()
    trim_heap()
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # runs hard-link these files: nothing may write them in place
    done = {
        "faces": len(rows),
        "build_s": round(built, 1),
        "save_s": round(saved, 1),
        "threads": cfg.effective_build_threads,
        "collections": stats,
        "load_average": os.getloadavg(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (root / DONE).write_text(json.dumps(done, default=str, indent=1))
    log(f"shard {shard}: HNSW build {built:.1f} s, snapshot saved in {saved:.1f} s")
    return done


def ensure(
    layout: Layout, shards: list[int] | None = None
) -> tuple[FaceData, list[np.ndarray], list[dict]]:
    """The data, each shard's rows and each shard's build record, building what is missing
    (one shard at a time: one build's memory, every core on it). `shards` limits it to those
    (the build command's --shard, to build shards in separate processes)."""
    data = layout.data()
    rows = layout.rows()
    log(f"cache {layout.root}: faces per shard {[len(r) for r in rows]}")
    done = []
    for s in range(SHARDS) if shards is None else shards:
        have = layout.built(s)
        if have is not None and have["faces"] == len(rows[s]):
            log(f"shard {s}: cached ({have['faces']} faces, built in {have['build_s']} s)")
        else:
            have = build_shard(layout, s, data, rows[s])
        done.append(have)
    return data, rows, done


def install(layout: Layout, shard: int, snapshot_root: Path, stream_seq: int) -> Path:
    """Make `snapshot_root` a matcher snapshot root holding the cached snapshot of `shard` at
    `stream_seq`: the files are hard links (no copy of a GB; the matcher never writes a
    snapshot's files in place, it writes new ones and removes the old directory), meta.json is
    the cached one with the sequence replaced, and CURRENT names it."""
    src = current_snapshot(layout.shard_dir(shard))
    if src is None:
        raise FileNotFoundError(f"no cached snapshot of shard {shard} under {layout.root}")
    dst = snapshot_root / f"snap-{stream_seq:020d}-cached"
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name != "meta.json":
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:  # another filesystem
                shutil.copyfile(path, target)
    meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    meta["stream_seq"] = int(stream_seq)
    (dst / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (snapshot_root / "CURRENT").write_text(dst.name, encoding="utf-8")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="faces per shard")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snapshot-cache", type=Path, required=True)
    ap.add_argument(
        "--shard", type=int, action="append", choices=range(SHARDS),
        help="build only this shard (repeatable); two processes may build two shards at once",
    )  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s")
    from services.matcher import settings as matcher_settings

    layout = Layout.of(args.snapshot_cache, args.n, args.seed, matcher_settings.core_config())
    t0 = time.perf_counter()
    _, _, done = ensure(layout, args.shard)
    log(f"cache ready in {time.perf_counter() - t0:.0f} s: {[d['build_s'] for d in done]}")


if __name__ == "__main__":
    main()
