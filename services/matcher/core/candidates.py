"""What a search runs against, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListCandidates:
    """All faces of one list (within the searching account)."""

    list_id: str


@dataclass(frozen=True)
class FaceIdCandidates:
    """Exactly these faces (those unknown or of another account are ignored, as in LUNA)."""

    face_ids: tuple[str, ...]


@dataclass(frozen=True)
class AccountCandidates:
    """All faces of the searching account (all accounts when the account id is None)."""


Candidates = ListCandidates | FaceIdCandidates | AccountCandidates


@dataclass(frozen=True)
class Match:
    face_id: str
    similarity: float
