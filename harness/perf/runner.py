"""``nox -s perf``: each selected cell's server measured in interleaved rounds, alone, pinned apart from
perf_analyzer; the rounds, medians, intervals and calls written to ``reports/perf.json``.

A round starts each release's server in turn (A B C, A B C, ...), so slow drift of the machine lands on
every release alike. In a round, per release: start-to-ready, each model's load, a warm-up, the RSS of
the server and its stubs, perf_analyzer over the concurrency levels, the RSS again (growth per 1,000
requests the server counted in between), then the server is stopped: one server alive at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT, processes, repository
from harness.errors import HarnessError
from harness.layout import perf_path, perf_workdir
from harness.matrix import Cell, Matrix, envs, interpreters
from harness.matrix import load as load_matrix
from harness.matrix.settings import PERF_ABSOLUTE, PerfSettings, release_key
from harness.perf import analyzer as analyzer_mod
from harness.perf import memory, section, stats
from harness.perf.analyzer import Analyzer, Measurement
from harness.servers import Server
from harness.servers.local import LocalServer

CASES = PROJECT_ROOT / "cases"
WARMUP_REQUESTS = 50
ANALYZER_TIMEOUT = 300.0
DIRECTIONS = {"throughput": stats.THROUGHPUT, "p50": stats.LATENCY, "p90": stats.LATENCY, "p99": stats.LATENCY,
              "start": stats.LATENCY, "load": stats.LATENCY, "rss": stats.MEMORY, "rss_growth": stats.MEMORY}


class UnknownPerfModel(HarnessError):
    """[perf] names a model the case library does not hold."""


class NotLocal(HarnessError):
    """perf measures the local runner's servers only (for now)."""


@dataclass(frozen=True)
class Subject:
    """One release's cell, with the venv its server runs from."""

    cell: Cell
    venv: Path
    libdir: Path
    label: str = ""  # how results name it: the release; another name measures one release twice (A/A)

    @property
    def release(self) -> str:
        return self.label or self.cell.triton


@dataclass
class Rounds:
    """Each figure of one release, one value per round, under a metric key (``add_sub/c4/p99``)."""

    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.figures.setdefault(key, []).append(value)


def split_cpus(cpus: set[int]) -> tuple[set[int] | None, set[int] | None]:
    """The server's CPUs and perf_analyzer's: halves where there are two or more, else no pinning."""
    ordered = sorted(cpus)
    if len(ordered) < 2:
        return None, None
    half = len(ordered) // 2
    return set(ordered[half:]), set(ordered[:half])


def subjects(matrix: Matrix, cells: list[Cell]) -> list[Subject]:
    """Each selected cell with its venv (made once, shared with the functional cells), oldest release first."""
    found = []
    check_local(cells)
    for cell in sorted(cells, key=lambda c: release_key(c.triton)):
        interpreter = interpreters.find(cell.python)
        if not isinstance(interpreter, interpreters.Interpreter):
            raise HarnessError(interpreter.reason, where=cell.id, fix="install that Python")
        found.append(Subject(cell, envs.for_cell(matrix, cell).path, interpreter.libdir))
    return found


def check_local(cells: list[Cell]) -> None:
    for cell in cells:
        if cell.runner != "local":
            raise NotLocal(f"cell {cell.id} runs {cell.runner}", where="--runner",
                           fix="measure the local runner's cells (the default)")


def check_models(settings: PerfSettings, case_roots: list[Path]) -> None:
    known = repository.discover(case_roots)
    for model in settings.models:
        if model not in known:
            raise UnknownPerfModel(f"no model {model!r} in the case library", where="matrix.toml: perf.models",
                                   fix=f"name one of cases/*/models: {', '.join(sorted(known)[:8])}, ...")


def inference_count(server: Server, model: str) -> int:
    """Requests the server has answered for ``model`` (its statistics extension)."""
    stats_ = server.http_client().get_inference_statistics(model)
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats_["model_stats"])


def host(url: str) -> str:
    return url.split("://", 1)[-1]


