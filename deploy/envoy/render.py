"""Render the Envoy front-proxy config for given addresses and ports.

`deploy/envoy/envoy.yaml` is the single source of truth and is valid as-is for the defaults of
`luna up`. This module loads it, rewrites only what differs between deployments (listener and
admin ports, the gateway and service upstream addresses, the descriptor path and the
transcoder's service list, read from that descriptor) and returns the YAML text. Routes,
filters and timeouts are never touched here: change them in envoy.yaml.

As a library (the e2e tests load it by path; with deploy/envoy on sys.path):

    from render import render
    text = render(8080, "127.0.0.1:5000", {"faces": "127.0.0.1:5110", ...}, 9901, "/abs/x.pb")

From the command line, for a platform started with `luna up` (addresses from runtime.json):

    .venv/bin/python deploy/envoy/render.py --runtime "$LUNA_DATA_DIR/runtime.json" \
        --port 8080 --admin-port 9901 -o /tmp/envoy.yaml
    .venv/bin/envoy -c /tmp/envoy.yaml

Upstreams given as IP literals become STATIC clusters; host names (compose service names,
Kubernetes Services) become STRICT_DNS clusters, so every resolved address gets traffic.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.yaml"
DESCRIPTOR = HERE / "luna_descriptor.pb"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
SERVICES = ("faces", "events", "estimator", "matcher", "tasks", "backport3")
GATEWAY_CLUSTER = "luna_gateway"
FRONT_LISTENER = "luna_front"  # public: REST only
INTERNAL_LISTENER = "luna_internal"  # gRPC and gRPC-JSON: never publish it


def cluster_name(service: str) -> str:
    return f"luna_{service}"


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range in {address!r}")
    return host, number


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _socket_address(config: dict[str, Any]) -> dict[str, Any]:
    return config["address"]["socket_address"]


def _addresses(address: str | Sequence[str]) -> list[str]:
    """`host:port`, a comma-separated list of them, or a sequence: the list of addresses."""
    items = address.split(",") if isinstance(address, str) else list(address)
    return [a.strip() for a in items if a.strip()]


def _set_upstream(cluster: dict[str, Any], address: str | Sequence[str]) -> None:
    hosts = [split_address(a) for a in _addresses(address)]
    if not hosts:
        raise ValueError(f"no address for {cluster['name']}")
    if len({_is_ip(host) for host, _ in hosts}) > 1:
        raise ValueError(f"{cluster['name']}: mix of IP literals and host names: {address!r}")
    cluster["type"] = "STATIC" if _is_ip(hosts[0][0]) else "STRICT_DNS"
    if cluster["type"] == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    else:
        cluster.pop("dns_lookup_family", None)
    if len(hosts) > 1:
        # Several instances (a local cluster): one that stops accepting connections is taken
        # out of the rotation after two failures instead of getting its share of requests.
        cluster["outlier_detection"] = {
            "consecutive_gateway_failure": 2,
            "enforcing_consecutive_gateway_failure": 100,
            "consecutive_local_origin_failure": 2,
            "enforcing_consecutive_local_origin_failure": 100,
            "split_external_local_origin_errors": True,
            "interval": "1s",
            "base_ejection_time": "2s",
            "max_ejection_percent": 50,
        }
    cluster["load_assignment"] = {
        "cluster_name": cluster["name"],
        "endpoints": [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {"socket_address": {"address": host, "port_value": port}}
                        }
                    }
                    for host, port in hosts
                ]
            }
        ],
    }


def _retry_refused_connections(config: dict[str, Any], gateway: dict[str, Any]) -> None:
    """With several gateways, a REST request whose connection a gateway refused (it is down)
    goes to another one. Only connect failures: the gateway never saw such a request, so the
    retry cannot repeat a write; a request reset midway is not retried. The retry circuit
    breaker (3 concurrent retries by default) is raised so that every such request of the
    seconds a gateway takes to come back is retried, not answered 503 (`UO`)."""
    gateway["circuit_breakers"] = {"thresholds": [{"priority": "DEFAULT", "max_retries": 1024}]}
    hcm = listener(config, FRONT_LISTENER)["filter_chains"][0]["filters"][0]["typed_config"]
    for virtual_host in hcm["route_config"]["virtual_hosts"]:
        virtual_host["retry_policy"] = {
            "retry_on": "connect-failure",
            "num_retries": 2,
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts"
                        ".v3.PreviousHostsPredicate"
                    },
                }
            ],
            "host_selection_retry_max_attempts": 3,
        }


def listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [x for x in config["static_resources"]["listeners"] if x["name"] == name]
    return found


def _http_filters(config: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = listener(config, INTERNAL_LISTENER)["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["http_filters"]


def transcoder_config(config: dict[str, Any]) -> dict[str, Any]:
    """The grpc_json_transcoder's typed_config inside a loaded envoy.yaml."""
    for http_filter in _http_filters(config):
        if http_filter["name"] == TRANSCODER:
            return http_filter["typed_config"]
    raise KeyError(f"{TRANSCODER} not in the template")


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def descriptor_services(descriptor_path: str | Path = DESCRIPTOR) -> list[str]:
    """Full names of the gRPC services in a descriptor set (what the transcoder can serve)."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(Path(descriptor_path).read_bytes())
    return sorted(
        f"{file.package}.{service.name}" if file.package else service.name
        for file in fds.file
        for service in file.service
        if file.package.startswith("luna.")
    )


class _NoAliasDumper(yaml.SafeDumper):
    """Spell shared nodes out instead of emitting `&id001` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(
    listen_port: int,
    gateway_addr: str | Sequence[str],
    service_addrs: dict[str, str],
    admin_port: int,
    descriptor_path: str | Path,
    *,
    listen_host: str = "0.0.0.0",
    internal_port: int = 8081,
    internal_host: str = "127.0.0.1",
    template: Path = TEMPLATE,
) -> str:
    """The Envoy config (YAML text) for these addresses.

    `service_addrs` maps each of faces/events/estimator/matcher/tasks/backport3 to `host:port`;
    the gateway and each service may also be several addresses (a sequence or a comma-separated
    string: every one gets traffic, and one that fails is ejected for a while).
    `descriptor_path` should be absolute unless Envoy runs from the repository root; it is
    also read here, so the transcoder lists every `luna.*` service it holds.
    The public listener (`listen_host:listen_port`) serves REST only; the internal one
    (`internal_host:internal_port`, loopback by default) serves the services' gRPC and
    gRPC-JSON APIs, which check no credentials: bind it to an address clients cannot reach.
    Admin stays on 127.0.0.1.
    """
    missing = [s for s in SERVICES if s not in service_addrs]
    unknown = sorted(set(service_addrs) - set(SERVICES))
    if missing or unknown:
        raise ValueError(f"service_addrs: missing {missing}, unknown {unknown}")
    config = load_template(template)
    _socket_address(config["admin"])["port_value"] = int(admin_port)
    front = _socket_address(listener(config, FRONT_LISTENER))
    front.update(address=listen_host, port_value=int(listen_port))
    internal = _socket_address(listener(config, INTERNAL_LISTENER))
    internal.update(address=internal_host, port_value=int(internal_port))
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    _set_upstream(clusters[GATEWAY_CLUSTER], gateway_addr)
    if len(_addresses(gateway_addr)) > 1:
        _retry_refused_connections(config, clusters[GATEWAY_CLUSTER])
    for service, address in service_addrs.items():
        _set_upstream(clusters[cluster_name(service)], address)
    transcoder = transcoder_config(config)
    transcoder["proto_descriptor"] = str(descriptor_path)
    transcoder["services"] = descriptor_services(descriptor_path)
    header = "# Rendered by deploy/envoy/render.py from deploy/envoy/envoy.yaml; do not edit.\n"
    return header + yaml.dump(config, Dumper=_NoAliasDumper, sort_keys=False, width=100)


