"""perf_analyzer, the field's own load generator: found, checked to start, run, and its CSV read.

It ships in the manylinux ``tritonclient`` wheel as ``bin/perf_analyzer`` (one binary measures every
release: the client is held constant, only the server changes). It needs ``libb64.so.0d`` (Debian
``libb64-0d``) and ``libcudart.so.12`` (PyPI ``nvidia-cuda-runtime-cu12``, whose lib folder is put on
``LD_LIBRARY_PATH`` here); wheels after 2.51 need glibc 2.38. What is missing is one line with the fix.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import processes
from harness.errors import HarnessError

BINARY = "perf_analyzer"
PATH_ENV = "TRITON_MATRIX_PERF_ANALYZER"  # a perf_analyzer to use instead of the one found
CUDART_GLOB = "lib/python*/site-packages/nvidia/cuda_runtime/lib"
START_TIMEOUT = 30.0
FIXES = {  # a shared library perf_analyzer may lack -> how to get it
    "libb64.so.0d": "apt-get install -y libb64-0d",
    "libcudart.so.12": "pip install nvidia-cuda-runtime-cu12 (nox -s perf installs it)",
}
GLIBC_FIX = "install tritonclient<=2.51.0 (its perf_analyzer runs on glibc 2.36; later wheels need 2.38)"


class AnalyzerError(HarnessError):
    """perf_analyzer cannot be used here."""


class AnalyzerMissing(AnalyzerError):
    """No perf_analyzer binary was found."""


class LibraryMissing(AnalyzerError):
    """perf_analyzer was found but a shared library it links is not."""


class AnalyzerCannotStart(AnalyzerError):
    """perf_analyzer was found with its libraries but does not start."""


class AnalyzerFailed(AnalyzerError):
    """A measurement ended without a result."""


class CsvUnreadable(AnalyzerError):
    """perf_analyzer's CSV lacks a column or a number the harness reads."""


@dataclass(frozen=True)
class Analyzer:
    """A perf_analyzer that starts, with the environment it starts in."""

    binary: Path
    library_path: tuple[Path, ...]
    version: str

    def environment(self, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if inherited is None else inherited)
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*map(str, self.library_path),
                                                  *filter(None, [env.get("LD_LIBRARY_PATH")])])
        return env


def candidates(prefixes: Sequence[Path] = (Path(sys.prefix),)) -> list[Path]:
    """Where a perf_analyzer may be: ``$TRITON_MATRIX_PERF_ANALYZER``, a venv's ``bin/``, then ``PATH``."""
    found = [Path(os.environ[PATH_ENV])] if os.environ.get(PATH_ENV) else []
    found += [prefix / "bin" / BINARY for prefix in prefixes]
    on_path = shutil.which(BINARY)
    return found + ([Path(on_path)] if on_path else [])


def cudart_dirs(binary: Path) -> tuple[Path, ...]:
    """The ``nvidia-cuda-runtime-cu12`` lib folders beside the binary's venv and the running Python's."""
    roots = dict.fromkeys([binary.resolve().parent.parent, Path(sys.prefix)])
    return tuple(Path(p) for root in roots for p in sorted(glob.glob(str(root / CUDART_GLOB))))


def missing_libraries(ldd_output: str) -> list[str]:
    """``libx.so => not found`` lines of ``ldd``, and glibc versions it asks that are not here."""
    missing = [line.split("=>")[0].strip() for line in ldd_output.splitlines() if "=> not found" in line]
    if "GLIBC_" in ldd_output and "version `GLIBC" in ldd_output:
        missing.append("glibc")
    return missing


def check(binary: Path, library_path: tuple[Path, ...]) -> Analyzer:
    """An :class:`Analyzer` for ``binary`` once it is shown to start; else the error naming what it lacks."""
    probe = Analyzer(binary, library_path, "")
    env = probe.environment()
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False)
    for lib in missing_libraries(ldd.stdout + ldd.stderr):
        if lib == "glibc":
            raise LibraryMissing("perf_analyzer needs a newer glibc than this machine's", where=str(binary),
                                 fix=GLIBC_FIX)
        raise LibraryMissing(f"perf_analyzer needs {lib}, which is not installed", where=str(binary),
                             fix=FIXES.get(lib, f"install the package that provides {lib}"))
    try:
        run = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=env,
                             timeout=START_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnalyzerCannotStart(f"perf_analyzer --version did not run: {exc}", where=str(binary),
                                  fix="reinstall tritonclient (nox -s perf does)") from None
    words = (run.stdout + run.stderr).split()  # 2.51 prints its version on stderr
    if run.returncode != 0 or "Version" not in words:
        last = (run.stdout + run.stderr).strip().splitlines()[-1:] or ["no output"]
        raise AnalyzerCannotStart(f"perf_analyzer --version exited {run.returncode}: {last[0]}",
                                  where=str(binary), fix="reinstall tritonclient (nox -s perf does)")
    return Analyzer(binary, library_path, words[words.index("Version") + 1])


