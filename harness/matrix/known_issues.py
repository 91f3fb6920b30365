"""Known issues: a case library's declared Triton bugs, as data, and which results they explain.

A case asserts Triton's contract (the documentation, or what the newest release does right). Where a
release breaks it (a hang, a crashed stub or server, a lost error, a wrong counter or readiness), the
case fails there, and that failure is declared once, in ``<case root>/known_issues.toml``:

    [[issue]]
    id = "stub-kill-hang"
    cases = ["python_backend/test_lifecycle.py::test_stub_sigkill_requests_fail_fast*"]
    min_triton = "24.07"                 # where: min_triton, max_triton, pythons, envs, runners,
    max_triton = "24.07"                 #        instance_kinds, backends, cells (globs); all optional
    outcome = "hang"                     # what is seen: outcome and/or message (fragments, any one)
    reason = "a request to a SIGKILLed stub never answers"
    link = "https://github.com/triton-inference-server/server/issues/..."   # optional

The matrix's ``[[known_failures]]`` become the same objects (:func:`from_matrix`): one mechanism.

Here: the model, the loader and the matching (where an issue applies, which failure it explains, a
declared hang's deadline). Holding a cell's pytest results to them is the in-cell side's (``harness.incell.classify``), holding JUnit results to
them the report's (``harness.report.issues``).

Runs inside the cell's venv (Python 3.9+): standard library and tomli only, no pytest.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.compat import KW_ONLY, tomllib
from harness.errors import HarnessError
from harness.layout import Verdict
from harness.matrix.settings import RELEASE_RE, Validator, release_key

FILENAME = "known_issues.toml"

# What a failure looks like for each outcome. The harness's own texts (pytest-timeout, the clients'
# timeouts, the server's death as the plugin reports it) and the python backend's words for a dead stub.
OUTCOMES: dict[str, re.Pattern[str]] = {
    "hang": re.compile(r"Failed: Timeout|timed out|Deadline ?Exceeded|no answer within|no progress within|never answered",
                       re.IGNORECASE),
    "stub-crash": re.compile(r"Stub process '[^']*' is not healthy|stub (?:process )?(?:died|crashed|exited)"
                             r"|backend stub of model '[^']*' \(pid \d+\) (?:exited with code|was killed by)"
                             r"|Failed to (?:process|initialize) the request|SIGSEGV|segmentation fault"
                             r"|terminate called after throwing",
                             re.IGNORECASE),
    "server-crash": re.compile(r"killed by SIG[A-Z]+|server (?:ended|exited|died)|exited with (?:code|status)"
                               r"|Connection refused|failed to connect", re.IGNORECASE),
    "wrong-value": re.compile(r"^(?:E\s+)?(?:AssertionError\b|assert\b)", re.MULTILINE),
    "error": re.compile(r"(?s).+"),
}
# The harness's own verdict on a failure (harness.incell.supervise, a JUnit property) says what was seen better
# than any wording: a timeout is a hang, whichever client said it.
VERDICT_OUTCOMES = {Verdict.TIMEOUT: "hang", Verdict.SERVER_DIED: "server-crash"}
# A case declared to hang here gets this deadline (if shorter than its own): the hang is confirmed as
# well in 15 s as in the case's whole timeout (cases that bound a load themselves use 8 s on a spare
# server), and a release with many hangs stays minutes, not hours.
DECLARED_HANG_DEADLINE_S = 15.0
WHERE_LISTS = ("pythons", "envs", "runners", "instance_kinds", "backends", "cells")
KEYS = ("id", "cases", "reason", "link", "outcome", "message", "min_triton", "max_triton", "intermittent",
        *WHERE_LISTS)


@dataclass(frozen=True, **KW_ONLY)
class KnownFailure:
    """A matrix.toml ``[[known_failures]]`` entry as written; :func:`from_matrix` makes it a KnownIssue."""

    cells: tuple[str, ...]  # globs over cell ids
    reason: str
    cases: tuple[str, ...] = ("*",)  # globs over case ids
    messages: tuple[str, ...] = ()  # fragments; the failure must contain one to count


def parse_known_failure(v: Validator, entry: dict[str, Any], key: str) -> KnownFailure:
    v.keys(entry, ("cells", "cases", "reason", "message"), key)
    for k in ("cells", "reason"):
        if k not in entry:
            v.fail(key, f"missing {k}", "give cells (globs), reason, and optionally cases (globs) and message")
    lists = {}
    for k, default in (("cells", "*"), ("cases", "*"), ("message", [])):
        value = entry.get(k, default)
        lists[k] = (value,) if isinstance(value, str) else tuple(v.strings(value, f"{key}.{k}"))
    v.type(entry["reason"], str, f"{key}.reason")
    return KnownFailure(cells=lists["cells"], cases=lists["cases"], reason=entry["reason"],
                        messages=lists["message"])


class KnownIssuesError(HarnessError):
    """A known_issues.toml (or a matrix's known_failures) that cannot be used."""


class CellLike(Protocol):
    """What matching needs of a cell (harness.matrix.Cell has it; the report builds one from JUnit)."""

    id: str
    triton: str
    backend: str
    instance_kind: str
    python: str
    env: str | None
    runner: str


@dataclass(frozen=True, **KW_ONLY)
class KnownIssue:
    """One declared bug: which cases, where, what is seen, why. Empty where-filters match every cell."""

    id: str
    cases: tuple[str, ...]  # globs over case ids ("area/test_x.py::test_y[http]")
    reason: str
    outcome: str | None = None  # a key of OUTCOMES
    messages: tuple[str, ...] = ()  # fragments; one must be in the failure
    link: str | None = None
    min_triton: str | None = None
    max_triton: str | None = None
    pythons: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    runners: tuple[str, ...] = ()
    instance_kinds: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()  # globs over cell ids
    source: str = ""  # the file it came from, for messages
    flag_absent: bool = True  # a passing case is flagged; off for cell-wide matrix entries ("*")

    def applies_to(self, cell: CellLike) -> bool:
        """Whether the issue is declared for this cell (its where-filters)."""
        key = release_key(cell.triton)
        if self.min_triton and key < release_key(self.min_triton):
            return False
        if self.max_triton and key > release_key(self.max_triton):
            return False
        pairs = ((self.pythons, cell.python), (self.envs, cell.env), (self.runners, cell.runner),
                 (self.instance_kinds, cell.instance_kind), (self.backends, cell.backend))
        if any(values and actual not in values for values, actual in pairs):
            return False
        return not self.cells or any(fnmatch.fnmatchcase(cell.id, p) for p in self.cells)

    def names(self, case_id: str) -> bool:
        """Whether a case glob names the case (``*`` and ``?`` are wildcards; ``[`` is literal, since
        case ids carry their parameters in brackets)."""
        return case_matches(self.cases, case_id)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "link": self.link, "cases": list(self.cases),
                "outcome": self.outcome, "messages": list(self.messages), "source": self.source}


