"""A graph built in chunks (so a long build can report progress) is the graph of all rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bench.matcher.data import generate
from services.matcher.core import hnsw_graph
from services.matcher.core.hnsw_graph import HnswGraph, HnswParams


def test_a_chunked_build_holds_every_row_and_reports_progress(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(hnsw_graph, "BUILD_CHUNK", 256)
    monkeypatch.setattr(hnsw_graph, "BUILD_PROGRESS_EVERY_S", 0.0)
    vecs = generate(1000, n_queries=1, seed=5).gallery
    labels = np.arange(10, 1010, dtype=np.int64)
    with caplog.at_level(logging.INFO, logger=hnsw_graph.__name__):
        graph = HnswGraph.build(labels, vecs, HnswParams(16, 100, 64), threads=2)
    assert graph.count == 1000 and graph.index.get_current_count() == 1000
    found = graph.search(vecs, 1, -1.0)
    assert [int(lab[0]) for lab, _ in found] == labels.tolist()
    progress = [r.getMessage() for r in caplog.records if "of 1000 rows" in r.getMessage()]
    assert [p.split(" of ")[0] for p in progress] == [
        "HNSW build: 256", "HNSW build: 512", "HNSW build: 768"
    ]  # fmt: skip
