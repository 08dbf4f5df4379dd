"""``--processes N`` of the exactly-once commands (``genesis pipe``, ``genesis query "CREATE STREAM ..."``):
N processes of one consumer group, slots 0..N-1, each ``python -m genesis`` with its own command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence


def child_options(values: Sequence[tuple[str, object]], switches: Sequence[tuple[str, bool]]) -> list[str]:
    """The options a child process gets again: ``--flag value`` for each value given, ``--switch`` for each on."""
    argv: list[str] = []
    for flag, value in values:
        if value is not None:
            argv += [flag, str(value)]
    return argv + [flag for flag, on in switches if on]


def run_slots(argv_of: Callable[[int], list[str]], processes: int) -> int:
    """Start ``genesis <argv_of(slot)>`` for every slot and wait for all of them; the worst exit code.

    Ctrl-C reaches the children too (one process group): they finish their message, commit and
    stop, and this returns once they did.
    """
    procs = [subprocess.Popen([sys.executable, "-m", "genesis", *argv_of(slot)]) for slot in range(processes)]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        return max(p.wait() for p in procs) or 130
