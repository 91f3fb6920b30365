"""The history store: one compact, append-only file per run, so the report can say "since when" and "how often".

Each report step (``python -m harness report``, and ``run`` after its cells) adds one file to the store
(``--history``, default ``REPORTS/history/``): the run's time, git revision, matrix and case-library
digests, and per (case, cell) its state, a digest of its message and its duration. The file is named
by its time and a short random suffix, so names sort by time and two report steps never collide; it
is written under a temporary name and linked into place, so a reader never sees half of one and an
existing file is never replaced. Files over :data:`GZIP_OVER` bytes are gzipped.

The report reads the last ``--history-window`` runs (default 20). A file that is not JSON, not gzip,
not of this format or of the wrong shape is skipped with one line on stderr that names it; history
never stops a report. Reporting the same results twice (the same JUnit files) stores them once.

Standard library only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.report.results import Results
from harness.states import State

FORMAT = "triton-matrix-history/1"
DEFAULT_WINDOW = 20
FOLDER = "history"  # below the reports folder, where --history is not given
GZIP_OVER = 64 * 1024  # bytes of JSON above which a run is stored gzipped
NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{6})\.json(\.gz)?$")
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
DIGEST_CHARS = 12
STATES = {state.value: state for state in State}  # a stored state by its value (a dict: 30,000 rows a run)


class NotAHistoryRun(Exception):
    """A file in the store that cannot be read as one of our runs (corrupt or foreign); ``str`` says why."""


@dataclass(frozen=True)
class Entry:
    """One (case, cell) in one run."""

    state: State
    message: str  # a digest of the message's first line ("" when it had none): a changed failure shows
    duration: float  # seconds


@dataclass(frozen=True)
class Run:
    """One run as stored: what ran (the digests), when, and each (case, cell)'s entry."""

    id: str  # the file's name without its suffixes: its time and a random suffix
    time: datetime  # when the report step stored it (UTC)
    revision: str | None  # the git commit the run ran from, where known
    matrix: str | None  # digest of the matrix file
    library: str | None  # digest of the case libraries' files, where the run knew them
    partial: bool
    entries: Mapping[tuple[str, str], Entry] = field(hash=False)
    issues: Mapping[str, int] = field(default_factory=dict, hash=False)  # known issue id -> occurrences

    @property
    def digest(self) -> str:
        """What makes two runs the same results: their entries (not when they were stored)."""
        rows = sorted((case, cell, e.state.value, e.message, round(e.duration, 3))
                      for (case, cell), e in self.entries.items())
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:DIGEST_CHARS]

    @property
    def label(self) -> str:
        """How a reader is shown the run: its time and, where known, its revision."""
        when = self.time.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{when} ({self.revision[:10]})" if self.revision else when


@dataclass(frozen=True)
class Window:
    """The last runs of the store, oldest first (the current run last), and the files skipped on the way."""

    runs: tuple[Run, ...]
    skipped: tuple[str, ...] = ()  # one line per file that could not be read


# -- what a run records ------------------------------------------------------------------------------