def one_round(subject: Subject, settings: PerfSettings, analyzer: Analyzer, work: Path, round_no: int,
              cpus: tuple[set[int] | None, set[int] | None], case_roots: list[Path]) -> Rounds:
    """One release in one round: its server started, measured and stopped."""
    server_cpus, client_cpus = cpus
    cell_work = work / (subject.cell.id + (f"-{subject.label}" if subject.label else ""))
    repo = cell_work / "repository"
    if not repo.exists():
        repository.render(case_roots, subject.cell, repo)
    server = LocalServer(venv=subject.venv, python=subject.cell.python, python_libdir=subject.libdir,
                         repository=repo, workdir=cell_work, log_path=cell_work / f"server.r{round_no}.log")
    found = Rounds()
    try:
        started = time.monotonic()
        with processes.pinned(server_cpus):
            server.start_and_wait()
        found.add("start", time.monotonic() - started)
        url = server.http_url if settings.protocol == "http" else server.grpc_url
        for model in settings.models:
            loading = time.monotonic()
            server.load(model)
            found.add(f"{model}/load", time.monotonic() - loading)
        for model in settings.models:
            def run(levels: tuple[int, ...], requests: int, name: str) -> list[Measurement]:
                return analyzer_mod.measure(analyzer, model=model, url=host(url), protocol=settings.protocol,
                                            concurrency=levels, requests=requests, timeout=ANALYZER_TIMEOUT,
                                            csv_path=cell_work / f"{model}.r{round_no}.{name}.csv", cpus=client_cpus)
            run((1,), WARMUP_REQUESTS, "warmup")
            rss_before, count_before = memory.tree_rss(server.pid), inference_count(server, model)
            for m in run(settings.concurrency, settings.requests, "measure"):
                prefix = f"{model}/c{m.concurrency}"
                for metric, value in (("throughput", m.throughput), ("p50", m.p50_us), ("p90", m.p90_us),
                                      ("p99", m.p99_us), ("queue", m.server_queue_us),
                                      ("compute", m.server_compute_us)):
                    found.add(f"{prefix}/{metric}", value)
            rss_after, answered = memory.tree_rss(server.pid), inference_count(server, model) - count_before
            found.add(f"{model}/rss", rss_after / 2**20)
            found.add(f"{model}/rss_growth", (rss_after - rss_before) / 2**20 / max(answered, 1) * 1000)
    finally:
        server.stop()
    return found


def metric_of(key: str) -> str:
    """``add_sub/c4/p99`` -> ``p99``: the metric a key's threshold and direction are read by."""
    return key.rsplit("/", 1)[-1]


def compare(rounds: dict[str, Rounds], reference: str, settings: PerfSettings) -> dict[str, Any]:
    """Each release's medians with intervals, and against the reference: ratio intervals and calls."""
    out: dict[str, Any] = {}
    ref = rounds[reference].figures
    for release, found in rounds.items():
        figures = {}
        for key, values in found.figures.items():
            entry: dict[str, Any] = {"rounds": values, "median": stats.median_interval(values).to_dict()}
            direction = DIRECTIONS.get(metric_of(key))
            if release != reference and direction is not None and key in ref:
                threshold = settings.threshold(metric_of(key))
                if metric_of(key) == PERF_ABSOLUTE:
                    difference = stats.difference_interval(values, ref[key])
                    verdict = stats.call_difference(difference, direction, threshold)
                    entry["difference"], entry["call"] = difference.to_dict(), direction.word(verdict)
                else:
                    ratio, verdict = stats.compare(values, ref[key], direction, threshold)
                    entry["ratio"], entry["call"] = ratio.to_dict(), direction.word(verdict)
            figures[key] = entry
        out[release] = figures
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on (absolute figures from a shared box are noise: see the ratios)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "load_before": os.getloadavg()}


