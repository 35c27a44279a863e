"""Run a command that receives a signal when its parent dies, optionally as another user:
`python -I -S pdeathsig.py SIG PARENT_PID UID GID COMMAND...` (UID and GID `-` to keep ours).

The launcher used to ask for the parent-death signal in a `preexec_fn`. That makes CPython
fork (never vfork) and run Python in the forked child of a parent whose gRPC threads hold
locks, which now and then aborted the child (SIGABRT) before it reached exec. This script is
exec'd instead: the child runs no Python of the parent's, and this fresh interpreter (stdlib
only, no site, isolated) switches user, sets the signal and execs the command under the same
pid. The user switch happens here, not in the parent's fork, because the interpreter may be
unreachable for the target user, and because the kernel clears the setting on a switch.
"""

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    sig, parent, uid, gid, command = int(argv[1]), int(argv[2]), argv[3], argv[4], argv[5:]
    if gid != "-":
        os.setgroups([])
        os.setgid(int(gid))
    if uid != "-":
        os.setuid(int(uid))
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            sys.stderr.write(f"pdeathsig: prctl failed: {os.strerror(ctypes.get_errno())}\n")
    # The parent may have died before prctl took effect: then nobody would ever signal us.
    if os.getppid() != parent:
        os._exit(1)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"pdeathsig: cannot run {command[0]}: {exc}\n")
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv)
