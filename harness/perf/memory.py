"""Resident memory of a server and its stubs, read from ``/proc`` (the whole process tree under it)."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def children(proc: Path = PROC) -> dict[int, list[int]]:
    """Each live process's children, by pid (``/proc/<pid>/stat``'s parent field)."""
    found: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended while we looked
        parent = int(text.rpartition(")")[2].split()[1])
        found.setdefault(parent, []).append(int(stat.parent.name))
    return found


def tree(root: int, proc: Path = PROC) -> list[int]:
    """``root`` and every process below it (the server's python backend stubs)."""
    kids = children(proc)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, ()))
    return found


def rss_bytes(pid: int, proc: Path = PROC) -> int:
    """One process's resident set (``VmRSS``); 0 when it has ended."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int, proc: Path = PROC) -> int:
    """The resident memory of the server and its stubs together, in bytes."""
    return sum(rss_bytes(pid, proc) for pid in tree(root, proc))
