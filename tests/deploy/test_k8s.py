"""deploy/k8s: every overlay rendered, every object checked offline against the Kubernetes
schemas (kubernetes-validate, strict) or its CRD schema (CloudNativePG), and the references
between objects, settings, configs and images that no schema sees."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kustomize_lite
import pytest
import yaml
from deploytest import (
    K8S,
    OVERLAYS,
    REPO,
    WORKLOADS,
    Obj,
    containers,
    find,
    key,
    kubectl,
    of_kind,
    platform_containers,
    pod_spec,
    render,
    render_kubectl,
    runnable,
)
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from services.common import config
from services.common.metrics import METRICS_PORT_OFFSET
from services.matcher.shard.partition import ShardMap

# The oldest Kubernetes the manifests support (native gRPC probes are GA since 1.27; we pick a
# release still in support) and the newest the schemas know.
K8S_VERSIONS = ("1.30.0", "1.37.0")
DATA = Path(__file__).with_name("data")
CNPG = json.loads((DATA / "cnpg-cluster-v1.schema.json").read_text())
ENVOY_BIN = Path(sys.executable).with_name("envoy")
NATS_BIN = Path(sys.executable).with_name("nats-server")
# Secrets the operator creates before applying (deploy/k8s/README.md says how); the CNPG
# operator creates `<cluster>-app` itself where the overlay has a Cluster.
EXTERNAL_SECRETS = {"luna-secrets", "luna-database-app"}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.skipif(kubectl() is None, reason="no kubectl: nothing to compare kustomize_lite with")
@pytest.mark.parametrize("directory", [*(f"overlays/{o}" for o in OVERLAYS), "shards/0"])
def test_kustomize_lite_renders_what_kubectl_kustomize_renders(directory: str) -> None:
    mine = sorted(kustomize_lite.build(K8S / directory), key=key)
    real = sorted(render_kubectl(K8S / directory), key=key)
    assert [key(o) for o in mine] == [key(o) for o in real]
    for a, b in zip(mine, real, strict=True):
        assert a == b, key(a)


def test_kustomize_lite_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("commonLabels: {a: b}\n")
    with pytest.raises(kustomize_lite.KustomizeError, match="commonLabels"):
        kustomize_lite.build(tmp_path)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_for_kubernetes(overlay: str, version: str) -> None:
    checked = 0
    for obj in render(overlay):
        if obj["apiVersion"].startswith("postgresql.cnpg.io/"):
            continue  # a CRD: test_cloudnative_pg_cluster_matches_its_crd
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key(obj)} on Kubernetes {version}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 20


def test_the_schema_check_catches_a_misspelt_field() -> None:
    obj = find(render("single-node"), "Deployment", "faces")
    pod_spec(obj)["containers"][0]["readinesProbe"] = {"grpc": {"port": 5110}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the structural schema would prune (kubectl --validate=strict rejects them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for name, item in value.items():
            if name in schema["properties"]:
                found += _unknown_fields(item, schema["properties"][name], f"{path}.{name}")
            elif not schema.get("additionalProperties"):
                found.append(f"{path}.{name}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for name, item in value.items():
            found += _unknown_fields(item, schema["additionalProperties"], f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def _check_cnpg(obj: Obj) -> None:
    jsonschema.Draft7Validator(CNPG["schema"]).validate(obj)
    assert _unknown_fields({k: v for k, v in obj.items() if k != "metadata"}, CNPG["schema"]) == []


@pytest.mark.parametrize("overlay", ["cluster", "gpu"])
def test_cloudnative_pg_cluster_matches_its_crd(overlay: str) -> None:
    (cluster,) = of_kind(render(overlay), "Cluster")
    assert cluster["apiVersion"] == f"{CNPG['group']}/{CNPG['version']}"
    _check_cnpg(cluster)
    assert cluster["spec"]["instances"] >= 3  # a primary and two replicas to fail over to

    cluster["spec"]["storage"]["sise"] = "1Gi"
    with pytest.raises(AssertionError):
        _check_cnpg(cluster)
    cluster["spec"]["storage"].pop("sise")
    cluster["spec"]["instances"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        _check_cnpg(cluster)


def _labels(workload: Obj) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_ports_and_names_line_up(overlay: str) -> None:
    objects = render(overlay)
    workloads = of_kind(objects, *WORKLOADS)
    for w in workloads:
        assert _selects(w["spec"]["selector"]["matchLabels"], _labels(w)), key(w)
    for svc in of_kind(objects, "Service"):
        chosen = [w for w in workloads if _selects(svc["spec"]["selector"], _labels(w))]
        assert chosen, f"Service {svc['metadata']['name']} selects no pods"
        for port in svc["spec"]["ports"]:
            for w in chosen:
                ports = [p for c in containers(w) for p in c.get("ports", [])]
                named = {p["name"]: p["containerPort"] for p in ports}
                where = (svc["metadata"]["name"], port)
                assert port["targetPort"] in {*named, *named.values()}, where
                assert named.get(port["name"], port["port"]) == port["port"], where
    for sts in of_kind(objects, "StatefulSet"):
        governing = find(objects, "Service", sts["spec"]["serviceName"])
        assert governing["spec"].get("clusterIP") == "None", sts["metadata"]["name"]
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(objects, ref["kind"], ref["name"])
        assert all("requests" in c.get("resources", {}) for c in containers(target, init=False))
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(_selects(selector, _labels(w)) for w in workloads), pdb["metadata"]["name"]


def _policy_selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for rule in selector.get("matchExpressions", []):
        assert rule["operator"] in ("In", "NotIn"), rule  # the only ones used here
        inside = labels.get(rule["key"]) in rule["values"]
        if inside != (rule["operator"] == "In"):
            return False
    return True


def test_only_the_mesh_reaches_the_services_and_only_rest_reaches_envoy(overlay: str) -> None:
    """The services' gRPC APIs trust the scope in each message: every platform pod but Envoy
    takes ingress from the mesh's own pods only, and Envoy from anywhere on its public REST
    port alone (its internal gRPC listener only from the mesh)."""
    objects = render(overlay)
    policies = of_kind(objects, "NetworkPolicy")
    mesh = {"app.kubernetes.io/part-of": "luna-mesh"}
    for w in of_kind(objects, *WORKLOADS):
        labels = _labels(w)
        governing = [p for p in policies if _policy_selects(p["spec"]["podSelector"], labels)]
        assert governing, f"{key(w)}: no NetworkPolicy selects its pods"
        rules = [r for p in governing for r in p["spec"]["ingress"]]
        for rule in rules:
            if "from" in rule:
                assert all(peer == {"podSelector": {"matchLabels": mesh}} for peer in rule["from"])
        open_ports = sorted(p["port"] for r in rules if "from" not in r for p in r["ports"])
        public = labels.get("app.kubernetes.io/name") == "envoy"
        assert open_ports == ([8080] if public else []), (key(w), open_ports)
        if public:
            listener = yaml.safe_load((K8S / "base/envoy/envoy.yaml").read_text())
            ports = {
                ls["name"]: ls["address"]["socket_address"]["port_value"]
                for ls in listener["static_resources"]["listeners"]
            }
            assert ports == {"luna_front": 8080, "luna_internal": 8081}, ports


def test_config_maps_and_secrets_exist(overlay: str) -> None:
    objects = render(overlay)
    config_maps = {o["metadata"]["name"]: o for o in of_kind(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"] for o in of_kind(objects, "Secret")}
    secrets |= {f"{c['metadata']['name']}-app" for c in of_kind(objects, "Cluster")}
    for w in of_kind(objects, *WORKLOADS):
        for volume in pod_spec(w).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, key(w)
        for c in containers(w):
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, key(w)
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    cm = config_maps[ref["configMapKeyRef"]["name"]]
                    assert ref["configMapKeyRef"]["key"] in cm["data"]
                if "secretKeyRef" in ref:
                    name = ref["secretKeyRef"]["name"]
                    assert name in secrets | EXTERNAL_SECRETS, (key(w), name)
    namespaces = {o["metadata"]["name"] for o in of_kind(objects, "Namespace")}
    assert namespaces == {"luna"}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"luna"}


def test_external_secrets_are_documented() -> None:
    readme = (K8S / "README.md").read_text()
    for name in EXTERNAL_SECRETS:
        assert re.search(rf"kubectl .*create secret generic {name}\b", readme), name
    # single-node has no database of its own: its URL must come from the external Secret.
    assert not of_kind(render("single-node"), "Cluster")


def _env(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "<ref>") for e in container.get("env", [])}


def test_every_luna_variable_is_a_real_setting(overlay: str) -> None:
    declared = {s.name for s in config.declared()}
    objects = render(overlay)
    used = set(find(objects, "ConfigMap", "luna-config")["data"])
    for _, c in platform_containers(objects):
        used |= {name for name in _env(c) if name.startswith("LUNA_")}
    assert used - declared == set()
    assert "LUNA_NATS_REPLICAS" in used


def test_every_command_runs_an_existing_module(overlay: str) -> None:
    modules = {c["command"][2] for _, c in platform_containers(render(overlay))}
    assert {f"services.{s}" for s in config.SERVICE_PORTS} | {"services.gateway"} <= modules
    for module in modules:
        assert runnable(module), module


def test_services_listen_where_the_others_call_them(overlay: str) -> None:
    objects = render(overlay)
    settings = find(objects, "ConfigMap", "luna-config")["data"]
    for service in config.SERVICE_PORTS:
        variable = f"LUNA_{service.upper()}_ADDRESS"
        host, _, port = settings[variable].rpartition(":")
        svc = find(objects, "Service", host)
        assert int(port) in {p["port"] for p in svc["spec"]["ports"]}, variable
        # The matcher's address is the matcher proxy's where shards run behind it.
        modules = {f"services.{service}", f"services.{service}.proxy"}
        owners = [
            (w, c)
            for w, c in platform_containers(objects)
            if c["command"][2] in modules and _selects(svc["spec"]["selector"], _labels(w))
        ]
        assert owners, service
        for w, c in owners:
            # A service binds LUNA_<SVC>_ADDRESS: its own pod must say 0.0.0.0, not the Service.
            assert _env(c)[variable] == f"0.0.0.0:{port}", key(w)
            metrics = int(port) + METRICS_PORT_OFFSET
            assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
                "grpc": int(port),
                "metrics": metrics,
            }
            assert _env(c)[f"LUNA_{service.upper()}_METRICS_ADDRESS"] == f"0.0.0.0:{metrics}"
            annotations = w["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(metrics)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["grpc"]["port"] == int(port), (key(w), probe)
            assert _selects(svc["spec"]["selector"], _labels(w))
    gateway = find(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    listeners = {
        "http": "LUNA_PORT",
        "tasks-api": "LUNA_TASKS_API_PORT",
        "sender": "LUNA_SENDER_PORT",
        "backport3": "LUNA_BACKPORT3_PORT",
    }
    assert {p["name"]: p["containerPort"] for p in gateway["ports"]} == {
        name: int(settings[variable]) for name, variable in listeners.items()
    }
    assert settings["LUNA_HOST"] == settings["LUNA_TASKS_API_HOST"] == "0.0.0.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/version", "port": "http"}
    nats_host = settings["LUNA_NATS_URL"].removeprefix("nats://").rpartition(":")[0]
    assert find(objects, "Service", nats_host)


def test_images_are_pinned(overlay: str) -> None:
    for w in of_kind(render(overlay), *WORKLOADS):
        for c in containers(w):
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


@pytest.mark.parametrize(("overlay", "servers"), [("single-node", 1), ("cluster", 3), ("gpu", 3)])
def test_nats_config_is_valid_for_nats_server(overlay: str, servers: int, tmp_path: Path) -> None:
    objects = render(overlay)
    conf = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert find(objects, "StatefulSet", "nats")["spec"]["replicas"] == servers
    replicas = int(find(objects, "ConfigMap", "luna-config")["data"]["LUNA_NATS_REPLICAS"])
    assert replicas == servers  # every stream on every server
    routes = re.findall(r"nats://(nats-\d+)\.nats-headless:6222", conf)
    assert routes == ([f"nats-{i}" for i in range(servers)] if servers > 1 else [])
    path = tmp_path / "nats.conf"
    path.write_text(conf)
    res = subprocess.run(
        [str(NATS_BIN), "-c", str(path), "-t"],
        env={"SERVER_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "is valid" in res.stdout + res.stderr


def test_the_nats_check_catches_a_broken_config(tmp_path: Path) -> None:
    path = tmp_path / "nats.conf"
    path.write_text("jetstream { store_dir: /data, max_file_store: lots }\n")
    res = subprocess.run([str(NATS_BIN), "-c", str(path), "-t"], capture_output=True, timeout=30)
    assert res.returncode != 0


def test_envoy_config_is_current_and_valid(overlay: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "render_configs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    objects = render(overlay)
    text = find(objects, "ConfigMap", "envoy-config")["data"]["envoy.yaml"]
    envoy = find(objects, "Deployment", "envoy")
    mounts = {m["name"]: m["mountPath"] for c in containers(envoy) for m in c["volumeMounts"]}
    container_pb = f"{mounts['descriptor']}/luna_descriptor.pb"
    assert container_pb in text
    args = pod_spec(envoy)["containers"][0]["args"]
    assert args[args.index("-c") + 1] == f"{mounts['config']}/envoy.yaml"
    init = pod_spec(envoy)["initContainers"][0]["command"]
    assert init[1:] == ["/app/deploy/envoy/luna_descriptor.pb", mounts["descriptor"] + "/"]
    settings = find(objects, "ConfigMap", "luna-config")["data"]
    clusters = {c["name"]: c for c in yaml.safe_load(text)["static_resources"]["clusters"]}
    for service in config.SERVICE_PORTS:
        endpoints = clusters[f"luna_{service}"]["load_assignment"]["endpoints"]
        socket = endpoints[0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        address = f"{socket['address']}:{socket['port_value']}"
        assert address == settings[f"LUNA_{service.upper()}_ADDRESS"]
        assert clusters[f"luna_{service}"]["type"] == "STRICT_DNS"
    local = tmp_path / "envoy.yaml"
    local.write_text(text.replace(container_pb, str(REPO / "deploy/envoy/luna_descriptor.pb")))
    res = subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(local), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_matcher_is_a_stateful_set_per_shard(overlay: str) -> None:
    """single-node: one unsharded matcher the `matcher` Service names directly (no proxy).
    cluster/gpu: shards 0 and 1 of two replicas, each its own headless Service and the
    shard map mounted, behind the matcher proxy that the `matcher` Service selects; the map
    names every shard's Service and parses."""
    objects = render(overlay)
    shards = [s for s in of_kind(objects, "StatefulSet") if _labels(s).get("luna-shard")]
    single = overlay == "single-node"
    assert [s["metadata"]["name"] for s in shards] == (
        ["matcher-0"] if single else ["matcher-0", "matcher-1"]
    )
    settings = find(objects, "ConfigMap", "luna-config")["data"]
    matcher = find(objects, "Service", "matcher")
    for n, shard in enumerate(shards):
        assert shard["spec"]["template"]["metadata"]["labels"]["luna-shard"] == str(n)
        assert shard["spec"]["replicas"] == (1 if single else 2)
        assert shard["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "snapshots"
        (c,) = pod_spec(shard)["containers"]
        snapshot_dir = _env(c)["LUNA_MATCHER_SNAPSHOT_DIR"]
        assert any(snapshot_dir.startswith(m["mountPath"]) for m in c["volumeMounts"])
        assert find(objects, "Service", shard["spec"]["serviceName"])
        assert _selects(matcher["spec"]["selector"], _labels(shard)) == single
        if single:
            assert "LUNA_MATCHER_SHARD" not in _env(c) and "LUNA_MATCHER_SHARD_MAP" not in settings
            continue
        assert _env(c)["LUNA_MATCHER_SHARD"] == str(n)
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert settings["LUNA_MATCHER_SHARD_MAP"].startswith(mounts["shard-map"])
    if single:
        assert "matcher-proxy" not in {
            d["metadata"]["name"] for d in of_kind(objects, "Deployment")
        }
        return
    proxy = find(objects, "Deployment", "matcher-proxy")
    assert _selects(matcher["spec"]["selector"], _labels(proxy))
    (c,) = pod_spec(proxy)["containers"]
    assert c["command"] == ["python", "-m", "services.matcher.proxy"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert settings["LUNA_MATCHER_SHARD_MAP"].startswith(mounts["shard-map"])
    # The gateways route matches themselves (LUNA_GATEWAY_ROUTE_MATCHES defaults on): the
    # map mounted where the setting names it.
    (c,) = pod_spec(find(objects, "Deployment", "gateway"))["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert settings["LUNA_MATCHER_SHARD_MAP"].startswith(mounts["shard-map"])
    assert settings.get("LUNA_GATEWAY_ROUTE_MATCHES", "1") == "1"
    shard_map = ShardMap.from_json(
        json.loads(find(objects, "ConfigMap", "matcher-shards")["data"]["shards.json"])
    )
    assert [s.id for s in shard_map.routed()] == [0, 1]
    for s in shard_map.shards:
        host, _, port = s.address.rpartition(":")
        svc = find(objects, "Service", host)
        assert svc["spec"]["selector"]["luna-shard"] == str(s.id)
        assert int(port) in {p["port"] for p in svc["spec"]["ports"]}


def test_gpu_overlay_runs_inference_on_triton() -> None:
    objects = render("gpu")
    settings = find(objects, "ConfigMap", "luna-config")["data"]
    assert settings["LUNA_ESTIMATOR_BACKEND"] == "triton"
    triton = find(objects, "Deployment", "triton")
    host, _, port = settings["LUNA_TRITON_URL"].rpartition(":")
    svc = find(objects, "Service", host)
    assert {(p["name"], p["port"]) for p in svc["spec"]["ports"]} >= {("grpc", int(port))}
    spec = pod_spec(triton)
    (server,) = spec["containers"]
    assert server["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in spec["tolerations"]
    assert spec["nodeSelector"]
    assert "--model-repository=/models" in server["args"]
    assert "triton" not in {o["metadata"]["name"] for o in render("cluster")}


def test_triton_gets_gpu_instance_groups_and_keeps_dynamic_batching(tmp_path: Path) -> None:
    from services.estimator.model_repo import manifest_is_valid, models_dir

    repo = models_dir()
    # `make setup` installs the repository; without it this check would prove nothing.
    assert manifest_is_valid(repo, check_hashes=False), f"no model repository at {repo}"
    (init,) = pod_spec(find(render("gpu"), "Deployment", "triton"))["initContainers"]
    assert init["command"][:2] == ["sh", "-c"]
    # Run the init container's own script on a copy of the repository the image carries.
    image_models = tmp_path / "app" / "models"
    for cfg in repo.glob("*/config.pbtxt"):
        (image_models / cfg.parent.name).mkdir(parents=True)
        shutil.copy(cfg, image_models / cfg.parent.name / "config.pbtxt")
    out = tmp_path / "models"
    out.mkdir()
    script = (
        init["command"][2]
        .replace("/app/models/", "@IMAGE@/")
        .replace("/models/", f"{out}/")
        .replace("@IMAGE@", str(image_models))
    )
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    configs = sorted(out.glob("*/config.pbtxt"))
    assert len(configs) == len(list(repo.glob("*/config.pbtxt"))) >= 5
    batched = 0
    for path in configs:
        cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert cfg.name == path.parent.name
        assert [(g.kind, g.count) for g in cfg.instance_group] == [
            (model_config_pb2.ModelInstanceGroup.KIND_GPU, 2)
        ]
        if cfg.max_batch_size > 0:
            assert cfg.HasField("dynamic_batching"), path
            batched += 1
    assert batched >= 1


@pytest.mark.parametrize("overlay", ["cluster", "gpu"])
def test_cluster_workloads_are_replicated_and_drain_safely(overlay: str) -> None:
    objects = render(overlay)
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    budgets = [
        p["spec"]["selector"]["matchLabels"] for p in of_kind(objects, "PodDisruptionBudget")
    ]
    for w in of_kind(objects, *WORKLOADS):
        name = w["metadata"]["name"]
        if name == "triton":
            continue  # one per GPU; scaled by adding GPUs
        replicas = scaled[name]["spec"]["minReplicas"] if name in scaled else w["spec"]["replicas"]
        assert replicas >= 2, name
        assert any(_selects(b, _labels(w)) for b in budgets), name
    assert {"gateway", "faces", "events", "estimator"} <= set(scaled)