def template_addresses(template: Path = TEMPLATE) -> tuple[str, dict[str, str]]:
    """(gateway address, service addresses) as written in the template: `luna up`'s defaults."""
    clusters = {c["name"]: c for c in load_template(template)["static_resources"]["clusters"]}

    def address(name: str) -> str:
        endpoint = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        socket = endpoint["endpoint"]["address"]["socket_address"]
        return f"{socket['address']}:{socket['port_value']}"

    return address(GATEWAY_CLUSTER), {s: address(cluster_name(s)) for s in SERVICES}


def addresses_from_runtime(runtime: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(gateway address, service addresses) from `luna up`'s runtime.json."""
    url = str(runtime["url"])
    gateway = url.split("://", 1)[-1].rstrip("/")
    services = {name: runtime["services"][name]["address"] for name in SERVICES}
    return gateway, services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", type=Path, help="runtime.json written by `luna up`")
    parser.add_argument(
        "--gateway", help="gateway host:port, or several comma-separated (default: from --runtime)"
    )
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT[,HOST:PORT]",
        help="a service's address(es) (repeatable; overrides --runtime)",
    )
    parser.add_argument("--port", type=int, default=8080, help="REST listener port (default 8080)")
    parser.add_argument("--host", default="0.0.0.0", help="REST listener address (default 0.0.0.0)")
    parser.add_argument(
        "--internal-port", type=int, default=8081, help="gRPC listener port (default 8081)"
    )
    parser.add_argument(
        "--internal-host",
        default="127.0.0.1",
        help="gRPC listener address (default 127.0.0.1; it checks no credentials)",
    )
    parser.add_argument("--admin-port", type=int, default=9901, help="admin port on 127.0.0.1")
    parser.add_argument(
        "--descriptor", type=Path, default=DESCRIPTOR, help="descriptor set from `make proto`"
    )
    parser.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    args = parser.parse_args(argv)

    gateway, services = template_addresses()
    if args.runtime:
        gateway, services = addresses_from_runtime(json.loads(args.runtime.read_text()))
    if args.gateway:
        gateway = args.gateway
    for item in args.service:
        name, sep, address = item.partition("=")
        if not sep:
            parser.error(f"--service wants NAME=HOST:PORT, got {item!r}")
        services[name] = address
    text = render(
        args.port,
        gateway,
        services,
        args.admin_port,
        args.descriptor.resolve(),
        listen_host=args.host,
        internal_port=args.internal_port,
        internal_host=args.internal_host,
    )
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
