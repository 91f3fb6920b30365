"""The history store (harness.report.history) and what the report shows of it (harness.report.timeline).

The store: runs appended, a window of the last ones read back oldest first, a corrupt or foreign file
skipped with one line that names it, and no stored file ever written again. The report: three runs of
real JUnit files (``run1-baseline.xml``, ``run2-broken.xml``: two real runs of one cell) with a planted
flip give "failing since", "first seen" and the flake rate in compat.json, compat.md and the digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_harness
from harness import options
from harness.report import SYMBOLS, build, history, summary, timeline
from harness.report.history import Entry, Run
from harness.states import State
from test_report_diff import plain_matrix  # noqa: F401 (autouse: a matrix without declared incompatibilities)


JUNIT = FIXTURES / "junit"
CELL = "24.10-python-cpu-py3.11"
BROKEN, GOOD = "run2-broken.xml", "run1-baseline.xml"  # test_add fails in the first, passes in the second
ADD = "area/test_area.py::test_add[http]"
FLAKY = "area/test_area.py::test_flaky[http]"  # flaky in GOOD, passed in BROKEN
START = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)


def run_of(n: int, states: dict[tuple[str, str], State], **kw: object) -> Run:
    entries = {key: Entry(state, "", 1.0 + n) for key, state in states.items()}
    return Run(id=history.new_id(START + timedelta(days=n)), time=START + timedelta(days=n), revision=f"rev{n}",
               matrix="m", library=None, partial=False, entries=entries, **kw)  # type: ignore[arg-type]


def files_and_bytes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


# -- the store ---------------------------------------------------------------------------------------


@pytest.mark.fast  # no server, no venv
def test_appended_runs_come_back_in_a_window_of_the_last_ones_oldest_first(tmp_path: Path) -> None:
    store = tmp_path / "history"
    runs = [run_of(n, {("a", "c1"): State.PASSED, ("b", "c1"): State.FAILED}) for n in range(5)]
    for run in reversed(runs):  # stored out of order: the names (their time) order them
        history.append(store, run)
    window = history.read_window(store, 3, say=lambda line: None)
    assert [r.id for r in window.runs] == [r.id for r in runs[2:]]
    back = window.runs[-1]
    assert back.revision == "rev4" and back.entries[("b", "c1")] == Entry(State.FAILED, "", 5.0)
    assert back.digest == runs[4].digest


@pytest.mark.fast  # no server, no venv
def test_a_large_run_is_stored_gzipped_and_read_back(tmp_path: Path) -> None:
    run = run_of(0, {(f"area/test_{i}.py::test_case_{i}", f"cell-{j}"): State.PASSED for i in range(300)
                     for j in range(10)})
    path = history.append(tmp_path, run)
    assert path.name.endswith(".json.gz") and path.stat().st_size < history.GZIP_OVER
    assert history.read_run(path).entries == run.entries


@pytest.mark.fast  # no server, no venv
def test_a_stored_run_is_never_written_again(tmp_path: Path) -> None:
    store = tmp_path / "history"
    first = run_of(0, {("a", "c1"): State.PASSED})
    history.append(store, first)
    before = files_and_bytes(store)
    with pytest.raises(FileExistsError):  # the same name: refused, not replaced
        history.append(store, replace(first, entries={("a", "c1"): Entry(State.FAILED, "", 0.0)}))
    assert files_and_bytes(store) == before
    # The same results reported again are not stored twice; new results add a file, the old ones unchanged.
    again = history.record(store, replace(first, id=history.new_id(START + timedelta(days=1))), say=lambda line: None)
    assert files_and_bytes(store) == before and len(again.runs) == 1
    history.record(store, run_of(2, {("a", "c1"): State.FAILED}), say=lambda line: None)
    after = files_and_bytes(store)
    assert len(after) == 2 and {k: after[k] for k in before} == before
    assert not [p for p in store.iterdir() if p.name.startswith(".")], "no temporary file is left"


@pytest.mark.fast  # no server, no venv
def test_a_corrupt_or_foreign_entry_is_skipped_with_one_line_that_names_it(tmp_path: Path) -> None:
    store = tmp_path / "history"
    good = [run_of(n, {("a", "c1"): State.PASSED}) for n in range(2)]
    for run in good:
        history.append(store, run)
    newer = history.new_id(START + timedelta(days=5))
    (store / f"{newer}.json").write_text('{"format": "triton-matrix-histo')  # cut off
    foreign = history.new_id(START + timedelta(days=6))
    (store / f"{foreign}.json").write_text(json.dumps({"format": "someone-else/3", "rows": []}))
    bad_gzip = history.new_id(START + timedelta(days=7))
    (store / f"{bad_gzip}.json.gz").write_bytes(gzip.compress(b"not json at all")[:-6])
    shape = history.new_id(START + timedelta(days=8))
    unknown_state = {**history.encode(good[0]), "rows": [[0, 0, "no-such-state", "", 1]]}
    (store / f"{shape}.json").write_text(json.dumps(unknown_state))
    (store / "notes.txt").write_text("kept by hand")
    said: list[str] = []
    window = history.read_window(store, 10, say=said.append)
    assert [r.id for r in window.runs] == [r.id for r in good]
    assert len(said) == 5 and all(line.count("\n") == 0 for line in said)
    for name, why in ((f"{newer}.json", "corrupt"), (f"{foreign}.json", "someone-else/3"),
                      (f"{bad_gzip}.json.gz", "corrupt"), (f"{shape}.json", "wrong shape"), ("notes.txt", "named")):
        assert any(str(store / name) in line and why in line for line in said), (name, said)
    assert window.skipped == tuple(said)


@pytest.mark.fast  # no server, no venv
def test_the_digests_say_when_the_matrix_or_a_case_library_changed(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (library / "area" / "__pycache__").mkdir(parents=True)
    (library / "area" / "test_a.py").write_text("def test_a(): pass\n")
    first = history.library_digest([library])
    (library / "area" / "__pycache__" / "test_a.pyc").write_bytes(b"compiled")  # not the library
    assert history.library_digest([library]) == first
    (library / "area" / "test_a.py").write_text("def test_a(): assert False\n")
    assert history.library_digest([library]) not in (first, None)
    assert history.library_digest([]) is None and history.file_digest(tmp_path / "gone.toml") is None


@pytest.mark.fast  # no server, no venv
def test_the_history_window_option_is_declared_once_for_run_and_report() -> None:
    for command in (options.RUN, options.REPORT):
        args = options.parse([command, "--history", "h", "--history-window", "5"])
        assert (args.history, args.history_window) == ("h", 5)
        assert options.parse([command]).history_window == history.DEFAULT_WINDOW
    with pytest.raises(options.OptionError, match="--history-window"):
        options.parse([options.REPORT, "--history-window", "0"])


@pytest.mark.fast  # no server, no venv
def test_git_keeps_the_history_store_out() -> None:
    done = subprocess.run(["git", "check-ignore", "-q", "reports/history/20261201T030000.000000Z-abcdef.json"],
                          cwd=ROOT, check=False)
    assert done.returncode == 0


# -- the timeline --------------------------------------------------------------------------------------


@pytest.mark.fast  # no server, no venv
def test_failing_since_is_the_start_of_the_current_red_streak_and_first_seen_the_first_red() -> None:
    key = ("a", "c1")
    states = [State.FAILED, State.PASSED, State.FLAKY, State.FAILED, State.ERROR]
    runs = tuple(run_of(n, {key: s}) for n, s in enumerate(states))
    past = timeline.build(history.Window(runs=runs), size=20)
    pair = past.pairs[key]
    assert pair.failing_since is not None and pair.failing_since.run == runs[3].id
    assert pair.first_seen is not None and pair.first_seen.run == runs[0].id and pair.first_seen.window_start
    assert (pair.flaky, pair.ran, pair.flips) == (1, 5, 2)
    assert timeline.strip(pair, SYMBOLS) == "".join(SYMBOLS[s.value] for s in states)
    full = timeline.build(history.Window(runs=runs[3:]), size=2)  # red in every run of a full window
    assert timeline.since_text(full.pairs[key].failing_since, full).endswith("or earlier")
    assert not timeline.since_text(pair.failing_since, past).endswith("or earlier")


@pytest.mark.fast  # no server, no venv
def test_known_issue_last_seen_and_duration_trends() -> None:
    runs = tuple(run_of(n, {("a", "c1"): State.PASSED}, issues={"gh-1": 2} if n == 1 else {}) for n in range(3))
    past = timeline.build(history.Window(runs=runs), ["gh-1", "gh-2"])
    assert past.issues["gh-1"].last_seen is not None and past.issues["gh-1"].last_seen.run == runs[1].id
    assert past.issues["gh-2"].last_seen is None and past.issues["gh-2"].runs == 0
    (cell,) = past.cells
    assert (cell.name, cell.last, cell.median) == ("c1", 3.0, 1.5)  # 1 + n seconds; median of 1 and 2


# -- the report: three runs of real JUnit files with a planted flip -------------------------------------


def report_three_runs(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    for fixture in (BROKEN, GOOD, BROKEN):
        shutil.copy(JUNIT / fixture, reports / "junit" / f"{CELL}.xml")
        assert build.main(reports=reports) == 1  # every run has a failure
    return reports


@pytest.mark.fast  # no server, no venv
def test_three_runs_give_failing_since_and_the_flake_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    reports = report_three_runs(tmp_path)
    assert len(list((reports / "history").iterdir())) == 3

    data = json.loads((reports / "compat.json").read_text())["history"]
    runs = [r["id"] for r in data["runs"]]
    assert len(runs) == 3 and data["window"] == history.DEFAULT_WINDOW and data["unreadable"] == []
    pairs = {(p["case"], p["cell"]): p for p in timeline.pairs_of(data)}
    add = pairs[(ADD, CELL)]
    assert add["states"] == [State.FAILED.value, State.PASSED.value, State.FAILED.value]
    assert add["failing_since"] == runs[2] and add["first_seen"] == runs[0]
    assert add["flips"] == 2 and add["flake_rate"] == 0
    flaky = pairs[(FLAKY, CELL)]
    assert flaky["states"] == [State.PASSED.value, State.FLAKY.value, State.PASSED.value]
    assert flaky["flake_rate"] == pytest.approx(1 / 3, abs=0.001) and flaky["failing_since"] is None

    text = (reports / "compat.md").read_text()
    strip = "".join(SYMBOLS[s.value] for s in (State.FAILED, State.PASSED, State.FAILED))
    row = next(line for line in text.splitlines() if line.startswith(f"| {ADD} | `{CELL}` |"))
    assert strip in row and "(this run)" in row
    assert "33% (1/3)" in next(line for line in text.splitlines() if line.startswith(f"| {FLAKY} | `{CELL}` |"))
    page = (reports / "compat.html").read_text()
    assert '<h2 id="history">' in page and '<span class="strip"' in page

    digest = step_summary.read_text().split("# Triton compatibility:")[-1]  # the last run's
    assert "## Since the last run" in digest and "REGRESSION: 2 newly failing since the last run" in digest
    assert "failing since" in digest


@pytest.mark.fast  # no server, no venv
def test_a_corrupt_entry_does_not_stop_the_report_and_is_named(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(JUNIT / BROKEN, reports / "junit" / f"{CELL}.xml")
    (reports / "history").mkdir()
    bad = reports / "history" / f"{history.new_id(START)}.json"
    bad.write_text("{not json")
    assert build.main(reports=reports) == 1
    err = capsys.readouterr().err
    assert f"history: skipped {bad}: corrupt" in err
    assert bad.read_text() == "{not json", "a stored file is never rewritten, not even a broken one"
    data = json.loads((reports / "compat.json").read_text())["history"]
    assert len(data["runs"]) == 1 and data["unreadable"] == [f"history: skipped {bad}: corrupt (JSONDecodeError)"]


@pytest.mark.fast  # no server, no venv
def test_the_digest_says_what_changed_since_the_last_run() -> None:
    from harness.report.results import CellInfo, Result, Results

    now = Results(cells=[CellInfo(id="c1", state=State.FAILED)],
                  results={("a", "c1"): Result(case="a", cell="c1", state=State.FAILED, message="boom")})
    runs = (run_of(0, {("a", "c1"): State.PASSED}), history.from_results(now, now=START + timedelta(days=1)))
    text = summary.render(now, past=timeline.build(history.Window(runs=runs)))
    assert f"## Since the last run ({runs[0].label})" in text
    assert "| failing since |" in text and runs[1].label in text


def test_three_reports_through_the_command_line(tmp_path: Path, plain_matrix: Path) -> None:  # noqa: F811
    """``python -m harness report`` three times, as CI runs it night after night, into one store."""
    reports, store = tmp_path / "reports", tmp_path / "store"
    (reports / "junit").mkdir(parents=True)
    for fixture in (BROKEN, GOOD, BROKEN):
        shutil.copy(JUNIT / fixture, reports / "junit" / f"{CELL}.xml")
        done = run_harness("report", "--reports", str(reports), "--history", str(store), "--history-window", "2")
        assert done.returncode == 1, done.stderr
    assert len(list(store.iterdir())) == 3
    data = json.loads((reports / "compat.json").read_text())["history"]
    add = {(p["case"], p["cell"]): p for p in timeline.pairs_of(data)}[(ADD, CELL)]
    assert add["states"] == [State.PASSED.value, State.FAILED.value] and data["window"] == 2
    assert "history: 2 runs" in done.stdout and "REGRESSION: 2 newly failing since the last run" in done.stdout
