"""The matcher's Prometheus metrics: index sizes (read from the live index set at scrape time)
and the lag of its FACES_CHANGES follower."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common import metrics


class IndexCollector(Collector):
    """Sizes by search mode only: per-list labels would grow with the number of lists."""

    def __init__(self, get_sync: Callable[[], Any]) -> None:
        self.get_sync = get_sync

    def describe(self) -> list[Any]:
        return []  # no collect() at registration time, before the index exists

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sync = self.get_sync()
        ix = getattr(sync, "ix", None)
        if ix is None:
            return
        faces = GaugeMetricFamily("matcher_faces", "Faces held in the matcher's index set.")
        faces.add_metric([], len(ix))
        collections = GaugeMetricFamily(
            "matcher_collections",
            "Index collections (one per list or per account's faces), by search mode.",
            labels=["mode"],
        )
        live = GaugeMetricFamily(
            "matcher_index_entries",
            "Live entries over all collections, by search mode (hnsw or exact).",
            labels=["mode"],
        )
        pending = GaugeMetricFamily(
            "matcher_index_unmerged_entries",
            "Entries added or deleted since the last HNSW build (delta plus tombstones).",
        )
        by_mode: dict[str, list[int]] = {"hnsw": [0, 0], "exact": [0, 0]}
        unmerged = 0
        for row in ix.stats():
            counts = by_mode.setdefault(str(row["mode"]), [0, 0])
            counts[0] += 1
            counts[1] += int(row["live"])
            unmerged += int(row["delta"]) + int(row["deleted"])
        for mode, (n, entries) in by_mode.items():
            collections.add_metric([mode], n)
            live.add_metric([mode], entries)
        pending.add_metric([], unmerged)
        yield faces
        yield collections
        yield live
        yield pending


def register(get_sync: Callable[[], Any]) -> None:
    metrics.PROCESS.registry.register(IndexCollector(get_sync))
    metrics.track_consumer(
        metrics.PROCESS,
        metrics.CONSUMER_PENDING,
        "FACES_CHANGES",
        "matcher",
        # The follower replaces its subscription after a reload.
        lambda: getattr(get_sync(), "_sub", None),
    )
