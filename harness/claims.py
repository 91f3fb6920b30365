"""What each worker of a cell took (its claim files) and what a worker that died left unfinished.

A claim file names the module, the worker that took it and its cases (node id and case id), so the cell
runner can tell which cases were a worker's even when it died without a word (SIGKILL, a segfault).
The runner hands a dead worker's unfinished cases on by rewriting their claim for a follow-up worker,
which runs the cases claimed in its name first (``harness.incell.sharing``). A worker that ends abnormally but
still reaches the end of its session (INTERNALERROR) says itself what it left: a :class:`Leftover`.

Standard library only: the cell runner reads both.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One case of a claim: pytest's node id (what a worker runs) and the case id (what the report says)."""

    nodeid: str
    case: str


@dataclass(frozen=True)
class Claim:
    """A module taken by a worker, with the cases of it that worker runs."""

    module: str
    worker: int
    cases: tuple[Case, ...]
    pid: int = 0

    def as_json(self) -> str:
        return json.dumps({"module": self.module, "worker": self.worker, "pid": self.pid,
                           "cases": [[c.nodeid, c.case] for c in self.cases]})

    @classmethod
    def from_json(cls, text: str) -> Claim:
        data = json.loads(text)
        return cls(module=str(data["module"]), worker=int(data["worker"]), pid=int(data.get("pid", 0)),
                   cases=tuple(Case(str(n), str(c)) for n, c in data["cases"]))


def path_of(folder: Path, module: str) -> Path:
    return folder / hashlib.sha256(module.encode()).hexdigest()[:16]


def take(folder: Path, claim: Claim) -> bool:
    """Create the module's claim file; False where another worker has it (``O_EXCL``: one succeeds)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path_of(folder, claim.module), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(claim.as_json())
    return True


def hand_on(folder: Path, claim: Claim) -> None:
    """Claim a module's cases in a follow-up worker's name (the cell runner does, before starting it);
    the module's first claim stays as it was (which cases its first worker took)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = path_of(folder, claim.module).with_suffix(f".w{claim.worker}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(claim.as_json(), encoding="utf-8")
    os.replace(tmp, path)


def read_all(folder: Path, pattern: str = "[0-9a-f]*") -> list[Claim]:
    """Every readable claim in ``folder`` (one cut off by its worker's death names nothing: skipped)."""
    found = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            found.append(Claim.from_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def of_worker(folder: Path, worker: int) -> list[Claim]:
    """What ``worker`` took itself and what was handed on to it."""
    return [c for c in read_all(folder) if c.worker == worker]


def handed(folder: Path, worker: int) -> list[Claim]:
    """What was handed on to ``worker`` before it started (:func:`hand_on`)."""
    return [c for c in read_all(folder, f"*.w{worker}") if c.worker == worker]


@dataclass(frozen=True)
class Leftover:
    """What a worker that ended abnormally did not finish: the case in flight (if one was) and the rest."""

    in_flight: str | None
    rest: tuple[str, ...]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"in_flight": self.in_flight, "rest": list(self.rest)}), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Leftover | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(in_flight=data["in_flight"], rest=tuple(str(n) for n in data["rest"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
