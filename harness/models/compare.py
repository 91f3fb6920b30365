"""The report step of models mode: each cell's answers against its reference cell's.

Cells run apart (other runners), so this runs where their files meet. For every cell with an answers
file it writes ``reports/junit/<cell>.models-reference.xml``, a JUnit suite of that cell with the checks
``models/<model>::matches-reference`` and ``::config-drift``; the report then reads it like any cell's
JUnit, so states, known incompatibilities, the baseline diff and the grid treat them as cases.

The reference cell: ``--reference CELL``, else the oldest release's cell with the same backend,
instance kind, Python, model environment and runner. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import junit
from harness.errors import HarnessError
from harness.layout import NOT_APPLICABLE_PREFIX, Element, Prop
from harness.models import DERIVED_SUFFIX, answers, case_id
from harness.models.answers import CellAnswers, ModelAnswers
from harness.models.differ import difference
from harness.states import State

GROUP_KEYS = ("backend", "instance_kind", "python", "env", "runner")
DRIFT_PREFIX = "config drift from "  # the system-out of a config-drift testcase (read by section)
IGNORED_CONFIG = ("name",)


class UnknownReference(HarnessError):
    """--reference names a cell that left no answers."""


def _release(axes: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(x) for x in str(axes.get("triton") or "0").split(".") if x.isdigit())


def references(cells: dict[str, CellAnswers], chosen: str | None) -> dict[str, str]:
    """cell id -> its reference cell's id."""
    if chosen is not None:
        if chosen not in cells:
            raise UnknownReference(f"cell {chosen!r} left no answers file (ran: {', '.join(sorted(cells)) or 'none'})",
                                   where="--reference", fix="name a cell that ran with --models")
        return {cell: chosen for cell in cells}
    groups: dict[tuple[Any, ...], list[CellAnswers]] = {}
    for found in cells.values():
        groups.setdefault(tuple(found.axes.get(k) for k in GROUP_KEYS), []).append(found)
    return {c.cell: min(group, key=lambda x: (_release(x.axes), x.cell)).cell
            for group in groups.values() for c in group}


def write(reports: Path, *, reference: str | None = None, tolerance: dict[str, float] | None = None) -> list[Path]:
    """Write the derived JUnit files (stale ones removed first); returns them."""
    junit = reports / "junit"
    for stale in junit.glob(f"*{DERIVED_SUFFIX}.xml") if junit.is_dir() else []:
        stale.unlink()
    cells = answers.read_all(reports)
    if not cells:
        return []
    refs = references(cells, reference)
    written = []
    for cell_id, found in sorted(cells.items()):
        ref = cells[refs[cell_id]]
        rows = []
        for name, model in sorted(found.models.items()):
            rows += check_model(name, model, ref.models.get(name), ref.cell, cell_id == ref.cell,
                                (tolerance or {}).get(name, 0.0))
        written.append(_write_suite(junit / f"{cell_id}{DERIVED_SUFFIX}.xml", found, rows))
    return written


Row = tuple[str, State, str, str]  # (case id, state: passed, failed or skipped, message, details)


