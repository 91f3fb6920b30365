"""Speed figures of triton-matrix on this machine; prints them and writes reports/bench.json.

    nox -s bench                    # everything, the default matrix with the full built-in library
    nox -s bench -- --quick         # the matrix runs with cases/basics only (minutes, not tens)
    nox -s bench -- --full-matrix-only   # only the default matrix with the whole library
    nox -s bench -- --under-load-only    # only states_equal_under_load (the other figures are kept)
    nox -s bench -- --report-only        # only the report's size and Chromium time (seconds, no server)
    nox -s bench -- --perf-only          # only how far nox -s perf's calls hold (bench.perf_calls)

Figures: start-to-ready per release (empty repository, median of 3); one warm cell, and what the harness
adds to its slowest worker's pytest session; without --quick, the whole-library cell with the default
workers and on the serial path (one case at a time, models loaded one by one): cell_speedup, and the
known-incompatible cell (24.10 + numpy 2) alone; the ratio of one server per cell to a server restarted
for every case (the way Triton's own qa scripts run); the default matrix with cases/basics cold (fresh
venvs) and warm, and warm at --jobs 1, 2 and 4; without --quick, the default matrix with the whole
built-in library: wall time, CPU seconds of the whole run, each cell's time and the known-incompatible
cell's, and its red results that no server caused (matrix_full_harness_reds: deadlines, load timeouts,
workers that died, cases never run; see bench.results); without --quick, states_equal_under_load: the
python py3.11 cells with the whole library, once idle and once with a busy loop per CPU, every case's
state compared cell by cell; the report at 100 cells x 300 cases with 20 runs of history (bench.synthetic,
bench.report_scale): report_html_bytes, report_html_chromium_s (until the page is usable) and compat.json's
size; without --quick, nox -s perf's calls (bench.perf_calls): an A/A run's false calls and a planted
slowdown's and leak's detections, 10 comparisons each. Targets: shared >= 20x faster than restart per case, harness overhead <=
10% of a whole-library cell, warm basics cell < 15 s, cell_speedup >= 3, the whole default matrix within
8 minutes, a known-incompatible cell within 90 s, no red result the harness caused, the same states
under load, compat.html under 5 MB and usable in Chromium within 2 s at 100 cells x 300 cases, no A/A
comparison called and the planted slowdown and leak called in 10 of 10.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from bench import cpu, load, perf_calls, report_scale, results
from harness import junit, matrix
from harness.matrix import envs
from harness.matrix import interpreters
from harness.client import Client
from harness.layout import Prop
from harness.servers.local import LocalServer

CELL = "24.10-python-cpu-py3.11-numpy1"
KNOWN_INCOMPATIBLE_CELL = "24.10-python-cpu-py3.12-numpy2"
ADD_SUB = ROOT / "cases" / "basics" / "models" / "add_sub"


def cell_env(release: matrix.Release, m: matrix.Matrix) -> envs.CellEnv:
    found = interpreters.find("3.11")
    assert isinstance(found, interpreters.Interpreter), found
    return envs.ensure(release=release.name, pytriton=release.pytriton or "", interpreter=found,
                       packages=m.envs["numpy1"].packages, env="numpy1")


def server(env: envs.CellEnv, workdir: Path, repo: Path) -> LocalServer:
    return LocalServer(venv=env.path, python="3.11", python_libdir=env.interpreter.libdir, repository=repo,
                       workdir=workdir, log_path=workdir / "server.log", stop_timeout=10)


def start_to_ready(m: matrix.Matrix) -> dict[str, float]:
    out = {}
    for name, release in sorted(m.releases.items()):
        env = cell_env(release, m)
        times = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                (work / "repo").mkdir()
                srv = server(env, work, work / "repo")
                started = time.monotonic()
                with srv:
                    times.append(time.monotonic() - started)
        out[name] = round(statistics.median(times), 3)
        print(f"start-to-ready {name} (server {srv.version}): {out[name]:.3f} s", flush=True)
    return out


def one_case(srv: LocalServer, client: Client) -> None:
    a = np.arange(4, dtype=np.float32)
    out = client.infer("add_sub", {"INPUT0": a, "INPUT1": a})
    assert out["OUTPUT0"].tolist() == (a + a).tolist()


def shared_vs_restart(m: matrix.Matrix, cases: int) -> dict[str, float]:
    """The same ``cases`` add/sub cases, on one server vs on a fresh server (start, load, stop) each."""
    env = cell_env(m.releases["24.10"], m)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = work / "repo"
        shutil.copytree(ADD_SUB, repo / "add_sub")
        config = repo / "add_sub" / "config.pbtxt"
        config.write_text(config.read_text().replace("${kind}", "KIND_CPU"))
        started = time.monotonic()
        with server(env, work, repo) as srv:
            srv.load("add_sub")
            client = Client("http", srv.http_client())
            for _ in range(cases):
                one_case(srv, client)
            client.close()
        shared = time.monotonic() - started
        started = time.monotonic()
        for _ in range(cases):
            with server(env, work, repo) as srv:
                srv.load("add_sub")
                client = Client("http", srv.http_client())
                one_case(srv, client)
                client.close()
        restart = time.monotonic() - started
    ratio = restart / shared
    print(f"{cases} cases: one server {shared:.1f} s, a server per case {restart:.1f} s: {ratio:.1f}x", flush=True)
    return {"cases": cases, "shared_s": round(shared, 2), "restart_s": round(restart, 2),
            "restart_per_case_s": round(restart / cases, 3), "ratio": round(ratio, 1)}


def run_cell(reports: Path, cases: list[str], *flags: str, cell: str = CELL) -> dict[str, float]:
    """One warm cell run: wall time, and what the harness adds to its slowest worker's pytest session
    (venv check, pytest start and collection, joining the workers' JUnit files)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "harness", "cell", cell, f"--reports={reports}", *flags, "--", *cases],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    suites = junit.read(reports / "junit" / f"{cell}.xml")
    props = suites[0].props
    slowest = max(s.time or 0.0 for s in suites)
    count = sum(len(s.cases) for s in suites)
    overhead = wall - slowest
    return {"cases": count, "workers": len(suites), "wall_s": round(wall, 2), "setup_s": float(props[Prop.SETUP_S]),
            "server_start_s": float(props.get(Prop.SERVER_START_S) or 0.0), "slowest_worker_s": round(slowest, 2),
            "harness_s": round(overhead, 2), "harness_share": round(overhead / wall, 3)}


def cell_split(name: str, cases: list[str], *flags: str, cell: str = CELL, warm: bool = True) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if (ROOT / "reports" / "junit").is_dir():  # the last run's times decide the order workers take modules
            shutil.copytree(ROOT / "reports" / "junit", Path(tmp) / "junit")
        if warm:
            run_cell(Path(tmp), cases, *flags, cell=cell)  # warms the venv
        split = run_cell(Path(tmp), cases, *flags, cell=cell)
    print(f"warm cell {cell} ({name}{', ' + ' '.join(flags) if flags else ''}, {split['cases']} cases, "
          f"{split['workers']} workers): {split['wall_s']:.1f} s; slowest worker {split['slowest_worker_s']:.1f} s; "
          f"harness {split['harness_s']:.2f} s ({100 * split['harness_share']:.1f}% of the cell)", flush=True)
    return split


@dataclass(frozen=True)
class MatrixRun:
    """What one ``nox -s matrix`` took, and the compat.json it wrote (None where it wrote none)."""

    wall_s: float
    cpu_s: float
    cells_s: dict[str, float]
    compat: dict[str, Any] | None

    @property
    def harness_reds(self) -> results.HarnessReds | None:
        return results.harness_reds(self.compat) if self.compat is not None else None

    def figures(self) -> dict[str, object]:
        reds = self.harness_reds
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s,
                "results": len(self.compat["results"]) if self.compat is not None else None,
                "harness_reds": reds.as_dict() if reds is not None else None}


