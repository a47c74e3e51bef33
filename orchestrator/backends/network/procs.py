"""Stop a timed-out ansible-playbook together with every process it started (Linux /proc).

ansible-runner's own timeout kills only ansible-playbook's process group; its forked workers start new
sessions, so modules they run (local connection) would keep running. We find the job by the unique
extra-vars path on its command line and kill the whole tree, leaves first.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _ppids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return parents


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """All processes below `root`, deepest first."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    order: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            order.append(child)
            stack.append(child)
    return order[::-1]


def kill_job_tree(marker: str) -> int:
    """SIGKILL every descendant of this process whose job command line contains `marker`; return how many."""
    if not Path("/proc/self/stat").exists():
        return 0
    parents = _ppids()
    mine = descendants(os.getpid(), parents)
    roots = [pid for pid in mine if marker in _cmdline(pid)]
    victims: list[int] = []
    for root in roots:
        victims += [pid for pid in descendants(root, parents) if pid not in victims]
    victims += [pid for pid in roots if pid not in victims]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(victims)
