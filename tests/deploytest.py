"""Helpers for tests/deploy: render the kustomize overlays, look objects up, walk pod specs."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kustomize_lite
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("single-node", "cluster", "gpu")
Obj = dict[str, Any]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_kubectl(directory: Path) -> list[Obj]:
    out = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@functools.cache
def _rendered(overlay: str) -> tuple[Obj, ...]:
    directory = K8S / "overlays" / overlay
    objects = render_kubectl(directory) if kubectl() else kustomize_lite.build(directory)
    return tuple(objects)


def render(overlay: str) -> list[Obj]:
    """The overlay's objects: `kubectl kustomize` where installed, else kustomize_lite (the
    two are compared object by object in test_k8s where both exist)."""
    import copy

    return copy.deepcopy(list(_rendered(overlay)))


def key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    return [o for o in objects if o["kind"] in kinds]


WORKLOADS = ("Deployment", "StatefulSet")


def pod_spec(obj: Obj) -> Obj:
    return obj["spec"]["template"]["spec"]


def containers(obj: Obj, *, init: bool = True) -> Iterator[Obj]:
    spec = pod_spec(obj)
    yield from spec.get("initContainers", []) if init else ()
    yield from spec["containers"]


def platform_containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) for every container that runs a platform service."""
    for obj in of_kind(objects, *WORKLOADS):
        for c in containers(obj, init=False):
            if c.get("command", [])[:2] == ["python", "-m"]:
                yield obj, c


def runnable(module: str) -> bool:
    """Whether `python -m module` runs something: a package with __main__, or a module file
    with a `__main__` guard."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    if spec.submodule_search_locations is not None:  # a package
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return '__name__ == "__main__"' in Path(spec.origin).read_text()
