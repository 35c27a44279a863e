"""What `luna up --cluster` builds its processes from, checked without starting them: the
Envoy config for several gateways and service instances (validated by the real envoy
binary), the NATS cluster config, the gRPC targets over several instances."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from services.common import config
from services.launcher.cluster import ClusterSupervisor, grpc_target, nats_conf
from services.matcher.shard.partition import ShardMap

REPO = Path(__file__).resolve().parents[2]
ENVOY_BIN = Path(sys.executable).with_name("envoy")


def _render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envoy_render", REPO / "deploy/envoy/render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_envoy_config_for_several_gateways_and_instances(tmp_path: Path) -> None:
    render = _render()
    services = {
        s: f"127.0.0.1:{6000 + i},127.0.0.1:{6100 + i}" for i, s in enumerate(render.SERVICES)
    }
    text = render.render(
        18080, ["127.0.0.1:15000", "127.0.0.1:15001"], services, 19901, render.DESCRIPTOR
    )
    config = yaml.safe_load(text)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    gateway = clusters["luna_gateway"]
    endpoints = gateway["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]
    assert ports == [15000, 15001]
    assert gateway["outlier_detection"]["consecutive_local_origin_failure"] == 2
    assert gateway["circuit_breakers"]["thresholds"][0]["max_retries"] == 1024
    faces = clusters["luna_faces"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert len(faces) == 2
    front = config["static_resources"]["listeners"][0]
    hcm = front["filter_chains"][0]["filters"][0]["typed_config"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    assert vhost["retry_policy"]["retry_on"] == "connect-failure"  # never a reset write
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    out = subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]


def test_one_gateway_renders_as_before() -> None:
    render = _render()
    gateway, services = render.template_addresses()
    config = yaml.safe_load(render.render(8080, gateway, services, 9901, render.DESCRIPTOR))
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert "outlier_detection" not in clusters["luna_gateway"]
    assert "circuit_breakers" not in clusters["luna_gateway"]
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert "retry_policy" not in hcm["typed_config"]["route_config"]["virtual_hosts"][0]


def test_grpc_target_and_nats_conf(tmp_path: Path) -> None:
    assert grpc_target(["127.0.0.1:1"]) == "127.0.0.1:1"
    assert grpc_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    conf = nats_conf(1, 4000, [7000, 7001, 7002], tmp_path / "js")
    assert "server_name: nats-1" in conf and "port: 4000" in conf
    assert "listen: 127.0.0.1:7001" in conf
    assert "routes: [nats://127.0.0.1:7000, nats://127.0.0.1:7001, nats://127.0.0.1:7002]" in conf


def test_matcher_shards_replicas_and_proxies(tmp_path: Path, monkeypatch: Any) -> None:
    """Two shards of two replicas, each replica its own process with its shard id, its own
    address and snapshot directory and the shared map; the proxies are what every other
    service calls the matcher, and the map routes to both shards' replica pairs."""
    monkeypatch.setenv("LUNA_DATA_DIR", str(tmp_path))
    sup = ClusterSupervisor()
    sup.env = {config.SERVICE_ADDRESSES["matcher"].name: "proxies"}
    instances = {name: (address, argv, env) for name, address, argv, env in sup._instances()}
    shards = {n: i for n, i in instances.items() if n.startswith("matcher_") and "proxy" not in n}
    proxies = {n: i for n, i in instances.items() if n.startswith("matcher_proxy_")}
    assert sorted(shards) == ["matcher_0_1", "matcher_0_2", "matcher_1_1", "matcher_1_2"]
    assert sorted(proxies) == ["matcher_proxy_1", "matcher_proxy_2"]
    for name, (address, argv, env) in shards.items():
        assert argv == ["services.matcher"]
        assert env["LUNA_MATCHER_SHARD"] == name.split("_")[1]
        assert env["LUNA_MATCHER_ADDRESS"] == address
        assert env["LUNA_MATCHER_SNAPSHOT_DIR"].endswith(name)
    assert len({a for a, _, _ in shards.values()}) == 4
    for address, argv, env in proxies.values():
        assert argv == ["services.matcher.proxy"] and env["LUNA_MATCHER_ADDRESS"] == address
        assert "LUNA_MATCHER_SHARD" not in env
    targets = [grpc_target(r) for r in sup.layout.matcher_shards]
    assert all(t.startswith("ipv4:") and t.count(",") == 1 for t in targets)
    m = ShardMap.uniform(2, targets)
    assert [s.address for s in m.routed()] == targets
