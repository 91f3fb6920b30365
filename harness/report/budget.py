"""compat.html's size budget: under :data:`PAGE_LIMIT` bytes at 100 cells x 300 cases, whatever the logs hold.

What grows with a matrix is text from tests and servers: a failure's first line on every grid cell's
hover, and the failure text and server log of every red result. So a hover title is clipped to
:data:`TITLE_CHARS`, a first line in the failures to :data:`LINE_CHARS`, one result's details to
:data:`DETAIL_CHARS` (its head and its tail, where a server log says what happened last), and all
details of the page together to :data:`DETAILS_CHARS`: the worst results get theirs first, and the
rest point to their cell's JUnit file, which holds every word. compat.json and compat.md keep their own
limits.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_LIMIT = 5_000_000  # bytes of compat.html at 100 cells x 300 cases (bench/synthetic.py)
TITLE_CHARS = 120
LINE_CHARS = 400
DETAIL_CHARS = 4000
DETAILS_CHARS = 700_000
HEAD_SHARE = 4  # a clipped details keeps a quarter from its start and the rest from its end


def clip(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_middle(text: str, limit: int) -> str:
    """``text``, or its start and its end with a line that says how much was left out between them."""
    if len(text) <= limit:
        return text
    head = limit // HEAD_SHARE
    tail = limit - head
    return f"{text[:head]}\n… {len(text) - limit:,} characters left out (the cell's JUnit file has them) …\n{text[-tail:]}"


@dataclass
class Budget:
    """The characters of details the page has left; spent in order, worst result first."""

    left: int = DETAILS_CHARS

    def take(self, details: str) -> str | None:
        """The details to show (clipped), or None once the page's budget is spent: then none after it either."""
        shown = clip_middle(details, DETAIL_CHARS)
        if len(shown) > self.left:
            self.left = 0
            return None
        self.left -= len(shown)
        return shown
