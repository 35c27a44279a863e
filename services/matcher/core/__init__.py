"""The matcher's plain core: in-memory indexes, exact/HNSW search, calibration, snapshots."""

from services.matcher.core.candidates import (
    AccountCandidates,
    Candidates,
    FaceIdCandidates,
    ListCandidates,
    Match,
)
from services.matcher.core.index_set import DESCRIPTOR_DIM, IndexSet
from services.matcher.core.settings import MatcherConfig
from services.matcher.core.similarity import cosine_to_similarity, similarity_to_cosine

__all__ = [
    "DESCRIPTOR_DIM",
    "AccountCandidates",
    "Candidates",
    "FaceIdCandidates",
    "IndexSet",
    "ListCandidates",
    "Match",
    "MatcherConfig",
    "cosine_to_similarity",
    "similarity_to_cosine",
]