def message_digest(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    return hashlib.sha256(first.encode()).hexdigest()[:8] if first else ""


def file_digest(path: Path | None) -> str | None:
    """The digest of one file (the matrix), None where it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_CHARS] if path is not None else None
    except OSError:
        return None


def library_digest(roots: Iterable[Path]) -> str | None:
    """The digest of every file of the case libraries (names and contents), None without a library."""
    digest = hashlib.sha256()
    found = False
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            for name in sorted(filenames):
                path = Path(dirpath) / name
                try:
                    body = path.read_bytes()
                except OSError:
                    continue
                found = True
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()[:DIGEST_CHARS] if found else None


def git_revision(env: Mapping[str, str] = os.environ, cwd: Path | None = None) -> str | None:
    """The commit the run ran from: ``$GITHUB_SHA`` in CI, else ``git rev-parse HEAD``; None outside git."""
    if env.get("GITHUB_SHA"):
        return env["GITHUB_SHA"]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def from_results(results: Results, *, now: datetime, revision: str | None = None, matrix: str | None = None,
                 library: str | None = None) -> Run:
    """This run, as the store keeps it."""
    entries = {key: Entry(r.state, message_digest(r.message), r.time) for key, r in results.results.items()}
    issues = {s.id: len(s.occurred) for s in results.known_issues if s.occurred}
    return Run(id=new_id(now), time=now, revision=revision, matrix=matrix, library=library,
               partial=results.partial, entries=entries, issues=issues)


# -- the file format ---------------------------------------------------------------------------------


def encode(run: Run) -> dict[str, Any]:
    """The stored form: case and cell names once each, one short row per (case, cell)."""
    cases = sorted({case for case, _ in run.entries})
    cells = sorted({cell for _, cell in run.entries})
    case_at = {c: i for i, c in enumerate(cases)}
    cell_at = {c: i for i, c in enumerate(cells)}
    rows = [[case_at[case], cell_at[cell], e.state.value, e.message, round(e.duration, 3)]
            for (case, cell), e in sorted(run.entries.items())]
    return {"format": FORMAT, "time": run.time.strftime(TIME_FORMAT), "revision": run.revision,
            "matrix": run.matrix, "library": run.library, "partial": run.partial, "issues": dict(run.issues),
            "cases": cases, "cells": cells, "rows": rows}


def decode(data: object, run_id: str) -> Run:
    """A stored run; anything else is :class:`NotAHistoryRun` saying what is wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise NotAHistoryRun(f"not a triton-matrix history run (format {found!r}, expected {FORMAT!r})")
    try:
        time = datetime.strptime(data["time"], TIME_FORMAT).replace(tzinfo=timezone.utc)
        cases, cells, rows = data["cases"], data["cells"], data["rows"]
        entries = {}
        for case_i, cell_i, state, message, duration in rows:
            entries[(str(cases[case_i]), str(cells[cell_i]))] = Entry(STATES[state], str(message), float(duration))
        issues = {str(k): int(v) for k, v in (data.get("issues") or {}).items()}
        texts = [data.get(k) for k in ("revision", "matrix", "library")]
        if not all(t is None or isinstance(t, str) for t in texts):
            raise TypeError("revision, matrix and library must be strings or null")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # KeyError: an unknown state
        raise NotAHistoryRun(f"a history run of the wrong shape ({type(exc).__name__}: {exc})") from None
    return Run(id=run_id, time=time, revision=texts[0], matrix=texts[1], library=texts[2],
               partial=bool(data.get("partial")), entries=entries, issues=issues)


def read_run(path: Path) -> Run:
    """One stored run (gzipped or not); :class:`NotAHistoryRun` for a corrupt or foreign file."""
    match = NAME.match(path.name)
    if match is None:
        raise NotAHistoryRun("not named as a history run (<time>-<suffix>.json[.gz])")
    try:
        raw = path.read_bytes()
        if match.group(3):
            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise NotAHistoryRun(f"unreadable ({exc.strerror or exc})") from None
    except (EOFError, gzip.BadGzipFile, UnicodeDecodeError, ValueError) as exc:
        raise NotAHistoryRun(f"corrupt ({type(exc).__name__})") from None
    return decode(data, f"{match.group(1)}-{match.group(2)}")


# -- the store ---------------------------------------------------------------------------------------


def folder_of(reports: Path, history: Path | None) -> Path:
    return history if history is not None else reports / FOLDER


def stored(folder: Path) -> list[Path]:
    """The store's files, oldest first (their names start with their time); dotfiles are writes in progress."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def append(folder: Path, run: Run) -> Path:
    """Store ``run`` as a new file (never over an existing one) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps(encode(run), separators=(",", ":"), ensure_ascii=False).encode()
    suffix = ".json"
    if len(body) > GZIP_OVER:
        body, suffix = gzip.compress(body, mtime=0), ".json.gz"
    path = folder / f"{run.id}{suffix}"
    tmp = folder / f".{run.id}{suffix}.tmp"
    tmp.write_bytes(body)
    try:
        os.link(tmp, path)  # fails where the name exists: a stored run is never replaced
    finally:
        tmp.unlink()
    return path


def new_id(now: datetime) -> str:
    return f"{now.strftime(TIME_FORMAT)}-{secrets.token_hex(3)}"


def read_window(folder: Path, size: int = DEFAULT_WINDOW, *,
                say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Window:
    """The last ``size`` readable runs of the store, oldest first; each file skipped is said in one line."""
    runs: list[Run] = []
    skipped: list[str] = []
    for path in reversed(stored(folder)):
        if len(runs) >= size:
            break
        if path.is_dir():
            continue
        try:
            runs.append(read_run(path))
        except NotAHistoryRun as exc:
            line = f"history: skipped {path}: {exc}"
            skipped.append(line)
            say(line)
    runs.sort(key=lambda r: (r.time, r.id))
    return Window(runs=tuple(runs), skipped=tuple(skipped))


def record(folder: Path, run: Run, size: int = DEFAULT_WINDOW, *,
           say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Window:
    """Store ``run`` and return the window that ends with it (``size`` runs at most).

    The same results reported again (the last stored run has the same entries) are not stored twice:
    the window then ends with the stored one. A store that cannot be written is said in one line; the
    window still ends with ``run``.
    """
    before = read_window(folder, size, say=say)
    previous = list(before.runs)
    if previous and previous[-1].digest == run.digest:
        return before
    try:
        append(folder, run)
    except OSError as exc:
        say(f"history: cannot store this run in {folder} ({exc.strerror or exc}); it is shown, not kept")
    return Window(runs=(*previous[-(size - 1):], run) if size > 1 else (run,), skipped=before.skipped)
