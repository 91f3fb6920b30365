"""The workers of one cell share its case modules: each runs the next module no worker has taken yet.

Every worker collects the same modules in the same order (longest first, see ``harness.workers``) and
claims a module by creating its claim file (``O_EXCL``: exactly one worker succeeds) before running
its cases, so the modules are dealt out as workers become free, like pytest-xdist's ``loadfile``
without a controller process. The next module is claimed before the last case of the current one
runs, so pytest tears down module fixtures (and keeps session ones, the worker's server) as usual.

A worker lists only the cases of the modules it claimed as its plan (``Prop.COLLECTED``); when it is
stopped, it claims every module nobody has taken, so those cases are reported as not run, never lost.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

CLAIMS_OPTION = "--claims"


class ModuleQueue:
    """pytest plugin of one worker: its run loop takes modules from the claims folder."""

    def __init__(self, claims: Path) -> None:
        self.claims = claims
        self.claimed: list[pytest.Item] = []
        self._groups: list[list[pytest.Item]] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The modules of what is left after selection (-k, -m, deselection), in collection order."""
        groups: dict[str, list[pytest.Item]] = {}
        for item in session.items:
            groups.setdefault(_module_of(item), []).append(item)
        self._groups = list(groups.values())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        option = session.config.option
        if option.collectonly or (session.testsfailed and not option.continue_on_collection_errors):
            return None  # pytest's own loop says why it stops
        mine = self._next()
        while mine:
            following = None
            for i, item in enumerate(mine):
                if i == len(mine) - 1:
                    following = self._next()
                nextitem = mine[i + 1] if i + 1 < len(mine) else (following[0] if following else None)
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
            mine = following
        return True

    def sweep(self) -> None:
        """Claim every module nobody took (the worker was stopped): their cases join this plan, not run."""
        while self._next():
            pass

    def _next(self) -> list[pytest.Item] | None:
        while self._groups:
            group = self._groups.pop(0)
            if self._claim(_module_of(group[0])):
                self.claimed += group
                return group
        return None

    def _claim(self, module: str) -> bool:
        self.claims.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(module.encode()).hexdigest()[:16]
        try:
            fd = os.open(self.claims / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{module}\n{os.getpid()}\n")
        return True


def _module_of(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module else item.nodeid
