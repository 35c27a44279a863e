"""The analytical task types (clustering, reporter, cross_match, roc); importing registers them."""

from __future__ import annotations

from services.tasks.types import clustering, cross_match, reporter, roc

REGISTERED = (clustering, cross_match, reporter, roc)
