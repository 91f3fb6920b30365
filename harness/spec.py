"""The cell spec: everything a cell's pytest workers are given, resolved once by the cell runner.

The cell runner (``harness.run.cell``, under nox's Python) reads matrix.toml, the case libraries and
their known issues, plans the workers, and writes one :class:`CellSpec` to ``spec.json`` in the cell's
folder (``harness.layout.spec_path``). Each worker (``pytest -p harness.incell.plugin --spec PATH``, in
the cell's venv) reads that file and nothing else: no worker parses matrix.toml or a known_issues.toml
again, and every worker of a cell (follow-ups too) runs on the same settings, even if matrix.toml
changes while the cell runs.

Frozen dataclasses with explicit ``to_dict``/``from_dict`` (JSON, standard library); importable on
Python 3.9 (``harness.compat``). A spec that is missing or not one is a :class:`SpecError`: one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.matrix import Cell, Matrix, Release
from harness.matrix.known_issues import KnownIssue, load_all
from harness.matrix.settings import DockerSettings, Settings

class SpecError(HarnessError):
    """A cell spec that cannot be read: missing, not JSON, or not the shape :meth:`CellSpec.to_dict` writes."""


@dataclass(frozen=True)
class Share:
    """What one worker collects: case files (or node ids), in the order the cell's workers take them."""

    worker: int
    targets: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Share:
        return cls(worker=int(data["worker"]), targets=tuple(data["targets"]))


@dataclass(frozen=True, **KW_ONLY)
class CellSpec:
    """One cell as its workers run it: the cell, its release, the settings, the case libraries, the known
    issues that apply to it, where reports go, and the worker plan (the first workers' shares; a
    follow-up worker gets an index after them and its targets on its command line)."""

    cell: Cell
    release: Release
    settings: Settings
    docker: DockerSettings
    reports: Path
    case_roots: tuple[Path, ...] = ()
    known_issues: tuple[KnownIssue, ...] = ()
    shares: tuple[Share, ...] = ()
    models: tuple[Path, ...] = ()  # models mode: the team's repositories (harness/models/)
    tolerance: Mapping[str, float] = field(default_factory=dict, hash=False)  # models mode: per model
    serial_loads: bool = False  # a case's models loaded one by one (the path the benchmark compares)
    matrix: Path | None = None  # the file it was resolved from (for the reader; no worker opens it)

    @property
    def workers(self) -> int:
        return len(self.shares)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell.to_dict(),
            "release": self.release.to_dict(),
            "settings": self.settings.to_dict(),
            "docker": self.docker.to_dict(),
            "reports": str(self.reports),
            "case_roots": [str(r) for r in self.case_roots],
            "known_issues": [i.to_dict() for i in self.known_issues],
            "shares": [s.to_dict() for s in self.shares],
            "models": [str(m) for m in self.models],
            "tolerance": dict(self.tolerance),
            "serial_loads": self.serial_loads,
            "matrix": None if self.matrix is None else str(self.matrix),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        return cls(
            cell=Cell.from_dict(data["cell"]),
            release=Release.from_dict(data["release"]),
            settings=Settings.from_dict(data["settings"]),
            docker=DockerSettings.from_dict(data["docker"]),
            reports=Path(data["reports"]),
            case_roots=tuple(Path(r) for r in data["case_roots"]),
            known_issues=tuple(KnownIssue.from_dict(i) for i in data["known_issues"]),
            shares=tuple(Share.from_dict(s) for s in data["shares"]),
            models=tuple(Path(m) for m in data["models"]),
            tolerance={str(k): float(v) for k, v in data["tolerance"].items()},
            serial_loads=bool(data["serial_loads"]),
            matrix=None if data["matrix"] is None else Path(data["matrix"]),
        )

    def write(self, path: Path) -> Path:
        """Write it whole or not at all (a worker never reads half a spec)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        partial.replace(path)
        return path


def read(path: Path) -> CellSpec:
    """The spec at ``path``; a :class:`SpecError` naming the file when it is missing or not a spec."""
    fix = "start the cell with 'python -m harness cell <id>', which writes it"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("cell spec not found", where=str(path), fix=fix) from None
    except OSError as exc:
        raise SpecError(f"cannot read the cell spec: {exc.strerror}", where=str(path), fix=fix) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"not a cell spec (not JSON: {exc})", where=str(path), fix=fix) from None
    try:
        return CellSpec.from_dict(data)
    except KeyError as exc:
        raise SpecError(f"not a cell spec (no {exc.args[0]!r})", where=str(path), fix=fix) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"not a cell spec ({exc})", where=str(path), fix=fix) from None


def resolve(matrix: Matrix, cell: Cell, *, reports: Path, case_roots: Sequence[Path] = (),
            shares: Sequence[Share] = (), models: Sequence[Path] = (), serial_loads: bool = False) -> CellSpec:
    """The spec of ``cell``: what its workers need of ``matrix`` and of the case libraries' known issues
    (those that apply to the cell only: a worker has no use for the others)."""
    issues = load_all(list(case_roots), matrix.known_failures)
    return CellSpec(cell=cell, release=matrix.release(cell.triton), settings=matrix.settings, docker=matrix.docker,
                    reports=Path(reports).resolve(), case_roots=tuple(Path(r).resolve() for r in case_roots),
                    known_issues=tuple(i for i in issues if i.applies_to(cell)), shares=tuple(shares),
                    models=tuple(Path(m).resolve() for m in models), tolerance=dict(matrix.tolerance),
                    serial_loads=serial_loads, matrix=Path(matrix.path).resolve())