def case_matches(patterns: Iterable[str], case_id: str) -> bool:
    """Whether one of the case globs names the case (brackets are literal)."""
    return any(fnmatch.fnmatchcase(case_id, p.replace("[", "[[]")) for p in patterns)


def declared(issues: Iterable[KnownIssue], cell: CellLike, case_id: str) -> tuple[KnownIssue, ...]:
    """The issues declared for this case in this cell."""
    return tuple(i for i in issues if i.names(case_id) and i.applies_to(cell))


def explains(issue: KnownIssue, observed: str, verdict: str | None = None) -> bool:
    """Whether a failure is what the issue says is seen (its outcome and one of its messages); the
    harness's ``verdict`` on the failure, where it gave one, decides the outcome."""
    if issue.outcome is not None and issue.outcome != "error":
        seen = VERDICT_OUTCOMES.get(verdict or "")
        if seen is not None and seen != issue.outcome:
            return False
        if seen is None and not OUTCOMES[issue.outcome].search(observed):
            return False
    return not issue.messages or any(m in observed for m in issue.messages)


def first_explaining(issues: Iterable[KnownIssue], observed: str, verdict: str | None = None) -> KnownIssue | None:
    return next((i for i in issues if explains(i, observed, verdict)), None)


def deadline(issues: Iterable[KnownIssue], cell: CellLike, case_id: str, default: float) -> float:
    """The case's deadline: shorter where a hang is declared for it in this cell."""
    if any(i.outcome == "hang" for i in declared(issues, cell, case_id)):
        return min(default, DECLARED_HANG_DEADLINE_S)
    return default


