"""A case module (or conftest.py) that fails to import in the cell: an error result naming it, never a stop.

The library's files compile (``harness.sources`` checked that before the cell started), so what fails
here fails only in the cell: a package the cell's venv lacks, an error raised at import on the cell's
Python, a conftest.py that raises. pytest writes it into JUnit as a testcase whose message is
"collection failure"; here it says where and what, as ``area/test_x.py:2: ModuleNotFoundError: No
module named 'foo'``, and the testcase gets the case id of the file that failed (its path in the library).

Runs in the cell's venv (Python 3.9 and up).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.config import ConftestImportFailure

from harness.layout import Element, Prop

# What pytest wraps the exception of a failed import in (its ``__cause__`` is the team's exception).
WRAPPERS = (pytest.Collector.CollectError, ConftestImportFailure)


def cause_of(exc: BaseException) -> BaseException:
    """The exception the import raised, under pytest's wrapper."""
    while isinstance(exc, WRAPPERS) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def failed_file(exc: BaseException, node_path: Path) -> Path:
    """The file that failed to import: a conftest.py's own (pytest reports it as its folder's), else
    the module's."""
    return Path(exc.path) if isinstance(exc, ConftestImportFailure) else Path(node_path)


def shown_path(path: str, roots: list[Path]) -> str:
    """A path relative to the case library that holds it (as case ids are), else as it is."""
    resolved = Path(path).resolve()
    for root in roots:
        try:
            return resolved.relative_to(root).as_posix()
        except ValueError:
            continue
    return path


def place(exc: BaseException, roots: list[Path]) -> str | None:
    """``file:line`` of the failure: a SyntaxError's own, else the innermost frame in a case library
    (the line of the team's code), else the innermost frame."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{shown_path(exc.filename, roots)}:{exc.lineno}" if exc.lineno else shown_path(exc.filename, roots)
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if shown_path(f.filename, roots) != f.filename]
    frame = (ours or frames or [None])[-1]
    return f"{shown_path(frame.filename, roots)}:{frame.lineno}" if frame is not None else None


def describe(exc: BaseException, roots: list[Path]) -> str:
    """One line: where, the exception type and its message (its first line)."""
    cause = cause_of(exc)
    said = cause.msg if isinstance(cause, SyntaxError) else str(cause)  # its str() repeats file and line
    text = (str(said).strip().splitlines() or [""])[0]
    what = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    where = place(cause, roots)
    return f"{where}: {what}" if where else what


def outside(args: list[str], folders: list[Path]) -> list[str]:
    """The command line's case files and node ids that are not below one of ``folders``."""
    def below(arg: str) -> bool:
        path = Path(arg.split("::")[0]).resolve()
        return any(path == folder or folder in path.parents for folder in folders)

    return [arg for arg in args if not below(arg)]


def name_in_junit(config: pytest.Config, report: pytest.CollectReport, message: str, case: str) -> None:
    """Give the testcase pytest's JUnit writer made of a collection error its message and case id.

    pytest's writer (``_pytest.junitxml``) holds it until the session ends; where its internals differ,
    the testcase keeps pytest's own message (the full traceback stays its text either way).
    """
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    reporter = xml.node_reporter(report)
    errors = [node for node in getattr(reporter, "nodes", ()) if node.tag == Element.ERROR]
    if errors:
        errors[-1].set("message", message)
    reporter.add_property(Prop.CASE, case)


class CollectErrors:
    """pytest plugin of a cell's worker: a module or conftest.py that fails to import is an error result
    of its own, naming its file, line and exception; the cell's other modules still run."""

    def __init__(self, config: pytest.Config, roots: list[Path]) -> None:
        self.config = config
        self.roots = roots
        self.errors: dict[str, tuple[str, str]] = {}  # nodeid -> (case id, where and what failed)
        self.broken_folders: list[Path] = []  # folders whose conftest.py raised at import
        config.option.continue_on_collection_errors = True

    def pytest_exception_interact(self, node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any],
                                  report: pytest.CollectReport | pytest.TestReport) -> None:
        """The exception of a module or conftest.py that failed to import (only here is it at hand)."""
        if isinstance(report, pytest.CollectReport) and call.excinfo is not None:
            if Path(node.path).is_dir():  # its conftest.py raised
                self.broken_folders.append(Path(node.path))
            failed = failed_file(call.excinfo.value, Path(node.path))
            case = shown_path(str(failed), self.roots)
            self.errors[report.nodeid] = (case, describe(call.excinfo.value, self.roots))

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Iterator[object]:
        """pytest refuses a case file whose folder it could not collect ("found no collectors") and
        ends the session; that folder's error is reported already, so the rest is collected again."""
        try:
            return (yield)
        except pytest.UsageError:
            kept = outside(session.config.args, self.broken_folders)
            if not self.broken_folders or len(kept) == len(session.config.args):
                raise
            session.perform_collect(kept)
            return True

    @pytest.hookimpl(trylast=True)  # after pytest's JUnit writer made its testcase
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and report.nodeid in self.errors:
            case, message = self.errors[report.nodeid]
            name_in_junit(self.config, report, message, case)