def measure_subjects(chosen: list[Subject], settings: PerfSettings, reports: Path, analyzer: Analyzer,
                     case_roots: list[Path] | None = None) -> dict[str, Any]:
    """Interleaved rounds over ``chosen`` (the first, or ``settings.reference``, is the reference)."""
    releases = [s.release for s in chosen]
    reference = settings.reference or releases[0]
    if reference not in releases:
        raise HarnessError(f"reference release {reference} is not among the cells measured ({', '.join(releases)})",
                           where="matrix.toml: perf.reference", fix="select its cell or name another release")
    work = perf_workdir(reports)
    if len(set(releases)) < len(releases):
        raise HarnessError(f"a release measured twice under one name: {', '.join(releases)}", where="perf",
                           fix="give each subject its own label")
    cpus = split_cpus(os.sched_getaffinity(0))
    found = {s.release: Rounds() for s in chosen}
    about = machine()
    started = time.monotonic()
    for round_no in range(settings.rounds):
        for subject in chosen:
            print(f"perf: round {round_no + 1}/{settings.rounds}: {subject.release} ({subject.cell.id})", flush=True)
            measured = one_round(subject, settings, analyzer, work, round_no, cpus, case_roots or [CASES])
            for key, values in measured.figures.items():
                found[subject.release].figures.setdefault(key, []).extend(values)
    about.update(load_after=os.getloadavg(), wall_s=round(time.monotonic() - started, 1),
                 server_cpus=sorted(cpus[0] or ()), analyzer_cpus=sorted(cpus[1] or ()))
    return {"machine": about, "analyzer": {"binary": str(analyzer.binary), "version": analyzer.version},
            "settings": settings.to_dict(), "reference": reference,
            "cells": {s.release: s.cell.id for s in chosen},
            "releases": compare(found, reference, settings)}


class NoPerfCells(HarnessError):
    """No selected cell is one [perf] measures."""


@dataclass(frozen=True)
class Plan:
    """What a perf run measures, checked before anything starts (bad input: one line, exit 2)."""

    cells: tuple[Cell, ...]
    analyzer: Analyzer
    case_roots: tuple[Path, ...]
    gate: bool  # --perf-gate: a called slowdown or memory increase exits 1


def plan(matrix: Matrix, cells: list[Cell], case_roots: list[Path], gate: bool) -> Plan:
    """The cells to measure, their [perf] models found in ``case_roots`` (default cases/), a perf_analyzer
    that starts here."""
    if not cells:
        raise NoPerfCells("no cell to measure", where="matrix.toml: perf.cells",
                          fix="select a cell [perf] measures (its default: each release's python py3.11 cell)")
    check_local(cells)
    roots = list(case_roots) or [CASES]
    check_models(matrix.perf, roots)
    return Plan(tuple(cells), analyzer_mod.find(), tuple(roots), gate)


def for_run(matrix: Matrix, run_cells: list[Cell], case_roots: list[Path], gate: bool) -> Plan:
    """``nox -s matrix -- --perf``: the run's cells that [perf] measures, planned before the cells start."""
    chosen = {c.id for c in run_cells}
    try:
        measured = [c for c in matrix.select(list(matrix.perf.cells)) if c.id in chosen]
    except HarnessError:
        measured = []
    if not measured:
        raise NoPerfCells("none of this run's cells is one [perf] measures", where="--perf",
                          fix=f"select one of perf.cells ({', '.join(matrix.perf.cells)}) with --cell, "
                              "or name this run's cells in matrix.toml's perf.cells")
    return plan(matrix, measured, case_roots, gate)


def run(matrix: Matrix, planned: Plan, reports: Path) -> int:
    """Measure, write ``reports/perf.json``, say each release's calls; 1 when gated and a regression was called.
    An earlier perf.json goes first: a measurement that does not finish leaves none, not an old one."""
    path = perf_path(reports)
    path.unlink(missing_ok=True)
    results = measure_subjects(subjects(matrix, list(planned.cells)), matrix.perf, reports, planned.analyzer,
                               list(planned.case_roots))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    for release, figures in results["releases"].items():
        calls = [f"{key} {entry['call']} " + (f"x{entry['ratio']['median']:.2f}" if "ratio" in entry else
                                                f"{entry['difference']['median']:+.2f} MB/1k")
                 for key, entry in figures.items() if entry.get("call") not in (None, "same")]
        said = "the reference" if release == results["reference"] else "; ".join(calls) or "same as the reference"
        print(f"perf: {release}: {said}", flush=True)
    print(f"perf: {path} ({results['machine']['wall_s']} s)", flush=True)
    called = section.regressions(results)
    for line in called:
        print(f"  regression: {line}", flush=True)
    return 1 if called and planned.gate else 0


def main(args: argparse.Namespace, case_roots: list[Path] | None = None) -> int:
    """``python -m harness perf``: bad input is one line and exit 2 before any server starts."""
    matrix = load_matrix(args.matrix)
    planned = plan(matrix, matrix.select(args.cell or list(matrix.perf.cells)), case_roots or [], args.perf_gate)
    return run(matrix, planned, Path(args.reports).resolve())
