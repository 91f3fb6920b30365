"""Resident memory of a server and its stubs, read from ``/proc`` (the whole process tree under it)."""

from __future__ import annotations

from pathlib import Path

from harness.deadlines import children

PROC = Path("/proc")


def tree(root: int) -> list[int]:
    """``root`` and every process below it (the server's python backend stubs), walked with the children
    lists the deadlines' progress probe reads (no scan of all of /proc)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children(pid))
    return found


def rss_bytes(pid: int) -> int:
    """One process's resident set (``VmRSS``); 0 when it has ended."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """The resident memory of the server and its stubs together, in bytes."""
    return sum(rss_bytes(pid) for pid in tree(root))
