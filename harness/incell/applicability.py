"""Whether a case applies to a cell, read from its markers, and the case id the report keys rows by.

A case that does not apply is skipped as not applicable with the reason; an unknown marker value is
a usage error naming the case. Runs in the cell's pytest process (Python 3.9+).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.matrix import BACKENDS, INSTANCE_KINDS, RUNNERS, Cell
from harness.matrix.settings import RELEASE_RE, release_key

MARKERS = {
    "backend": "backend(*names): the case applies only to cells of these backends",
    "instance_kind": "instance_kind(*kinds): the case applies only to cpu or gpu cells",
    "min_triton": "min_triton(release): the case applies from this Triton release on (e.g. '24.03')",
    "max_triton": "max_triton(release): the case applies up to this Triton release",
    "runner": "runner(*names, reason=...): the case applies only to cells of these runners (reason: why)",
    "models": "models(*names): load these models before the case (unloaded after its module)",
    "case_timeout": "case_timeout(seconds): this case may run longer than settings.case_timeout",
}


def checked_release_key(value: str, where: str) -> tuple[int, int]:
    """A marker's release as a sort key; one that is not a release stops the cell naming the case."""
    if not RELEASE_RE.match(str(value)):
        raise pytest.UsageError(f"{where}: {value!r} is not a Triton release; write it as YY.MM, e.g. '24.03'")
    return release_key(str(value))


def _check_values(item: pytest.Item, name: str, values: tuple[Any, ...], allowed: tuple[str, ...]) -> None:
    for value in values:
        if value not in allowed:
            raise pytest.UsageError(
                f"{item.nodeid}: marker {name} has unknown value {value!r}; use one of: {', '.join(allowed)}"
            )


def not_applicable_reason(item: pytest.Item, cell: Cell) -> str | None:
    """Why ``item`` does not apply to ``cell`` (None when it does); unknown marker values are errors."""
    checks = (("backend", BACKENDS, cell.backend), ("instance_kind", INSTANCE_KINDS, cell.instance_kind),
              ("runner", RUNNERS, cell.runner))
    for name, allowed, actual in checks:
        for mark in item.iter_markers(name):
            _check_values(item, name, mark.args, allowed)
            if actual not in mark.args:
                why = f" ({mark.kwargs['reason']})" if mark.kwargs.get("reason") else ""
                return f"case needs {name} {' or '.join(mark.args)}{why}; cell has {actual}"
    current = checked_release_key(cell.triton, "cell")
    for mark in item.iter_markers("min_triton"):
        if current < checked_release_key(mark.args[0], item.nodeid):
            return f"case needs Triton {mark.args[0]} or newer; cell runs {cell.triton}"
    for mark in item.iter_markers("max_triton"):
        if current > checked_release_key(mark.args[0], item.nodeid):
            return f"case applies up to Triton {mark.args[0]}; cell runs {cell.triton}"
    return None


def case_timeout(item: pytest.Item, default: float) -> float:
    """The case's deadline: settings.case_timeout, or its own ``case_timeout`` marker."""
    mark = item.get_closest_marker("case_timeout")
    if mark is None:
        return default
    value = mark.args[0] if mark.args else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise pytest.UsageError(f"{item.nodeid}: marker case_timeout needs a positive number of seconds")
    return float(value)


def case_id(item: pytest.Item, roots: list[Path]) -> str:
    """The node id relative to the case root that holds it (the report's row key)."""
    path = Path(item.path).resolve()
    rest = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
    for root in roots:
        if path.is_relative_to(root):
            return f"{path.relative_to(root).as_posix()}::{rest}"
    return item.nodeid