def matrix_run(envdir: Path | None, cases: Path | None, label: str, jobs: int | None = None,
               history: bool = False, cells: tuple[str, ...] = ()) -> MatrixRun:
    """One ``nox -s matrix``: its wall time and the CPU seconds of every process of the run (user +
    system of nox, scheduler, cells, pytest, servers, stubs: bench.cpu, orphans included).
    ``history``: the run starts from the last run's reports/durations.json and JUnit files, as a
    user's next run does (cells longest first, modules longest first); without, as a first run.
    ``cells``: only the cells whose id matches one of these globs (all by default)."""
    with tempfile.TemporaryDirectory() as tmp:
        reports = Path(tmp)
        if history and (ROOT / "reports" / "junit").is_dir():
            # only the chosen cells' files: another cell's would be reported as if this run had run it
            shutil.copytree(ROOT / "reports" / "junit", reports / "junit", dirs_exist_ok=True,
                            ignore=lambda _, names: [n for n in names if n.endswith(".xml") and not chosen(n, cells)])
            if (ROOT / "reports" / "durations.json").exists():
                shutil.copy(ROOT / "reports" / "durations.json", reports / "durations.json")
        cmd = [sys.executable, "-m", "nox", "-s", "matrix", "--", f"--reports={reports}"]
        if cases:
            cmd.append(f"--cases={cases}")
        if jobs:
            cmd.append(f"--jobs={jobs}")
        cmd += [f"--cell={glob}" for glob in cells]
        env = {**os.environ, **({envs.ENVDIR_ENV: str(envdir)} if envdir else {})}
        cpu.reap_orphans()  # an earlier run's stragglers are not this run's
        before = cpu.children_cpu_s()
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
        took = time.monotonic() - started
        cpu.reap_orphans()
        used = cpu.children_cpu_s() - before
        summary = [ln for ln in done.stdout.splitlines() if " cells, " in ln]
        durations = json.loads((reports / "durations.json").read_text()) if (reports / "durations.json").exists() else {}
        compat = json.loads((reports / "compat.json").read_text()) if (reports / "compat.json").exists() else None
    count = len(compat["cells"]) if compat else len(matrix.load().cells())
    print(f"{'default matrix' if not cells else ' '.join(cells)} {label} ({count} cells"
          f"{f', --jobs {jobs}' if jobs else ''}): {took:.1f} s wall, {used:.0f} CPU s; "
          f"{summary[-1] if summary else done.stdout[-300:]}", flush=True)
    return MatrixRun(wall_s=round(took, 1), cpu_s=round(used, 1), cells_s=durations, compat=compat)


