"""What a run's compat.json tells the bench: the red results that are the harness's own doing, and the
cases whose state differs between two runs of the same cells.

A red result (failed, error, timeout, missing) is the harness's own when no server caused it: a deadline
or timeout, a load that never answered, pytest's own crash, a worker that died, a case that never ran,
a run that was stopped. :func:`runner_twins` splits one run into its local cells and their docker twins,
for :func:`differing`. A wrong answer, or a server that died (verdict ``server-died``), is the
server's. The state and the verdict decide where compat.json has them; only the rest is read from the
message, by the patterns of :data:`HARNESS_RED_TEXT`. Plain dicts in, so a test hands it two small
hand-written ones.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from harness.layout import Verdict
from harness.states import State

RED = frozenset(s.value for s in State if s.bad)
VERDICT_CAUSES = {Verdict.TIMEOUT: "deadline", Verdict.INTERRUPTED: "interrupted"}
STATE_CAUSES = {State.TIMEOUT.value: "timeout", State.MISSING.value: "not-run"}

# The harness's own reds that only a message says, each under the name the bench reports it by.
HARNESS_RED_TEXT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("load-timeout", re.compile(r"\b(?:Load|Unload)Timeout\b|\bdid not finish within\b")),
    ("pytest-timeout", re.compile(r"Failed: Timeout \(?>")),
    ("internal-error", re.compile(r"INTERNALERROR")),
    ("worker-died", re.compile(r"\bworker \d+ ended with code\b|\bpytest exited with code\b")),
    ("not-run", re.compile(r"^not run: |is not in this cell's JUnit file|\bno JUnit file\b")),
    ("interrupted", re.compile(r"^interrupted while it ran\b|\bpytest was interrupted\b|\bwas interrupted before\b")),
)
EXAMPLES = 5
EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class HarnessRed:
    """One red result the harness caused, as bench.json shows it."""

    cell: str
    case: str
    state: str
    cause: str
    message: str  # its first line, cut to EXAMPLE_CHARS


@dataclass(frozen=True)
class HarnessReds:
    count: int
    by_cause: dict[str, int]
    examples: list[HarnessRed]

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "by_cause": self.by_cause, "examples": [asdict(e) for e in self.examples]}


@dataclass(frozen=True)
class StateDiff:
    """A case whose state differs between two runs; None where a run has no result for it."""

    cell: str
    case: str
    idle: str | None
    loaded: str | None


def harness_cause(result: dict[str, Any]) -> str | None:
    """Why a red result is the harness's own doing, or None (not red, or the server's doing)."""
    if result.get("state") not in RED:
        return None
    verdict = result.get("verdict")
    if verdict == Verdict.SERVER_DIED:
        return None
    if verdict in VERDICT_CAUSES:
        return VERDICT_CAUSES[verdict]
    message = result.get("message") or ""
    found = next((name for name, pattern in HARNESS_RED_TEXT if pattern.search(message)), None)
    return found or STATE_CAUSES.get(result["state"])


def harness_reds(compat: dict[str, Any], examples: int = EXAMPLES) -> HarnessReds:
    """The run's red results that no server caused: how many, by cause, and the first few."""
    found = []
    for result in compat.get("results", []):
        cause = harness_cause(result)
        if cause is not None:
            first = (result.get("message") or "").strip().splitlines()
            found.append(HarnessRed(cell=result["cell"], case=result["case"], state=result["state"], cause=cause,
                                    message=first[0][:EXAMPLE_CHARS] if first else ""))
    return HarnessReds(count=len(found), by_cause=dict(Counter(r.cause for r in found).most_common()),
                       examples=found[:examples])


def states(compat: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(cell, case) -> state, every result of the run."""
    return {(r["cell"], r["case"]): r["state"] for r in compat.get("results", [])}


def differing(idle: dict[str, Any], loaded: dict[str, Any]) -> list[StateDiff]:
    """Every (cell, case) whose state is not the same in both runs, a result only one run has included."""
    before, after = states(idle), states(loaded)
    return [StateDiff(cell=cell, case=case, idle=before.get((cell, case)), loaded=after.get((cell, case)))
            for cell, case in sorted(before.keys() | after.keys())
            if before.get((cell, case)) != after.get((cell, case))]


def runner_twins(compat: dict[str, Any], runner: str = "docker") -> tuple[dict[str, Any], dict[str, Any]]:
    """The results of the local cells that have a ``runner`` twin in the run, and the twins' results under
    the local cell's id: two runs for :func:`differing` (docker and local give the same states)."""
    suffix = f"-{runner}"
    cells = {r["cell"] for r in compat.get("results", [])}
    twins = {c[: -len(suffix)] for c in cells if c.endswith(suffix)} & cells
    local = [r for r in compat.get("results", []) if r["cell"] in twins]
    other = [{**r, "cell": r["cell"][: -len(suffix)]} for r in compat.get("results", [])
             if r["cell"].endswith(suffix) and r["cell"][: -len(suffix)] in twins]
    return {"results": local}, {"results": other}
