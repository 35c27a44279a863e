"""Old home of the `luna` command, kept so `luna` scripts installed before it moved to
`services.launcher.cli` still start; `make setup` installs the new entry point."""

from services.launcher.cli import main

__all__ = ["main"]
