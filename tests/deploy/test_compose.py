"""deploy/compose/docker-compose.yml: valid against the compose-spec JSON schema (vendored),
and every command, setting, address, health check, mount and dependency checked offline
(no Docker engine runs here)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploytest import REPO, runnable

from services.common import config

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
SCHEMA = json.loads((Path(__file__).with_name("data") / "compose-spec.json").read_text())
ENVOY_BIN = Path(sys.executable).with_name("envoy")


@pytest.fixture
def compose() -> dict[str, Any]:
    # PyYAML resolves the `<<` merge keys as Compose does before it validates.
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _platform(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("command", [])[:2] == ["python", "-m"]
    }


def test_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(compose)


def test_the_schema_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["faces"]["enviroment"] = broken["services"]["faces"].pop("environment")
    with pytest.raises(jsonschema.ValidationError, match="enviroment"):
        jsonschema.Draft7Validator(SCHEMA).validate(broken)


def test_every_service_of_the_platform_runs_from_the_image(compose: dict[str, Any]) -> None:
    platform = _platform(compose)
    expected = {*config.SERVICE_PORTS, "gateway", "tasks.worker"}
    assert {svc["command"][2] for svc in platform.values()} == {f"services.{s}" for s in expected}
    for name, svc in platform.items():
        module = svc["command"][2]
        assert runnable(module), name
        assert svc["image"] == compose["services"]["faces"]["image"]
    builds = [svc["build"] for svc in compose["services"].values() if "build" in svc]
    assert len(builds) == 1  # one build, the others reuse its image
    context = (COMPOSE_DIR / builds[0]["context"]).resolve()
    assert context == REPO and (context / builds[0]["dockerfile"]).is_file()


def test_settings_are_real_and_addresses_line_up(compose: dict[str, Any]) -> None:
    declared = {s.name for s in config.declared()}
    shared = compose["x-luna-environment"]
    for name, svc in _platform(compose).items():
        env = svc["environment"]
        assert {k for k in env if k.startswith("LUNA_")} - declared == set(), name
        assert {k: v for k, v in env.items() if k in shared and v != shared[k]}.keys() <= {
            f"LUNA_{name.upper()}_ADDRESS",
            "LUNA_MATCHER_SNAPSHOT_DIR",
        }, name
    assert "LUNA_NATS_REPLICAS" in shared
    for service in config.SERVICE_PORTS:
        variable = f"LUNA_{service.upper()}_ADDRESS"
        host, _, port = shared[variable].rpartition(":")
        assert host == service and host in compose["services"]
        own = compose["services"][service]
        # A service binds its own LUNA_<SVC>_ADDRESS: 0.0.0.0 there, the name everywhere else.
        assert own["environment"][variable] == f"0.0.0.0:{port}"
        assert own["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "services.common.healthcheck",
            f"127.0.0.1:{port}",
        ]
    listeners = ("LUNA_PORT", "LUNA_TASKS_API_PORT", "LUNA_SENDER_PORT", "LUNA_BACKPORT3_PORT")
    assert compose["services"]["gateway"]["ports"] == [
        f"{shared[v]}:{shared[v]}" for v in listeners
    ]
    assert shared["LUNA_HOST"] == shared["LUNA_TASKS_API_HOST"] == "0.0.0.0"
    nats_host = shared["LUNA_NATS_URL"].removeprefix("nats://").rpartition(":")[0]
    assert nats_host in compose["services"]
    pg = compose["services"]["postgres"]["environment"]
    url = re.fullmatch(r"postgresql://(\w+):(.+)@(\w+):5432/(\w+)", shared["LUNA_DATABASE_URL"])
    assert url is not None
    assert (url[1], url[2], url[3], url[4]) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        "postgres",
        pg["POSTGRES_DB"],
    )
    assert importlib.util.find_spec("services.common.healthcheck") is not None


def test_dependencies_volumes_and_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services and dep != name, (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).is_file(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), (name, image)
    published = [p.split(":")[0] for svc in services.values() for p in svc.get("ports", [])]
    assert len(published) == len(set(published)) and published
    # Every ${VAR} has a default, so `docker compose up` works without an .env file.
    text = COMPOSE_FILE.read_text()
    assert all(":-" in ref for ref in re.findall(r"\$\{[^}]*\}", text))


def test_envoy_config_is_current_and_valid(compose: dict[str, Any], tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        import render_configs
    finally:
        sys.path.remove(str(REPO / "deploy"))
    (target,) = [t for t in render_configs.targets() if t.name == "compose"]
    assert target.output.read_text() == render_configs.render_target(target)
    mounts = dict(v.split(":")[:2] for v in compose["services"]["envoy"]["volumes"])
    assert mounts["./envoy.yaml"] == "/etc/envoy/envoy.yaml"
    assert mounts["../envoy/luna_descriptor.pb"] == target.descriptor
    local = tmp_path / "envoy.yaml"
    local.write_text(
        target.output.read_text().replace(
            target.descriptor, str(REPO / "deploy/envoy/luna_descriptor.pb")
        )
    )
    res = subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(local), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