def find(prefixes: Sequence[Path] = (Path(sys.prefix),)) -> Analyzer:
    """The first perf_analyzer that exists, checked to start."""
    for binary in candidates(prefixes):
        if binary.is_file():
            return check(binary, cudart_dirs(binary))
    raise AnalyzerMissing("no perf_analyzer found", where=f"${PATH_ENV}, {sys.prefix}/bin, PATH",
                          fix='run through nox -s perf, or pip install "tritonclient==2.51.0" nvidia-cuda-runtime-cu12')


# -- one measurement and its CSV ----------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """One perf_analyzer result at one concurrency: throughput (infer/s) and times in microseconds."""

    concurrency: int
    throughput: float
    p50_us: float
    p90_us: float
    p99_us: float
    avg_us: float
    server_queue_us: float
    server_compute_us: float  # input + infer + output

    def to_dict(self) -> dict[str, float]:
        return dict(vars(self))


COLUMNS = {"concurrency": "Concurrency", "throughput": "Inferences/Second", "p50_us": "p50 latency",
           "p90_us": "p90 latency", "p99_us": "p99 latency", "avg_us": "Avg latency",
           "server_queue_us": "Server Queue"}
COMPUTE = ("Server Compute Input", "Server Compute Infer", "Server Compute Output")


def parse_csv(text: str, *, shown: str = "perf_analyzer CSV") -> list[Measurement]:
    """The rows of ``perf_analyzer -f FILE --verbose-csv``, one per concurrency level, lowest first."""
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise CsvUnreadable("no rows", where=shown, fix="run perf_analyzer with -f FILE --verbose-csv")
    found = []
    for i, row in enumerate(rows, start=2):
        missing = [c for c in (*COLUMNS.values(), *COMPUTE) if c not in row]
        if missing:
            raise CsvUnreadable(f"no column {missing[0]!r}", where=shown, fix="pass --verbose-csv to perf_analyzer")
        try:
            values = {key: float(row[column]) for key, column in COLUMNS.items()}
            compute = sum(float(row[c]) for c in COMPUTE)
        except (TypeError, ValueError):
            raise CsvUnreadable(f"line {i}: a value is not a number", where=shown,
                                fix="check the perf_analyzer version (2.41 to 2.51 are read)") from None
        found.append(Measurement(concurrency=int(values.pop("concurrency")), server_compute_us=compute, **values))
    return sorted(found, key=lambda m: m.concurrency)


def measure(analyzer: Analyzer, *, model: str, url: str, protocol: str, concurrency: Sequence[int],
            requests: int, csv_path: Path, timeout: float, cpus: set[int] | None = None) -> list[Measurement]:
    """Run perf_analyzer once over ``concurrency`` against ``url``; each level counts ``requests`` requests.
    It runs on ``cpus`` and dies with this process, as every child of the run does."""
    levels = sorted(set(concurrency))
    command = [str(analyzer.binary), "-m", model, "-u", url, "-i", protocol,
               "--concurrency-range", f"{levels[0]}:{levels[-1]}:{_step(levels)}",
               "--measurement-mode", "count_windows", "--measurement-request-count", str(requests),
               "--stability-percentage", "1000", "--max-trials", "10", "-f", str(csv_path), "--verbose-csv"]
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.unlink(missing_ok=True)
    with processes.pinned(cpus):
        proc = processes.spawn(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=analyzer.environment())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AnalyzerFailed(f"perf_analyzer on {model} ran past {timeout:.0f} s", where=url,
                             fix="lower [perf] requests or raise the timeout") from None
    if proc.returncode != 0 or not csv_path.exists():
        last = [line for line in (out + err).splitlines() if line.strip()][-1:] or ["no output"]
        raise AnalyzerFailed(f"perf_analyzer on {model} exited {proc.returncode}: {last[0].strip()}", where=url,
                             fix="see the server log; the model must be loaded and answer")
    wanted = {m.concurrency: m for m in parse_csv(csv_path.read_text(encoding="utf-8"), shown=str(csv_path))}
    return [wanted[level] for level in levels if level in wanted]


def _step(levels: list[int]) -> int:
    """The one step of perf_analyzer's range that visits every level asked (1 and 4: step 3)."""
    if len(levels) == 1:
        return 1
    gaps = {b - a for a, b in zip(levels, levels[1:])}
    step = min(gaps)
    return step if all(g % step == 0 for g in gaps) else 1
