"""Task types; importing one registers it with `services.tasks.kinds`."""

from __future__ import annotations


def load_all() -> None:
    from services.tasks.types import estimator, exporter, gc, linker  # noqa: F401
    from services.tasks.types.analytical import REGISTERED  # noqa: F401