def check_model(name: str, model: ModelAnswers, ref: ModelAnswers | None, ref_cell: str, is_reference: bool,
                tolerance: float) -> list[Row]:
    match_case, drift_case = case_id(name, "matches-reference"), case_id(name, "config-drift")
    if model.not_applicable:
        why = NOT_APPLICABLE_PREFIX + model.not_applicable
        return [(match_case, State.SKIPPED, why, ""), (drift_case, State.SKIPPED, why, "")]
    if not model.loaded:
        why = "the model did not load in this cell (see its loads check)"
        return [(match_case, State.SKIPPED, why, ""), (drift_case, State.SKIPPED, why, "")]
    if is_reference:
        note = f"{ref_cell} is the reference cell"
        answered = any(s.answer for s in model.samples)
        return [(match_case, State.PASSED, "", note) if answered else
                (match_case, State.SKIPPED, "the reference cell itself, and no sample was answered here", ""),
                (drift_case, State.PASSED, "", note)]
    if ref is None or not ref.loaded:
        why = f"no reference: the model {'did not load' if ref else 'is not'} in the reference cell {ref_cell}"
        return [(match_case, State.SKIPPED, why, ""), (drift_case, State.SKIPPED, why, "")]
    drift = config_drift(ref.config or {}, model.config or {})
    problems, compared = answer_differences(model, ref, tolerance)
    if not compared:
        match = (match_case, State.SKIPPED, f"no sample was answered both here and in {ref_cell}", "")
    elif problems:
        match = (match_case, State.FAILED, f"differs from {ref_cell}: " + "; ".join(problems[:3]), "\n".join(problems))
    else:
        match = (match_case, State.PASSED, "", f"{compared} samples equal to {ref_cell}'s")
    drift_text = f"{DRIFT_PREFIX}{ref_cell}: " + "; ".join(drift) if drift else ""
    if drift and match[1] == State.FAILED:
        drift_row = (drift_case, State.FAILED, f"{len(drift)} config fields differ from {ref_cell} and the answers "
                     f"differ too: " + "; ".join(drift[:5]), drift_text)
    else:
        drift_row = (drift_case, State.PASSED, "", drift_text or f"same config as {ref_cell}")
    return [match, drift_row]


def answer_differences(model: ModelAnswers, ref: ModelAnswers, tolerance: float) -> tuple[list[str], int]:
    """(what differs, per sample and output; how many samples were compared)."""
    problems, compared = [], 0
    for i, (mine, theirs) in enumerate(zip(model.samples, ref.samples)):
        if not mine.answer or not theirs.answer:
            continue
        compared += 1
        if len(mine.answer) != len(theirs.answer):
            problems.append(f"sample {i}: {len(mine.answer)} responses, reference {len(theirs.answer)}")
            continue
        for r, (got, want) in enumerate(zip(mine.answer, theirs.answer)):
            where = f"sample {i}" + (f" response {r}" if len(mine.answer) > 1 else "")
            if sorted(got) != sorted(want):
                problems.append(f"{where}: outputs {sorted(got)}, reference {sorted(want)}")
                continue
            for output in sorted(got):
                diff = difference(got[output], want[output], tolerance)
                if diff:
                    problems.append(f"{where} output {output}: {diff}")
    if len(model.samples) != len(ref.samples):
        problems.append(f"{len(model.samples)} samples here, {len(ref.samples)} in the reference")
    return problems, compared


def config_drift(ref: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """Fields of the server-held config that differ: ``path: reference -> here``."""
    a, b = _flatten(ref), _flatten(mine)
    return [f"{key}: {_shown(a.get(key))} -> {_shown(b.get(key))}" for key in sorted(set(a) | set(b))
            if _value(a.get(key)) != _value(b.get(key)) and key.split(".")[0] not in IGNORED_CONFIG]


def _value(value: Any) -> Any:
    """A field a release leaves out and one that writes its default (false, "", 0) are the same config."""
    return None if value in (None, "", False, 0, [], {}) else value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _shown(value: Any) -> str:
    return "absent" if value is None else json.dumps(value)


def _write_suite(path: Path, found: CellAnswers, rows: list[Row]) -> Path:
    props = [(Prop.CELL, found.cell), *((key, "" if value is None else str(value)) for key, value in found.axes.items())]
    return junit.write_suite(path, found.cell, props, [_case(*row) for row in rows])


def _case(case: str, state: State, message: str, details: str) -> junit.Case:
    """A comparison row as a testcase: a difference fails it; details of a passed one are its output."""
    outcomes: tuple[junit.Outcome, ...] = ()
    if state == State.FAILED:
        outcomes = (junit.Outcome(Element.FAILURE, message, details or message),)
    elif state == State.SKIPPED:
        outcomes = (junit.Outcome(Element.SKIPPED, message, message, type="pytest.skip"),)
    return junit.Case(name=case, classname="models", properties=((Prop.CASE, case),), outcomes=outcomes,
                      system_out=details if details and state == State.PASSED else None)