def chosen(junit_name: str, cells: tuple[str, ...]) -> bool:
    """Whether a cell's JUnit file (``<cell id>.xml``) belongs to the cells these globs choose (all: none given)."""
    return not cells or any(fnmatch.fnmatchcase(Path(junit_name).stem, glob) for glob in cells)


def full_matrix() -> dict[str, object]:
    """The whole built-in library over the default matrix, with the default --jobs, from the last run's
    history (a first run, with none, orders cells and modules by guesses: about 8 min here, not 6.5);
    with the red results no server caused (the harness's own: deadlines, load timeouts, workers that
    died, cases never run), which a run on a busy machine must not have either."""
    full = matrix_run(None, None, "the whole built-in library, from the last run's history", history=True)
    reds = full.harness_reds
    print(f"red results no server caused: {reds.count} {reds.by_cause}" if reds is not None
          else "red results no server caused: unknown, the run wrote no compat.json", flush=True)
    return {"matrix_full_s": full.wall_s, "matrix_full_cpu_s": full.cpu_s, "matrix_full_cells_s": full.cells_s,
            "known_incompatible_cell_in_matrix_s": full.cells_s.get(KNOWN_INCOMPATIBLE_CELL),
            "matrix_full_harness_reds": reds.count if reds is not None else None,
            "matrix_full_harness_reds_by_cause": reds.by_cause if reds is not None else None,
            "matrix_full_harness_red_examples": reds.as_dict()["examples"] if reds is not None else []}


@dataclass(frozen=True)
class UnderLoad:
    """The cells and library run once idle and once with a busy loop per CPU (bench.load)."""

    cells: tuple[str, ...] = ("*-python-cpu-py3.11-numpy1",)
    cases: Path | None = None  # the whole built-in library
    busy_loops: int = field(default_factory=load.busy_loop_count)


def under_load(config: UnderLoad) -> dict[str, object]:
    """Whether every case of the cells ends in the same state on a busy machine as on an idle one (a
    shared CI runner is busy): the states that differ, cell by cell, and both runs' times."""
    label = f"({config.cases or 'the whole built-in library'})"
    idle = matrix_run(None, config.cases, f"idle {label}", history=True, cells=config.cells)
    with load.busy_loops(config.busy_loops):
        loaded = matrix_run(None, config.cases, f"with {config.busy_loops} busy loops {label}", history=True,
                            cells=config.cells)
    written = idle.compat is not None and loaded.compat is not None
    diffs = results.differing(idle.compat, loaded.compat) if written else []
    equal = written and not diffs
    print(f"states equal under load: {equal}" + (f" ({len(diffs)} differ)" if diffs else "")
          + ("" if written else " (a run wrote no compat.json)"), flush=True)
    return {"states_equal_under_load": equal,
            "under_load": {"cells": list(config.cells), "cases": str(config.cases) if config.cases else None,
                           "busy_loops": config.busy_loops, "idle": idle.figures(), "loaded": loaded.figures(),
                           "differing": [asdict(d) for d in diffs]}}


