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

A matrix's ``[[known_failures]]`` entry is parsed into the same :class:`KnownIssue`
(:func:`parse_known_failure`, id ``matrix.known_failures[<n>]``): one mechanism.

Here: the model, the loader (on the validator matrix.toml uses, ``harness.matrix.settings.Validator``) and
the matching (where an issue applies, which failure it explains, a declared hang's deadline). Holding a
cell's pytest results to them is the in-cell side's (``harness.incell.classify``), holding JUnit results to
them the report's (``harness.report.issues``).

Runs inside the cell's venv (Python 3.9+): standard library and tomli only, no pytest.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from harness.compat import KW_ONLY, tomllib
from harness.errors import HarnessError
from harness.layout import Verdict
from harness.matrix.settings import Validator, release_key, shown_path

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
MATRIX_KEYS = ("cells", "cases", "reason", "message")  # of a matrix.toml [[known_failures]] entry


class KnownIssuesError(HarnessError):
    """A case library's known_issues.toml that cannot be used (a matrix's known_failures are the matrix's
    HarnessError, as the rest of that file)."""


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

    def to_dict(self) -> dict[str, Any]:
        """Every field, in JSON's types (the cell spec, ``harness.spec``, carries the issues to the workers)."""
        return {f.name: list(value) if isinstance(value, tuple) else value
                for f in fields(self) for value in (getattr(self, f.name),)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KnownIssue:
        tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        return cls(**{key: tuple(value) if key in tuples else value for key, value in data.items()})


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
    v = Validator(shown_path(path), KnownIssuesError)
    data = _read(v, path)
    v.keys(data, ("issue",), "", fix="declare each issue as an [[issue]] table")
    entries = v.list_of_tables(data.get("issue", []), "issue")
    issues = tuple(_parse_issue(v, entry, f"issue[{i}]") for i, entry in enumerate(entries))
    seen: set[str] = set()
    for i, issue in enumerate(issues):
        if issue.id in seen:
            v.fail(f"issue[{i}].id", f"duplicate id {issue.id!r}", "give each issue its own id")
        seen.add(issue.id)
    return issues


def load_all(case_roots: Sequence[Path], matrix_issues: Sequence[KnownIssue] = ()) -> tuple[KnownIssue, ...]:
    """Every case library's issues, then the matrix's (its ``known_failures``)."""
    return (*(i for root in case_roots for i in load(root)), *matrix_issues)


def _read(v: Validator, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problem = (f"cannot read: {exc.strerror}", "make the file readable")
    except UnicodeDecodeError:
        problem = ("not UTF-8 text", "save the file as UTF-8")
    except tomllib.TOMLDecodeError as exc:
        problem = (f"not valid TOML ({exc})", "fix the TOML syntax")
    v.fail("", *problem)  # outside the except: the one-line error, without the parser's traceback chained


def _parse_issue(v: Validator, entry: dict[str, Any], key: str) -> KnownIssue:
    v.keys(entry, KEYS, key)
    v.require(entry, ("id", "cases", "reason"), key,
              "give id, cases (globs of case ids), reason, and outcome or message")
    texts = {k: v.text(entry[k], f"{key}.{k}") for k in ("id", "reason", "link", "outcome") if k in entry}
    releases = {k: v.release(entry[k], f"{key}.{k}") for k in ("min_triton", "max_triton") if k in entry}
    outcome = texts.get("outcome")
    if outcome is not None:
        v.choice(outcome, tuple(OUTCOMES), f"{key}.outcome")
    intermittent = entry.get("intermittent", False)
    v.type(intermittent, bool, f"{key}.intermittent",
           fix="write intermittent = true (a run where it does not occur is then not flagged)")
    messages = v.string_list(entry.get("message", []), f"{key}.message", may_be_empty=True)
    if outcome is None and not messages:
        v.fail(key, "says nothing of what is seen", f"give outcome ({', '.join(OUTCOMES)}) and/or message (fragments)")
    return KnownIssue(id=texts["id"], cases=v.string_list(entry["cases"], f"{key}.cases"), reason=texts["reason"],
                      outcome=outcome, messages=messages, link=texts.get("link"),
                      min_triton=releases.get("min_triton"), max_triton=releases.get("max_triton"), source=v.shown,
                      flag_absent=not intermittent,
                      **{k: v.string_list(entry.get(k, []), f"{key}.{k}", may_be_empty=True) for k in WHERE_LISTS})


def parse_known_failure(v: Validator, entry: dict[str, Any], index: int) -> KnownIssue:
    """A matrix.toml ``[[known_failures]]`` entry (``v`` is the matrix's validator) as the issue it declares:
    id ``matrix.known_failures[<index>]``, its cells as the only where-filter. An entry for whole cells
    (``cases`` left at ``"*"``) does not flag a case that passes there: it names no case that must fail."""
    key = f"known_failures[{index}]"
    v.keys(entry, MATRIX_KEYS, key)
    v.require(entry, ("cells", "reason"), key, "give cells (globs), reason, and optionally cases (globs) and message")
    cases = v.string_list(entry.get("cases", "*"), f"{key}.cases")
    return KnownIssue(id=f"matrix.{key}", cases=cases, reason=v.text(entry["reason"], f"{key}.reason"),
                      messages=v.string_list(entry.get("message", []), f"{key}.message", may_be_empty=True),
                      cells=v.string_list(entry["cells"], f"{key}.cells"), source=v.shown,
                      flag_absent=cases != ("*",))


__all__ = [
    "FILENAME",
    "OUTCOMES",
    "CellLike",
    "KnownIssue",
    "KnownIssuesError",
    "case_matches",
    "deadline",
    "declared",
    "explains",
    "first_explaining",
    "load",
    "load_all",
    "parse_known_failure",
]
