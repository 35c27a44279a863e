"""Task types; importing one registers it with `services.tasks.kinds`."""

from __future__ import annotations


def load_all() -> None:
    from services.tasks.types import (  # noqa: F401
        additional_extract,
        estimator,
        exporter,
        gc,
        linker,
    )
    from services.tasks.types.analytical import REGISTERED  # noqa: F401