def write(out: Path, figures: dict[str, object], keep: bool = False) -> None:
    """The figures into bench.json; ``keep``: those measured again replace theirs, the others stay."""
    result = json.loads(out.read_text()) if keep and out.exists() else {"machine": f"{os.cpu_count()} cores"}
    result.update(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="cells and the matrix with cases/basics only (no whole-library cell)")
    parser.add_argument("--full-matrix-only", action="store_true",
                        help="measure only the default matrix with the whole library; keep the other figures")
    parser.add_argument("--under-load-only", action="store_true",
                        help="measure only states_equal_under_load; keep the other figures")
    parser.add_argument("--under-load-cell", action="append", default=[], metavar="GLOB",
                        help=f"the cells of the under-load runs (default: {UnderLoad().cells[0]})")
    parser.add_argument("--under-load-cases", metavar="PATH", help="their case library (default: the built-in one)")
    parser.add_argument("--report-only", action="store_true",
                        help="measure only the report's size and Chromium time at scale; keep the other figures")
    parser.add_argument("--perf-only", action="store_true",
                        help="measure only nox -s perf's A/A and planted calls; keep the other figures")
    parser.add_argument("--busy-loops", type=int, default=load.busy_loop_count(),
                        help="busy loops of the loaded run (default: one per CPU)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    args = parser.parse_args()
    out = Path(args.out)
    cpu.adopt_orphans()
    loaded = UnderLoad(cells=tuple(args.under_load_cell) or UnderLoad().cells,
                       cases=Path(args.under_load_cases).resolve() if args.under_load_cases else None,
                       busy_loops=args.busy_loops)
    if args.full_matrix_only or args.under_load_only or args.report_only or args.perf_only:
        write(out, {**(full_matrix() if args.full_matrix_only else {}),
                    **(under_load(loaded) if args.under_load_only else {}),
                    **(report_scale.report_scale() if args.report_only else {}),
                    **(perf_calls.perf_calls() if args.perf_only else {})}, keep=True)
        return 0
    m = matrix.load()
    result: dict[str, object] = {"machine": f"{os.cpu_count()} cores", "quick": args.quick}
    result.update(report_scale.report_scale())  # seconds, no server: first
    result["start_to_ready_s"] = start_to_ready(m)
    shared = shared_vs_restart(m, cases=20)
    result["shared_vs_restart"] = shared
    result["shared_vs_restart_ratio"] = shared["ratio"]
    basics = cell_split("cases/basics", ["cases/basics"])
    result["cell_basics"] = basics
    result["warm_cell_s"] = basics["wall_s"]
    result["harness_overhead_share"] = basics["harness_share"]
    if not args.quick:  # the whole library: minutes per cell, but the overhead share of a real cell
        full = cell_split("the whole built-in library", [])
        serial = cell_split("the whole built-in library", [], "--serial", warm=False)
        result["cell_full"], result["cell_full_serial"] = full, serial
        result["cell_speedup"] = round(serial["wall_s"] / full["wall_s"], 2)
        print(f"cell speedup (serial path / default): {result['cell_speedup']:.2f}x", flush=True)
        result["harness_overhead_share"] = full["harness_share"]
        alone = cell_split("the whole built-in library", [], cell=KNOWN_INCOMPATIBLE_CELL)
        result["known_incompatible_cell_s"] = alone["wall_s"]  # the cell's own time, as cell_speedup's
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        shutil.copytree(ROOT / "cases" / "basics", lib / "basics", ignore=shutil.ignore_patterns("__pycache__"))
        envdir = Path(tmp) / "envs"
        result["matrix_cold_s"] = matrix_run(envdir, lib, "cold: fresh venvs, cases/basics").wall_s
        result["matrix_warm_s"] = matrix_run(envdir, lib, "warm, cases/basics").wall_s
        # How the matrix scales with cells at once (the basics library: minutes, not tens).
        result["matrix_basics_by_jobs_s"] = {
            str(jobs): matrix_run(None, lib, "warm, cases/basics", jobs=jobs).wall_s for jobs in (1, 2, 4)}
    if not args.quick:
        result.update(full_matrix())
        result.update(under_load(loaded))
        result.update(perf_calls.perf_calls())  # alone: after every matrix run
    write(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
