"""The exception types every layer of triton-matrix shares.

Every error a user can cause or meet (a broken matrix file, a server that never came up, an unreadable
JUnit file) is raised as :class:`HarnessError`. Its message is one line that names the file or key,
says what is wrong and says what to do; the command line prints it without a traceback and exits 2.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; ``str(err)`` is the whole, one-line message."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        parts = [f"{where}: {message}" if where else message]
        if fix:
            parts.append(fix)
        super().__init__("; ".join(parts))
        self.where = where
        self.fix = fix


class NotApplicable(Exception):  # noqa: N818 - a verdict, not an error
    """The cell (or a case) cannot run here: no GPU, no such backend, another Python in the image.

    A sibling of :class:`HarnessError`, not a kind of it: not applicable is never a failure.
    """
