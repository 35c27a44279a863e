"""`luna up`: embedded NATS and PostgreSQL, then every service as its own process.

The supervisor waits until every service reports SERVING over gRPC health, starts the gateway,
records what runs where in `<data dir>/runtime.json`, restarts a service or an embedded server
that dies (and logs it), and stops everything in reverse order on Ctrl-C / SIGTERM.

Children never outlive it: each gets a parent-death signal, and a later `luna up` on the same
data directory stops whatever the runtime file says an earlier one left running
(services/launcher/procs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import config
from services.common.stopping import cancel_and_wait
from services.launcher import runtime_metrics as metrics
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres, pick_free_port
from services.launcher.procs import (
    ProcessRecord,
    die_with_parent,
    record_of,
    service_of_data_dir,
    still_ours,
    stop_leftovers,
)

log = logging.getLogger("luna.supervisor")

SERVICES = tuple(config.SERVICE_PORTS)  # started in this order
TASKS_WORKERS = config.declare(
    "LUNA_TASKS_WORKERS", 2, "Task worker processes `luna up` starts (more may run anywhere)."
)
START_TIMEOUT = config.declare(
    "LUNA_START_TIMEOUT", 180, "Seconds `luna up` waits for every service to be SERVING."
)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    log_file: IO[bytes] | None = field(default=None, repr=False)

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file is None:
            self.log_file = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *die_with_parent(self.argv, signal.SIGTERM),
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=self.log_file,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children
        )
        self.started_at = time.monotonic()

    def record_json(self) -> dict[str, object]:
        """Start time and command line, so a later `luna up` can tell it is still this."""
        record = None if self.process is None else record_of(self.name, self.process.pid)
        return {} if record is None else record.as_json()

    async def stop(self, grace: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _check_alive(child: Child | None) -> None:
    if child is not None and child.process is not None and child.process.returncode is not None:
        raise RuntimeError(f"{child.name} exited with {child.process.returncode}")


async def wait_serving(address: str, timeout: float, child: Child | None = None) -> None:
    """Until the server at `address` answers grpc.health SERVING (or `child` dies)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            _check_alive(child)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address} not SERVING after {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def wait_http(url: str, timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            _check_alive(child)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 after {timeout:.0f}s")
            await asyncio.sleep(0.2)


def listener_env(free_ports: bool) -> dict[str, str]:
    """Where the children listen, as their environment: each service's gRPC and metrics
    address, and the gateway process's Sender, Backport 3 and Tasks API ports. Under
    `--free-ports` each one not set explicitly gets a free loopback port."""
    addresses = [*config.SERVICE_ADDRESSES.values(), *config.METRICS_ADDRESSES.values()]
    ports = [config.SENDER_PORT, config.BACKPORT3_PORT, config.TASKS_API_PORT]
    env = {s.name: s.get() for s in [*addresses, *ports]}
    if free_ports:
        for setting in addresses:
            if setting.name not in os.environ:
                env[setting.name] = f"127.0.0.1:{pick_free_port()}"
        for setting in ports:
            if setting.name not in os.environ:
                env[setting.name] = str(pick_free_port())
    return env


class Supervisor:
    def __init__(self, *, free_ports: bool = False) -> None:
        self.data_dir = config.data_dir()
        self.free_ports = free_ports
        self.nats: EmbeddedNats | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children: dict[str, Child] = {}
        self.env: dict[str, str] = {}
        self._stopping = asyncio.Event()
        self._lock_file: IO[str] | None = None
        self._restarting: dict[str, asyncio.Task[None]] = {}  # embedded servers coming back

    def _lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.data_dir / "luna.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another `luna up` is already running on {self.data_dir}") from None

    async def stop_leftovers(self) -> None:
        """Stop what an earlier `luna up` on this data directory left running (it was killed
        before it could stop its children): services first, embedded servers last."""
        try:
            runtime = json.loads((self.data_dir / "runtime.json").read_text())
        except (FileNotFoundError, ValueError):
            return
        records = []
        services = runtime.get("services", {})
        for name in sorted(services, key=lambda n: n != "gateway"):
            info = services[name]
            record = ProcessRecord.from_json(name, info)
            if record is None and isinstance(info.get("pid"), int):
                record = service_of_data_dir(
                    name, info["pid"], f"services.{name}", str(self.data_dir)
                )
            records.append(record)
        for name, info in runtime.get("infrastructure", {}).items():
            records.append(ProcessRecord.from_json(name, info))
        stopped = await stop_leftovers(r for r in records if r is not None)
        if stopped:
            log.warning("stopped leftovers of an earlier run: %s", ", ".join(stopped))

    def _servers(self) -> list[EmbeddedNats | EmbeddedPostgres]:
        return [s for s in (self.postgres, self.nats) if s is not None]

    async def start_infrastructure(self) -> None:
        env = dict(os.environ)
        env["LUNA_DATA_DIR"] = str(self.data_dir)
        # Known before the servers answer, so the runtime file can be written meanwhile.
        env.setdefault("LUNA_DATABASE_URL", config.database_url())
        env.setdefault("LUNA_NATS_URL", config.nats_url())
        self.env = env
        if not config.database_url():
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            env["LUNA_DATABASE_URL"] = await self.postgres.start()
            log.info("embedded PostgreSQL at %s", env["LUNA_DATABASE_URL"])
            self.write_runtime()
        if not config.nats_url():
            self.nats = EmbeddedNats(self.data_dir / "nats")
            env["LUNA_NATS_URL"] = await self.nats.start()
            log.info("embedded NATS at %s", env["LUNA_NATS_URL"])
            self.write_runtime()
        env.update(listener_env(self.free_ports))
        self.env = env

    def _child(self, name: str, module: str) -> Child:
        return Child(
            name=name,
            argv=[sys.executable, "-m", module],
            env=self.env,
            log_path=self.data_dir / "logs" / f"{name}.log",
        )

    async def start_services(self) -> None:
        timeout = START_TIMEOUT.get_float()
        for service in SERVICES:
            self.children[service] = self._child(service, f"services.{service}")
        await asyncio.gather(*(c.start() for c in self.children.values()))
        self.write_runtime()
        waits = [wait_serving(self._address(s), timeout) for s in SERVICES]
        results = await asyncio.gather(*waits, return_exceptions=True)
        failed = [
            f"{s} ({r}; see {self.children[s].log_path})"
            for s, r in zip(SERVICES, results, strict=True)
            if isinstance(r, BaseException)
        ]
        if failed:
            raise RuntimeError("services did not start: " + ", ".join(failed))
        for n in range(1, TASKS_WORKERS.get_int() + 1):
            worker = self._child(f"tasks_worker_{n}", "services.tasks.worker")
            self.children[worker.name] = worker
            await worker.start()
        self.children["gateway"] = self._child("gateway", "services.gateway")
        await self.children["gateway"].start()
        self.write_runtime()
        try:
            await wait_http(f"{self.url}/version", timeout, self.children["gateway"])
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.children['gateway'].log_path}") from None

    def _setting(self, setting: config.Setting) -> str:
        """`setting` as the children see it."""
        return self.env.get(setting.name, setting.get())

    def _address(self, service: str) -> str:
        return self.env[config.SERVICE_ADDRESSES[service].name]

    @property
    def url(self) -> str:
        return f"http://{self._setting(config.HOST)}:{self._setting(config.PORT)}"

    @property
    def backport3_url(self) -> str | None:
        """Backport 3's own listener (served by the gateway process), None when disabled."""
        port = self._setting(config.BACKPORT3_PORT)
        return f"http://{self._setting(config.HOST)}:{port}" if port != "0" else None

    @property
    def tasks_api_url(self) -> str:
        host, port = self._setting(config.TASKS_API_HOST), self._setting(config.TASKS_API_PORT)
        return f"http://{host}:{port}"

    def write_runtime(self) -> None:
        """What runs where; written as soon as anything runs, so that a later `luna up` can
        stop it even if this one dies while starting."""
        infrastructure: dict[str, dict[str, object]] = {}
        for server in self._servers():
            record = record_of(server.name, server.pid, server.stop_signal) if server.pid else None
            if record is not None:
                infrastructure[server.name] = record.as_json()
        runtime = {
            "infrastructure": infrastructure,
            "url": self.url,
            "database_url": self.env["LUNA_DATABASE_URL"],
            "nats_url": self.env["LUNA_NATS_URL"],
            "tasks_api_url": self.tasks_api_url,
            "supervisor_pid": os.getpid(),
            "backport3_url": self.backport3_url,
            "services": {
                name: {
                    "pid": child.process.pid if child.process else None,
                    "address": self.env.get(f"LUNA_{name.upper()}_ADDRESS", self.url),
                    "log": str(child.log_path),
                    **child.record_json(),
                }
                for name, child in self.children.items()
            },
            **metrics.runtime_entries(self.env),
        }
        path = self.data_dir / "runtime.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(runtime, indent=2))
        tmp.replace(path)  # readers never see half a file

    async def watch(self) -> None:
        """Restart any child that exits while we are not stopping."""
        while not self._stopping.is_set():
            for child in self.children.values():
                proc = child.process
                if proc is None or proc.returncode is None:
                    continue
                # The first restart is at once: most deaths are one-off kills, and every
                # second here is a second of 5xx answers.
                backoff = min(30.0, 0.25 * 4.0 ** min(child.restarts, 4)) if child.restarts else 0.0
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0  # it ran fine for a while: forgive old crashes
                log.warning(
                    "%s exited with %s; restarting in %.0fs (restart #%d, log %s)",
                    child.name,
                    proc.returncode,
                    backoff,
                    child.restarts + 1,
                    child.log_path,
                )
                child.restarts += 1
                child.process = None
                asyncio.get_running_loop().call_later(
                    backoff, lambda c=child: asyncio.ensure_future(self._restart(c))
                )
            for server in self._servers():
                if server.name not in self._restarting and not server.is_running():
                    self._restarting[server.name] = asyncio.create_task(
                        self._restart_server(server)
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.5)

    async def _restart(self, child: Child) -> None:
        if self._stopping.is_set():
            return
        await child.start()
        log.info("%s restarted (pid %s)", child.name, child.process.pid if child.process else "?")
        self.write_runtime()

    async def _restart_server(self, server: EmbeddedNats | EmbeddedPostgres) -> None:
        """Bring a dead embedded server back on the same port and data; retried with backoff
        (the services ride through meanwhile: they reconnect by themselves)."""
        log.warning("embedded %s (pid %s) died; restarting it", server.name, server.pid)
        delay = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    await server.restart()
                except Exception as exc:
                    log.error("restarting embedded %s failed (%s); retrying", server.name, exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), delay)
                    delay = min(10.0, delay * 2)
                    continue
                log.info("embedded %s restarted (pid %s)", server.name, server.pid)
                self.write_runtime()
                return
        finally:
            self._restarting.pop(server.name, None)

    def stop_order(self) -> list[list[str]]:
        """The children in the groups they stop in, each group after the one before: the
        gateway first, so no request comes in while the services behind it go."""
        return [["gateway"], [n for n in self.children if n != "gateway"]]

    async def stop(self) -> None:
        """The children by `stop_order`, then embedded NATS and PostgreSQL."""
        self._stopping.set()
        for task in list(self._restarting.values()):
            await cancel_and_wait(task)
        for group in self.stop_order():
            await asyncio.gather(
                *(self.children[n].stop() for n in group if n in self.children),
                return_exceptions=True,
            )
        for child in self.children.values():
            if child.log_file is not None:
                child.log_file.close()
        if self.nats is not None:
            await self.nats.stop()
        if self.postgres is not None:
            await self.postgres.stop()
        (self.data_dir / "runtime.json").unlink(missing_ok=True)

    async def run(self) -> None:
        self._lock()
        await self.stop_leftovers()
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        started = False

        def on_signal() -> None:
            # While starting, nothing watches the stop event: cancel the start itself.
            self._stopping.set()
            if not started and main is not None:
                main.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await self.start_infrastructure()
            await self.start_services()
            started = True
            self.write_runtime()
            print(
                f"LUNA platform is up: {self.url}  (data: {self.data_dir}; Ctrl-C stops)",
                flush=True,
            )
            await self.watch()
        finally:
            log.info("stopping")
            await self.stop()
            log.info("stopped")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def status(data_dir: Path) -> int:
    """Print each service's health from runtime.json; non-zero when anything is down."""
    path = data_dir / "runtime.json"
    if not path.exists():
        print(f"not running (no {path})")
        return 1
    runtime = json.loads(path.read_text())
    worst = 0
    for name, info in runtime.get("infrastructure", {}).items():
        record = ProcessRecord.from_json(name, info)
        state = "RUNNING" if record is not None and still_ours(record) else "NOT RUNNING"
        if state != "RUNNING":
            worst = 1
        url = runtime.get(f"{'database' if name == 'postgres' else name}_url", "")
        if name.startswith("nats_"):  # a cluster's NATS node: its own URL in the list
            urls = str(runtime.get("nats_url", "")).split(",")
            index = int(name.rpartition("_")[2])
            url = urls[index] if index < len(urls) else ""
        print(f"{name:10} {state:12} pid={info.get('pid')!s:<8} {url}")
    for name, info in runtime["services"].items():
        if name.startswith("tasks_worker"):
            # Workers serve no port; they pull from NATS. Alive is what can be told.
            alive = info["pid"] is not None and _pid_alive(int(info["pid"]))
            state, worst = ("RUNNING", worst) if alive else ("NOT RUNNING", 1)
        elif name == "gateway" or name.startswith("gateway_"):  # gateway_<n>: a cluster's
            url = runtime["url"] if name == "gateway" else f"http://{info['address']}"
            try:
                await wait_http(f"{url}/healthcheck", 3)
                state = "SERVING"
            except TimeoutError:
                state, worst = "NOT SERVING", 1
        else:
            try:
                await wait_serving(info["address"], 3)
                state = "SERVING"
            except TimeoutError:
                state, worst = "NOT SERVING", 1
        print(f"{name:10} {state:12} pid={info['pid']!s:<8} {info['address']}")
    await metrics.print_figures(runtime)
    return worst
