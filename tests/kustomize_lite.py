"""The subset of kustomize that deploy/k8s uses, in plain Python, for machines without a
kustomize binary (none is installable from PyPI, npm or Debian here; `kubectl kustomize` is
used instead where present, and tests/deploy checks both give the same objects).

Supported: `resources` (files and directories), `configMapGenerator` (literals, files;
behavior create/merge/replace; hash suffixes disabled), JSON 6902 `patches` with a kind/name
target, `namespace`, `nameSuffix` (with the references deploy/k8s has), `replicas`, `images`.
Anything else is an error, so an unsupported feature never renders silently wrong.
Transformers run in kustomize's order: patches, namespace, name suffix, replicas, images.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
KNOWN_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "generatorOptions",
    "patches",
    "namespace",
    "nameSuffix",
    "replicas",
    "images",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"}


class KustomizeError(ValueError):
    pass


def build(directory: Path) -> list[Obj]:
    """Render the kustomization in `directory` into a list of objects."""
    directory = Path(directory)
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization keys {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(build(path))
        else:
            objects.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    _generate(directory, spec, objects)
    for patch in spec.get("patches", []):
        _patch(objects, patch)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    if "nameSuffix" in spec:
        _suffix(objects, str(spec["nameSuffix"]))
    for item in spec.get("replicas", []):
        _replicas(objects, item)
    for image in spec.get("images", []):
        _image(objects, image)
    return objects


def _generate(directory: Path, spec: dict[str, Any], objects: list[Obj]) -> None:
    generators = spec.get("configMapGenerator", [])
    if generators and not spec.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise KustomizeError(f"{directory}: hash suffixes are not supported")
    for gen in generators:
        unknown = set(gen) - {"name", "literals", "files", "behavior"}
        if unknown:
            raise KustomizeError(f"{directory}: configMapGenerator keys {sorted(unknown)}")
        data: dict[str, str] = {}
        for literal in gen.get("literals", []):
            key, sep, value = literal.partition("=")
            if not sep:
                raise KustomizeError(f"literal without '=': {literal!r}")
            data[key] = value
        for entry in gen.get("files", []):
            key, sep, path = entry.partition("=")
            if not sep:
                key, path = Path(entry).name, entry
            data[key] = (directory / path).read_text()
        behavior = gen.get("behavior", "create")
        existing = [o for o in objects if o["kind"] == "ConfigMap" and _name(o) == gen["name"]]
        if behavior == "create":
            if existing:
                raise KustomizeError(f"ConfigMap {gen['name']} exists; use behavior merge")
            objects.append(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}}
                | ({"data": data} if data else {})
            )
        elif behavior in ("merge", "replace"):
            if len(existing) != 1:
                raise KustomizeError(f"{behavior}: no ConfigMap {gen['name']} to change")
            target = existing[0]
            target["data"] = (target.get("data", {}) if behavior == "merge" else {}) | data
        else:
            raise KustomizeError(f"unknown behavior {behavior!r}")


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _patch(objects: list[Obj], patch: dict[str, Any]) -> None:
    target = patch.get("target", {})
    if set(target) - {"kind", "name"} or "patch" not in patch or set(patch) - {"target", "patch"}:
        raise KustomizeError(f"only inline JSON 6902 patches with kind/name targets: {patch}")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise KustomizeError("strategic-merge patches are not supported")
    matched = [
        o
        for o in objects
        if o["kind"] == target.get("kind", o["kind"]) and _name(o) == target.get("name", _name(o))
    ]
    if not matched:
        raise KustomizeError(f"patch target {target} matches nothing")
    for obj in matched:
        for op in ops:
            _apply_op(obj, op)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_op(obj: Obj, op: dict[str, Any]) -> None:
    *parents, last = _pointer(op["path"])
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if kind == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            node[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[index]
        else:
            raise KustomizeError(f"unsupported op {kind!r}")
        return
    if kind in ("add", "replace"):
        if kind == "replace" and last not in node:
            raise KustomizeError(f"replace of a missing path {op['path']!r}")
        node[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del node[last]
    else:
        raise KustomizeError(f"unsupported op {kind!r}")


def _suffix(objects: list[Obj], suffix: str) -> None:
    renamed: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            continue
        renamed[(obj["kind"], _name(obj))] = _name(obj) + suffix
        obj["metadata"]["name"] = _name(obj) + suffix
    # References kustomize follows that deploy/k8s relies on.
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "StatefulSet" and ("Service", spec.get("serviceName")) in renamed:
            spec["serviceName"] = renamed[("Service", spec["serviceName"])]
        if obj["kind"] == "HorizontalPodAutoscaler":
            ref = spec["scaleTargetRef"]
            ref["name"] = renamed.get((ref["kind"], ref["name"]), ref["name"])


def _replicas(objects: list[Obj], item: dict[str, Any]) -> None:
    matched = [o for o in objects if o["kind"] in WORKLOADS and _name(o) == item["name"]]
    if not matched:
        raise KustomizeError(f"replicas: no workload named {item['name']}")
    for obj in matched:
        obj["spec"]["replicas"] = int(item["count"])


def _containers(obj: Obj) -> list[Obj]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _image(objects: list[Obj], image: dict[str, Any]) -> None:
    for obj in objects:
        for container in _containers(obj):
            ref = container.get("image", "")
            name = ref.split("@", 1)[0]
            if ":" in name.rsplit("/", 1)[-1]:
                name = name.rsplit(":", 1)[0]
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
