"""The states a result can have, how every writer shows them, and how a case gets one: one place.

Members are listed worst first: a cell's state is the worst of its cases' (:attr:`State.rank`).
:func:`case_state` maps what pytest's JUnit writer records of a case (its result element, message and
properties) to its state; the report (``harness.report.model``) and the in-cell progress recorder
(``harness.progress``) both call it, so the live counts and the report's cannot disagree.
Standard library only (the in-cell progress recorder uses it too, on Python 3.9+).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from harness.layout import NOT_APPLICABLE_PREFIX, TIMEOUT_RE, Element, Prop, Verdict


class State(str, enum.Enum):
    """``symbol``: the Markdown's and the console's; ``glyph``: the HTML's (no emoji font needed);
    ``colour``: its HTML background; ``bad``: it fails the run."""

    symbol: str
    glyph: str
    colour: str
    bad: bool

    def __new__(cls, value: str, symbol: str, glyph: str, colour: str, bad: bool) -> State:
        member = str.__new__(cls, value)
        member._value_ = value
        member.symbol, member.glyph, member.colour, member.bad = symbol, glyph, colour, bad
        return member

    ERROR = ("error", "💥", "‼", "#ff9c9c", True)
    TIMEOUT = ("timeout", "⏱️", "◷", "#ffc48f", True)
    FAILED = ("failed", "❌", "✗", "#ffc2c2", True)
    MISSING = ("missing", "❓", "?", "#fff0a0", True)
    UNEXPECTEDLY_PASSING = ("unexpectedly-passing", "❗", "✓!", "#dccbff", False)
    FLAKY = ("flaky", "🔁", "↻", "#c6e0ff", False)
    KNOWN_INCOMPATIBLE = ("known-incompatible", "🔶", "⊘", "#ffe2b0", False)
    PASSED = ("passed", "✅", "✓", "#c9f0d3", False)
    SKIPPED = ("skipped", "⏭️", "↷", "#e4e4e4", False)
    NOT_APPLICABLE = ("not-applicable", "➖", "–", "#f4f4f4", False)

    @property
    def rank(self) -> int:
        """0 for the worst state."""
        return list(State).index(self)

    def __str__(self) -> str:
        return self.value


def worst(states: list[State]) -> State:
    return min(states, key=lambda s: s.rank)


FAILING = (State.ERROR, State.TIMEOUT, State.FAILED)  # what a verdict or a known issue can explain
VERDICT_STATES = {Verdict.TIMEOUT: State.TIMEOUT, Verdict.SERVER_DIED: State.ERROR, Verdict.INTERRUPTED: State.ERROR,
                  Verdict.WORKER_DIED: State.ERROR}


def element_state(element: str | None, message: str) -> State:
    """The state a testcase's first result element gives it. Only a call's failure can be a timeout by its
    message: a setup or teardown error stays an error, whatever it says (the case itself never ran out)."""
    if element == Element.FAILURE:
        return State.TIMEOUT if TIMEOUT_RE.search(message) else State.FAILED
    if element == Element.ERROR:
        return State.ERROR
    if element == Element.SKIPPED:
        return State.NOT_APPLICABLE if message.startswith(NOT_APPLICABLE_PREFIX.strip()) else State.SKIPPED
    return State.PASSED


def held_to_issues(state: State, props: Mapping[str, str]) -> State:
    """The cell's known-issue properties (``harness.incell.classify``) over a case's state."""
    if Prop.SKIPPED_BY_ERROR in props:
        return State.ERROR
    if props.get(Prop.KNOWN_ISSUE) and state in FAILING:
        return State.KNOWN_INCOMPATIBLE
    if props.get(Prop.KNOWN_ISSUE_ABSENT) and state in (State.PASSED, State.FLAKY):
        return State.UNEXPECTEDLY_PASSING
    return state


def case_state(element: str | None, message: str, props: Mapping[str, str], *, rerun: bool = False) -> State:
    """A case's state from its last attempt: the element and message (:func:`element_state`), the harness's
    own verdict over a failure, ``flaky`` for a pass after an attempt that was run again (``rerun``, or
    alone at the end of the cell after a timeout under load: ``Prop.PASSED_ALONE``), then
    the known issues (:func:`held_to_issues`)."""
    state = element_state(element, message)
    verdict = VERDICT_STATES.get(props.get(Prop.VERDICT, ""))
    if verdict is not None and state in FAILING:
        state = verdict
    if state == State.PASSED and (rerun or Prop.PASSED_ALONE in props):  # re-run, or run again alone
        state = State.FLAKY
    return held_to_issues(state, props)
