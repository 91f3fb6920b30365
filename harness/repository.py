"""Render the case library's model templates for one cell into one model repository.

Every directory under a ``models/`` folder of a case root is a model, named by its directory. Its
``config.pbtxt`` is a :class:`string.Template`: ``${kind}`` becomes ``KIND_CPU`` or ``KIND_GPU`` for the
cell, and ``${triton}``, ``${python}``, ``${backend}``, ``${instance_kind}`` are the cell's axes (write
``$$`` for a literal dollar). Other files are copied as they are. Two models with one name, a template
naming an unknown placeholder and a model folder without ``config.pbtxt`` are errors naming the file.
"""

from __future__ import annotations

import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.matrix import Cell

CONFIG = "config.pbtxt"
IGNORED = ("__pycache__", "*.pyc")


@dataclass(frozen=True, kw_only=True)
class Model:
    name: str
    source: Path


def discover(case_roots: list[Path]) -> dict[str, Model]:
    """All models of the case roots, by name; a name used twice is an error."""
    models: dict[str, Model] = {}
    for root in case_roots:
        for models_dir in sorted(Path(root).rglob("models")):
            if not models_dir.is_dir() or "__pycache__" in models_dir.parts:
                continue
            for source in sorted(p for p in models_dir.iterdir() if p.is_dir() and p.name != "__pycache__"):
                if source.name in models:
                    raise HarnessError(
                        f"model name {source.name!r} is used twice (also {models[source.name].source})",
                        where=str(source),
                        fix="rename one of the model folders",
                    )
                if not (source / CONFIG).is_file():
                    raise HarnessError(
                        f"model folder has no {CONFIG}", where=str(source), fix=f"add {CONFIG} (at least its backend)"
                    )
                models[source.name] = Model(name=source.name, source=source)
    return models


def variables(cell: Cell) -> dict[str, str]:
    return {
        "kind": "KIND_GPU" if cell.gpu else "KIND_CPU",
        "instance_kind": cell.instance_kind,
        "triton": cell.triton,
        "python": cell.python,
        "backend": cell.backend,
    }


def render_config(path: Path, cell: Cell) -> str:
    text = path.read_text(encoding="utf-8")
    try:
        return string.Template(text).substitute(variables(cell))
    except KeyError as exc:
        raise HarnessError(
            f"unknown placeholder ${{{exc.args[0]}}}",
            where=str(path),
            fix=f"use one of {', '.join('${' + k + '}' for k in variables(cell))}, or $$ for a dollar",
        ) from None
    except ValueError as exc:
        raise HarnessError(f"template does not render ({exc})", where=str(path), fix="write $$ for a dollar") from None


def render(case_roots: list[Path], cell: Cell, dest: Path) -> dict[str, Model]:
    """Write every model of ``case_roots`` rendered for ``cell`` into the repository ``dest``."""
    models = discover(case_roots)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for model in models.values():
        target = dest / model.name
        shutil.copytree(model.source, target, ignore=shutil.ignore_patterns(*IGNORED))
        (target / CONFIG).write_text(render_config(model.source / CONFIG, cell), encoding="utf-8")
    return models
