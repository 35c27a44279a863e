"""Child processes that die with `luna up`, and finding the ones an earlier run left behind.

Two lines of defence against orphans (a SIGKILLed supervisor cannot stop its children):
- every child asks the kernel for a parent-death signal (`prctl(PR_SET_PDEATHSIG)`), set by
  a small exec wrapper (pdeathsig.py) just before the real program, so it is stopped the
  moment the supervisor dies;
- the supervisor records each child's pid, start time and command line in the data
  directory's runtime file, and a later `luna up` stops whatever of that still runs. The pid
  alone is not trusted (pids are reused): the process must have the recorded start time and
  command line, or it is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger("luna.procs")

_PDEATHSIG = str(Path(__file__).with_name("pdeathsig.py"))


def die_with_parent(
    argv: Sequence[str],
    sig: signal.Signals = signal.SIGTERM,
    *,
    uid: int | None = None,
    gid: int | None = None,
) -> list[str]:
    """`argv` wrapped so that the child receives `sig` when this process dies (Linux), and
    runs as `uid`/`gid` when given.

    The wrapper (pdeathsig.py) switches user, sets the signal (after the switch: the kernel
    clears it on a credential change) and execs `argv` under the same pid, which keeps it.
    If this process already died before the wrapper ran, the child exits at once instead of
    living on as an orphan.
    """
    if os.access(sys.executable, os.X_OK):
        ids = ["-" if uid is None else str(uid), "-" if gid is None else str(gid)]
        wrapper = [sys.executable, "-I", "-S", _PDEATHSIG, str(int(sig)), str(os.getpid())]
        return [*wrapper, *ids, *argv]
    # Our interpreter is out of this user's reach (a launcher forked and switched to an
    # unprivileged user, as a test does): util-linux's setpriv does the same, less the check
    # that the parent is still alive.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("cannot set a parent-death signal for %s: no usable wrapper", argv[0])
        return list(argv)
    ids = [] if uid is None else [f"--reuid={uid}"]
    ids += [] if gid is None else [f"--regid={gid}", "--clear-groups"]
    return [setpriv, *ids, f"--pdeathsig={signal.Signals(sig).name}", "--", *argv]


def _unwrapped(cmdline: list[str]) -> list[str]:
    """The command line a child runs once the wrapper has exec'd it (a record taken in the
    instant before shows the wrapper's)."""
    if len(cmdline) > 8 and cmdline[1:4] == ["-I", "-S", _PDEATHSIG]:
        return cmdline[8:]
    if cmdline and Path(cmdline[0]).name == "setpriv" and "--" in cmdline:
        return cmdline[cmdline.index("--") + 1 :]
    return cmdline


@dataclass(frozen=True)
class ProcessRecord:
    """What the runtime file keeps about a child, enough to recognise it later."""

    name: str
    pid: int
    create_time: float
    cmdline: list[str]
    stop_signal: int = int(signal.SIGTERM)

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "create_time": self.create_time,
            "cmdline": self.cmdline,
            "stop_signal": self.stop_signal,
        }

    @classmethod
    def from_json(cls, name: str, data: Any) -> ProcessRecord | None:
        try:
            return cls(
                name=name,
                pid=int(data["pid"]),
                create_time=float(data["create_time"]),
                cmdline=[str(a) for a in data["cmdline"]],
                stop_signal=int(data.get("stop_signal", signal.SIGTERM)),
            )
        except (KeyError, TypeError, ValueError):
            return None


def record_of(name: str, pid: int, stop_signal: int = int(signal.SIGTERM)) -> ProcessRecord | None:
    """The record of a live process (None if it is already gone)."""
    try:
        proc = psutil.Process(pid)
        return ProcessRecord(name, pid, proc.create_time(), proc.cmdline(), stop_signal)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def service_of_data_dir(name: str, pid: int, module: str, data_dir: str) -> ProcessRecord | None:
    """For a runtime file written before records carried start time and command line: the
    pid counts as ours only if it runs `-m <module>` with LUNA_DATA_DIR set to `data_dir`."""
    try:
        proc = psutil.Process(pid)
        cmd = proc.cmdline()
        if module not in cmd or proc.environ().get("LUNA_DATA_DIR") != data_dir:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return record_of(name, pid)


def still_ours(record: ProcessRecord) -> psutil.Process | None:
    """The live process `record` describes, or None when that pid is gone or now another
    program (same pid, different start time or command line)."""
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if abs(proc.create_time() - record.create_time) > 0.05:
            return None
        if _unwrapped(proc.cmdline()) != _unwrapped(record.cmdline):
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return proc


async def _gone(proc: psutil.Process, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def stop_leftovers(records: Iterable[ProcessRecord], grace: float = 10.0) -> list[str]:
    """Stop the processes of `records` that still run (checked by `still_ours`), in the
    given order: each gets its stop signal, then SIGKILL after `grace` seconds. Returns the
    names of those stopped."""
    stopped = []
    for record in records:
        proc = still_ours(record)
        if proc is None:
            continue
        log.warning(
            "stopping %s (pid %s) left running by an earlier `luna up`", record.name, record.pid
        )
        try:
            proc.send_signal(record.stop_signal)
            if not await _gone(proc, grace):
                log.warning(
                    "%s (pid %s) ignores its stop signal; killing it", record.name, record.pid
                )
                proc.kill()
                await _gone(proc, 5.0)
        except psutil.NoSuchProcess:
            pass
        stopped.append(record.name)
    return stopped
