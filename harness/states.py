"""The states a result can have, each with how every writer shows it: one place, read by all.

Members are listed worst first: a cell's state is the worst of its cases' (:attr:`State.rank`).
Standard library only (the in-cell progress recorder uses it too, on Python 3.9+).
"""

from __future__ import annotations

import enum


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
