"""Children die with their supervisor; leftovers of a dead one are recognised and stopped
(only when pid, start time and command line all still match)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import psutil

from services.launcher.procs import (
    ProcessRecord,
    record_of,
    service_of_data_dir,
    still_ours,
    stop_leftovers,
)

# A middle process that starts `sleep` the way the supervisor starts its children, prints
# the sleeper's pid and waits to be killed.
_MIDDLE = """
import signal, subprocess, sys, time
from services.launcher.procs import die_with_parent
use = sys.argv[1] == "1"
argv = ["sleep", "300"]
child = subprocess.Popen(die_with_parent(argv, signal.SIGTERM) if use else argv,
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(300)
"""


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _orphan_after_sigkill(use_pdeathsig: bool) -> int:
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, "1" if use_pdeathsig else "0"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert middle.stdout is not None
    pid = int(middle.stdout.readline())
    middle.kill()
    middle.wait()
    return pid


def test_child_dies_with_its_sigkilled_parent() -> None:
    sleeper = _orphan_after_sigkill(use_pdeathsig=True)
    assert _gone(sleeper, 5.0)


def test_without_the_parent_death_signal_the_child_would_survive() -> None:
    # The control: proves the test above can fail (the orphan lives on, re-parented).
    sleeper = _orphan_after_sigkill(use_pdeathsig=False)
    try:
        assert not _gone(sleeper, 1.0)
    finally:
        os.kill(sleeper, signal.SIGKILL)


async def test_leftovers_are_stopped_only_when_still_the_same_process() -> None:
    ours = await asyncio.create_subprocess_exec("sleep", "300")
    other = await asyncio.create_subprocess_exec("sleep", "301")
    try:
        record = record_of("faces", ours.pid)
        assert record is not None and record.cmdline == ["sleep", "300"]
        # Same pid, but started at another time or with another command line: pid reuse,
        # not ours to kill.
        reused = ProcessRecord("x", other.pid, record.create_time - 100, ["sleep", "301"])
        renamed = ProcessRecord("y", other.pid, other_ct(other.pid), ["python", "-m", "y"])
        assert still_ours(reused) is None and still_ours(renamed) is None
        stopped = await stop_leftovers([reused, renamed, record], grace=5.0)
        assert stopped == ["faces"]
        assert await asyncio.wait_for(ours.wait(), 5) == -signal.SIGTERM
        assert other.returncode is None
        # Gone now: a second pass finds nothing to stop.
        assert await stop_leftovers([record]) == []
    finally:
        for p in (ours, other):
            if p.returncode is None:
                p.kill()
                await p.wait()


async def test_a_leftover_that_ignores_its_stop_signal_is_killed() -> None:
    code = "import signal,time; signal.signal(15, signal.SIG_IGN); print(1, flush=True); " + (
        "time.sleep(300)"
    )
    stubborn = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert stubborn.stdout is not None
        await stubborn.stdout.readline()  # the handler is in place
        record = record_of("gateway", stubborn.pid)
        assert record is not None
        assert await stop_leftovers([record], grace=0.5) == ["gateway"]
        assert await asyncio.wait_for(stubborn.wait(), 5) == -signal.SIGKILL
    finally:
        if stubborn.returncode is None:
            stubborn.kill()
            await stubborn.wait()


def other_ct(pid: int) -> float:
    return psutil.Process(pid).create_time()


async def test_an_old_runtime_file_pid_is_trusted_only_for_our_module_and_data_dir(
    tmp_path,
) -> None:
    env = {**os.environ, "LUNA_DATA_DIR": str(tmp_path)}
    code = "import time; time.sleep(300)"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "-m", "services.faces", env=env
    )
    try:
        await asyncio.sleep(0.2)
        assert service_of_data_dir("faces", proc.pid, "services.faces", str(tmp_path))
        assert service_of_data_dir("faces", proc.pid, "services.faces", "/elsewhere") is None
        assert service_of_data_dir("events", proc.pid, "services.events", str(tmp_path)) is None
    finally:
        proc.kill()
        await proc.wait()
