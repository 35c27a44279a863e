"""Render the Envoy configs that deploy/k8s and deploy/compose ship, from deploy/envoy/envoy.yaml.

The service addresses come from the deployment files themselves (the `luna-config` literals of
the kustomize base, the `x-luna-environment` block of the compose file), so the proxy and the
services can never disagree. Run after changing envoy.yaml, the protos or an address:

    .venv/bin/python deploy/render_configs.py          # rewrite both files
    .venv/bin/python deploy/render_configs.py --check  # non-zero when a file is stale

tests/deploy checks that both files are current and valid for the real Envoy.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import yaml

DEPLOY = Path(__file__).resolve().parent
ENVOY_DIR = DEPLOY / "envoy"
K8S_BASE = DEPLOY / "k8s" / "base"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
GATEWAY_PORT = 5000


def load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envoy_render", ENVOY_DIR / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Target:
    name: str
    output: Path
    descriptor: str  # where the container finds the descriptor set
    env: dict[str, str]  # the LUNA_* settings the deployment gives every service


def k8s_env() -> dict[str, str]:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    (generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "luna-config"]
    return dict(item.split("=", 1) for item in generator["literals"])


def compose_env() -> dict[str, str]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return {k: str(v) for k, v in compose["x-luna-environment"].items()}


def targets() -> list[Target]:
    return [
        Target("k8s", K8S_BASE / "envoy" / "envoy.yaml", "/etc/envoy/descriptor/luna_descriptor.pb",
               k8s_env()),
        Target("compose", DEPLOY / "compose" / "envoy.yaml", "/etc/envoy/luna_descriptor.pb",
               compose_env()),
    ]  # fmt: skip


def render_target(target: Target) -> str:
    render = load_render()
    services = {s: target.env[f"LUNA_{s.upper()}_ADDRESS"] for s in render.SERVICES}
    # In a pod or container the internal listener must take connections from the cluster
    # network; it stays unpublished (no Service port, no compose `ports:` entry).
    text = render.render(
        8080,
        f"gateway:{GATEWAY_PORT}",
        services,
        9901,
        render.DESCRIPTOR,
        internal_host="0.0.0.0",
    )
    # render() reads the descriptor here to list its services; the container's path differs.
    text = text.replace(str(render.DESCRIPTOR), target.descriptor)
    return f"# deploy/render_configs.py ({target.name}): this deployment's Envoy edge.\n" + text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for target in targets():
        text = render_target(target)
        current = target.output.read_text() if target.output.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(target.output.relative_to(DEPLOY.parent)))
        else:
            target.output.parent.mkdir(parents=True, exist_ok=True)
            target.output.write_text(text)
            print(f"wrote {target.output.relative_to(DEPLOY.parent)}")
    if stale:
        print("stale (run deploy/render_configs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
