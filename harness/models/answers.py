"""``reports/answers/<cell>.json``: what each model did in one cell, for the report step's comparisons.

Written by the cell (``plugin``), read where all cells meet (``compare``). Small: per sample one
answer (its tensors' digests, their values only when small) and the digest of every repeat.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.models import ANSWERS_DIR

FORMAT = 1


@dataclass
class SampleAnswers:
    """One sample's answers in one cell: the first answer, and every answer's digest per protocol."""

    answer: list[dict[str, Any]] | None = None
    digests: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ModelAnswers:
    not_applicable: str | None = None
    load_error: str | None = None
    note: str = ""  # e.g. the instance kind override
    config: dict[str, Any] | None = None  # the config the server holds
    inputs: str = ""  # "samples.json" or "generated"
    samples: list[SampleAnswers] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.config is not None and self.load_error is None


def path(reports: Path, cell_id: str) -> Path:
    return reports / ANSWERS_DIR / f"{cell_id}.json"


def write(reports: Path, cell_id: str, axes: dict[str, Any], models: dict[str, ModelAnswers]) -> Path:
    target = path(reports, cell_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "cell": cell_id, "axes": axes,
            "models": {name: asdict(m) for name, m in sorted(models.items())}}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=None, separators=(",", ":"), allow_nan=True), encoding="utf-8")
    os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class CellAnswers:
    cell: str
    axes: dict[str, Any]
    models: dict[str, ModelAnswers]


def read_all(reports: Path) -> dict[str, CellAnswers]:
    """Every cell's answers file; an unreadable one is left out (its cell's checks say so)."""
    found: dict[str, CellAnswers] = {}
    for file in sorted((reports / ANSWERS_DIR).glob("*.json")):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                continue
            models = {}
            for name, raw in data["models"].items():
                samples = [SampleAnswers(**s) for s in raw.pop("samples", [])]
                models[name] = ModelAnswers(**raw, samples=samples)
            found[data["cell"]] = CellAnswers(cell=data["cell"], axes=data.get("axes", {}), models=models)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
