"""``python -m celerystatus_server.demo.tether PARENT_PID COMMAND...``: exec COMMAND, killed with its parent.

The demo starts its workers through this, so they die with the demo even when
the demo itself is SIGKILLed and has no chance to clean up. On Linux the
kernel delivers SIGKILL when the parent exits (PR_SET_PDEATHSIG, kept across
exec); Celery's prefork pool children already die with their worker the same
way. Done in a separate exec step rather than in a ``preexec_fn``, which is
unsafe once the demo runs the server's threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["command", "main"]

PR_SET_PDEATHSIG = 1


def command(argv: list[str], parent_pid: int | None = None) -> list[str]:
    """``argv`` wrapped so that it runs tethered to ``parent_pid`` (default: this process)."""
    pid = os.getpid() if parent_pid is None else parent_pid
    return [sys.executable, "-m", __name__, str(pid), *argv]


def _die_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m celerystatus_server.demo.tether PARENT_PID COMMAND...", file=sys.stderr)
        return 2
    parent, command_argv = int(argv[0]), argv[1:]
    if _die_with_parent() and os.getppid() != parent:
        # The parent died before the tether was tied: nobody will stop us.
        return 1
    os.execvp(command_argv[0], command_argv)
    return 127  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
