"""perf_analyzer's CSV read (real files captured from 2.51.0 against add_sub), and the finder's lines."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.perf import analyzer
from harness.perf.analyzer import CsvUnreadable, LibraryMissing

pytestmark = pytest.mark.fast

FIXTURES = Path(__file__).parent / "fixtures" / "perf"


def test_the_http_csv_gives_each_concurrency_level() -> None:
    rows = analyzer.parse_csv((FIXTURES / "add_sub-http-2.51.0.csv").read_text())
    assert [r.concurrency for r in rows] == [1, 2]
    one = rows[0]
    assert one.throughput == 2351.82 and (one.p50_us, one.p90_us, one.p99_us) == (274, 466, 4079)
    assert one.server_queue_us == 13 and one.server_compute_us == 16 + 172 + 27


def test_the_grpc_csv_is_sorted_by_concurrency() -> None:
    rows = analyzer.parse_csv((FIXTURES / "add_sub-grpc-2.51.0.csv").read_text())  # written 2, then 1
    assert [(r.concurrency, r.throughput) for r in rows] == [(1, 2509.37), (2, 1517.67)]


def test_a_csv_without_verbose_columns_names_the_option() -> None:
    with pytest.raises(CsvUnreadable, match="--verbose-csv"):
        analyzer.parse_csv("Concurrency,Inferences/Second,p50 latency\n1,10,5\n")
    with pytest.raises(CsvUnreadable, match="line 2"):
        text = (FIXTURES / "add_sub-http-2.51.0.csv").read_text().replace("2351.82", "n/a")
        analyzer.parse_csv(text)


def test_ldd_lines_name_what_is_missing() -> None:
    out = ("\tlibb64.so.0d => not found\n\tlibcudart.so.12 => not found\n\tlibc.so.6 => /lib/libc.so.6\n"
           "perf_analyzer: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found\n")
    assert analyzer.missing_libraries(out) == ["libb64.so.0d", "libcudart.so.12", "glibc"]
    assert analyzer.missing_libraries("\tlibc.so.6 => /lib/libc.so.6\n") == []


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_missing_library_is_one_line_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "ldd", "echo '\tlibb64.so.0d => not found'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake = _script(tmp_path / "perf_analyzer", "echo 'Perf Analyzer Version 2.51.0'\n")
    with pytest.raises(LibraryMissing, match="apt-get install -y libb64-0d") as err:
        analyzer.check(fake, ())
    assert "\n" not in str(err.value)


def test_a_binary_that_starts_gives_its_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _script(tmp_path / "perf_analyzer", "echo 'Perf Analyzer Version 2.51.0 (commit unknown)' >&2\n")
    monkeypatch.setenv(analyzer.PATH_ENV, str(fake))
    assert analyzer.find(prefixes=()).version == "2.51.0"


def test_no_binary_is_analyzer_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(analyzer.PATH_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(analyzer.AnalyzerMissing, match="nox -s perf"):
        analyzer.find(prefixes=(tmp_path,))


def test_the_range_step_visits_every_level() -> None:
    assert analyzer._step([1, 4]) == 3 and analyzer._step([1, 2, 4]) == 1 and analyzer._step([2]) == 1
