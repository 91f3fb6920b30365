"""The workers of one cell share its case modules: each runs the next module no worker has taken yet.

Every worker collects the same modules in the same order (longest first, see ``harness.run.workers``) and
claims a module by creating its claim file (``O_EXCL``: exactly one worker succeeds) before running
its cases, so the modules are dealt out as workers become free, like pytest-xdist's ``loadfile``
without a controller process. The next module is claimed before the last case of the current one
runs, so pytest tears down module fixtures (and keeps session ones, the worker's server) as usual.

A worker lists only the cases of the modules it claimed as its plan (``Prop.COLLECTED``); when it is
stopped, it claims every module nobody has taken, so those cases are reported as not run, never lost.
A claim names the worker and the module's cases (``harness.claims``): when a worker dies, the cell
runner hands its unfinished cases on to a follow-up worker by claiming them in that worker's name,
and the follow-up runs those first (:meth:`ModuleQueue.leftover` is what a worker says it left).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import claims
from harness.layout import Prop

class ModuleQueue:
    """pytest plugin of one worker: its run loop takes modules from the claims folder."""

    def __init__(self, folder: Path, worker: int = 0) -> None:
        self.claims = folder
        self.worker = worker
        self.claimed: list[pytest.Item] = []
        self._groups: list[list[pytest.Item]] = []
        self._handed: list[list[pytest.Item]] = []  # claimed in this worker's name before it started
        self._started: str | None = None
        self._finished: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The modules of what is left after selection (-k, -m, deselection), in collection order;
        first the cases the cell runner handed on to this worker (a dead worker's unfinished ones)."""
        handed = {c.nodeid for claim in claims.handed(self.claims, self.worker) for c in claim.cases}
        groups: dict[str, list[pytest.Item]] = {}
        own: dict[str, list[pytest.Item]] = {}
        for item in session.items:
            (own if item.nodeid in handed else groups).setdefault(_module_of(item), []).append(item)
        self._handed = list(own.values())
        self._groups = [g for module, g in groups.items() if module not in own]

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._started = nodeid

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._finished.add(nodeid)

    def leftover(self) -> claims.Leftover:
        """What this worker claimed and did not finish, the case in flight apart (it ended abnormally)."""
        in_flight = self._started if self._started not in self._finished else None
        rest = tuple(i.nodeid for i in self.claimed if i.nodeid not in self._finished and i.nodeid != in_flight)
        return claims.Leftover(in_flight=in_flight, rest=rest)

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
        if self._handed:
            group = self._handed.pop(0)
            self.claimed += group
            return group
        while self._groups:
            group = self._groups.pop(0)
            cases = tuple(claims.Case(item.nodeid, _case_of(item)) for item in group)
            if claims.take(self.claims, claims.Claim(_module_of(group[0]), self.worker, cases, os.getpid())):
                self.claimed += group
                return group
        return None


def _case_of(item: pytest.Item) -> str:
    """The case id the cell's plugin gave the item (a plain pytest run: its node id)."""
    return next((value for name, value in item.user_properties if name == Prop.CASE), item.nodeid)


def _module_of(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module else item.nodeid
