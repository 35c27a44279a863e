"""The platform's version, as installed."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("luna-mesh")
except metadata.PackageNotFoundError:  # running from a tree that was never installed
    VERSION = "0.0.0"

# The LUNA PLATFORM / API versions whose REST surface we serve.
LUNA_PLATFORM_VERSION = "5.x"
LUNA_API_VERSION = 6