# -- loading ---------------------------------------------------------------------------------------
def load(case_root: Path) -> tuple[KnownIssue, ...]:
    """The issues of one case library (none when it has no known_issues.toml)."""
    path = Path(case_root) / FILENAME
    if not path.exists():
        return ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KnownIssuesError(f"not valid TOML ({exc})", where=str(path), fix="fix the syntax") from None
    extra = sorted(set(data) - {"issue"})
    if extra:
        raise KnownIssuesError(f"unknown key {extra[0]!r}", where=str(path),
                               fix="declare each issue as an [[issue]] table")
    entries = data.get("issue", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KnownIssuesError("issue must be an array of tables", where=str(path), fix="write [[issue]]")
    issues = tuple(_parse(entry, f"{path}: issue[{i}]", str(path)) for i, entry in enumerate(entries))
    seen: set[str] = set()
    for issue in issues:
        if issue.id in seen:
            raise KnownIssuesError(f"duplicate id {issue.id!r}", where=str(path), fix="give each issue its own id")
        seen.add(issue.id)
    return issues


def load_all(case_roots: Sequence[Path], known_failures: Sequence[Any] = ()) -> tuple[KnownIssue, ...]:
    """Every case library's issues, then the matrix's known_failures as issues."""
    issues = [i for root in case_roots for i in load(root)]
    return (*issues, *from_matrix(known_failures))


def from_matrix(known_failures: Sequence[Any]) -> tuple[KnownIssue, ...]:
    """The matrix's ``[[known_failures]]`` (harness.matrix.KnownFailure) as known issues."""
    return tuple(
        KnownIssue(id=f"matrix.known_failures[{i}]", cases=tuple(k.cases), reason=k.reason,
                   messages=tuple(k.messages), cells=tuple(k.cells), source="matrix.toml",
                   flag_absent=tuple(k.cases) != ("*",))
        for i, k in enumerate(known_failures)
    )


def _parse(entry: dict[str, Any], where: str, source: str) -> KnownIssue:
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise KnownIssuesError(f"unknown key {unknown[0]!r}", where=where, fix=f"use only: {', '.join(KEYS)}")
    for key in ("id", "cases", "reason"):
        if key not in entry:
            raise KnownIssuesError(f"missing {key}", where=where,
                                   fix="give id, cases (globs of case ids), reason, and outcome or message")
    for key in ("id", "reason", "link", "outcome", "min_triton", "max_triton"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise KnownIssuesError(f"{key} must be a non-empty string", where=f"{where}.{key}",
                                   fix=f'write {key} = "..."')
    if not isinstance(entry.get("intermittent", False), bool):
        raise KnownIssuesError("intermittent must be true or false", where=f"{where}.intermittent",
                               fix="write intermittent = true (a run where it does not occur is not flagged)")
    outcome = entry.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise KnownIssuesError(f"unknown outcome {outcome!r}", where=f"{where}.outcome",
                               fix=f"use one of: {', '.join(OUTCOMES)}")
    for key in ("min_triton", "max_triton"):
        if key in entry and not RELEASE_RE.match(entry[key]):
            raise KnownIssuesError(f"{entry[key]!r} is not a Triton release", where=f"{where}.{key}",
                                   fix="write it as YY.MM, e.g. '24.07'")
    lists = {key: _strings(entry, key, where) for key in ("cases", "message", *WHERE_LISTS)}
    if not lists["cases"]:
        raise KnownIssuesError("cases is empty", where=f"{where}.cases", fix="name at least one case glob")
    if outcome is None and not lists["message"]:
        raise KnownIssuesError("says nothing of what is seen", where=where,
                               fix=f"give outcome ({', '.join(OUTCOMES)}) and/or message (fragments)")
    return KnownIssue(id=entry["id"], cases=lists["cases"], reason=entry["reason"], outcome=outcome,
                      messages=lists["message"], link=entry.get("link"), min_triton=entry.get("min_triton"),
                      max_triton=entry.get("max_triton"), source=source,
                      flag_absent=not entry.get("intermittent", False), **{key: lists[key] for key in WHERE_LISTS})


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise KnownIssuesError(f"{key} must be a string or a list of strings", where=f"{where}.{key}",
                               fix=f'write {key} = ["..."]')
    return tuple(value)


__all__ = [
    "FILENAME",
    "OUTCOMES",
    "KnownIssue",
    "KnownIssuesError",
    "case_matches",
    "declared",
    "explains",
    "first_explaining",
    "from_matrix",
    "load",
    "load_all",
]
