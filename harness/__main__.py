"""Command line: ``python -m harness cells|run|cell|report``.

Every :class:`HarnessError` becomes one line on stderr and exit code 2, with no traceback.
``cells`` and ``cell`` need only the standard library; ``run`` and ``report`` need
``harness/requirements-run.txt``. ``nox -s matrix -- ARGS`` is ``python -m harness run ARGS``: the
options are declared once, in ``harness.options``; their defaults that depend on the matrix or the
machine are resolved here, once, in the process the user started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import matrix as matrix_mod
from harness import options, processes, sources
from harness.run import workers
from harness.servers import reaper
from harness.errors import HarnessError


def main(argv: list[str] | None = None) -> int:
    try:
        args = options.parse(list(sys.argv[1:] if argv is None else argv))
        if args.command == "cells":
            return _cells(args)
        if args.command == "cell":
            return _cell(args)
        if args.command == "run":
            return _run(args)
        if args.command == options.PERF:
            from harness.perf import runner as perf_runner

            from harness.run import cell as cell_mod

            return perf_runner.main(args, cell_mod.case_roots(args.cases))  # [perf] models come from these
        return _report(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cells(args: argparse.Namespace) -> int:
    matrix = matrix_mod.load(args.matrix)
    cells = matrix.select(args.cell, runner=args.runner)
    if args.json:  # as the CI workflow's matrix takes them (harness.matrix.ci)
        from harness.matrix import ci

        print(json.dumps([ci.job(matrix, c) for c in cells]))
    else:
        for c in cells:
            print(c.id)
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness.run import scheduler as run
    from harness.models import cli as models_cli

    processes.die_with_parent_now(os.getppid())  # nox SIGKILLed: the whole run goes with it
    matrix_path = Path(args.matrix).resolve() if args.matrix else None
    loaded = matrix_mod.load(matrix_path)
    cells = loaded.select(args.cell, runner=args.runner)
    if any(c.runner == "docker" for c in cells):
        reaper.ensure()  # bound to this process and to nox: the run's containers go when the run goes
    # Bad input: one line, exit 2, before anything starts.
    models = models_cli.repositories(args.models, loaded)
    roots = _case_roots(args.cases, models)
    sources.check(roots)
    if args.reference:
        loaded.cell(args.reference)
    resolved = options.resolve(options.RUN, args, options.Context(
        settings=loaded.settings, targets=tuple(workers.targets_of([str(r) for r in roots]))))
    reports = Path(args.reports).resolve()
    # What every cell is given, resolved: a cell computes no default of its own (harness.options).
    for_cells = {"matrix": matrix_path, "reports": reports, "models": models, "workers": resolved.workers,
                 "cases": [c if c == "builtin" else str(Path(c).resolve()) for c in args.cases]}
    perf = None
    if args.perf:  # planned now: no perf_analyzer or an unknown model is bad input before any cell starts
        from harness.perf import runner as perf_runner
        from harness.run import cell as cell_mod

        perf = perf_runner.for_run(loaded, cells, cell_mod.case_roots(args.cases), args.perf_gate)
    given = run.RunOptions(reports=reports, jobs=resolved.jobs, for_cells=for_cells, reference=args.reference,
                           matrix=matrix_path, verbose=args.verbose,
                           baseline=Path(args.baseline) if args.baseline else None,
                           history=Path(args.history) if args.history else None,
                           history_window=args.history_window, libraries=tuple(roots), perf=perf)
    return run.main(cells, given, loaded)


def _cell(args: argparse.Namespace) -> int:
    from harness.run import cell as cell_mod
    from harness.models import cli as models_cli

    processes.die_with_parent_now(os.getppid())
    processes.stop_budget()  # a bad value: one line before anything starts, not when the cell is stopped
    processes.adopt_orphans()  # a dead worker's server and stubs come here, to be ended (pool.end_orphans)

    matrix = matrix_mod.load(args.matrix)
    cell = matrix.cell(args.id)
    if cell.runner == "docker":
        reaper.ensure()  # bound to this process and its parent: the cell's containers go when it goes
    models = models_cli.repositories(args.models, matrix)  # models mode (harness/models/)
    roots = _case_roots(args.cases, models)
    resolved = options.resolve(options.CELL, args, options.Context(settings=matrix.settings))  # alone: not given
    return cell_mod.run(matrix, cell, roots=roots, reports=Path(args.reports), extra=args.pytest_args,
                        models=models, worker_count=resolved.workers, serial=args.serial)


def _case_roots(cases: list[str], models: list[Path]) -> list[Path]:
    """The case libraries a cell runs: ``--cases``, else the built-in one unless models mode alone."""
    from harness.run import cell as cell_mod

    return cell_mod.case_roots(cases) if cases or not models else []


def _report(args: argparse.Namespace) -> int:
    from harness.report import build

    return build.main(reports=Path(args.reports), plan=Path(args.plan) if args.plan else None,
                      baseline=Path(args.baseline) if args.baseline else None,
                      matrix=Path(args.matrix) if args.matrix else None, reference=args.reference,
                      history_dir=Path(args.history) if args.history else None, history_window=args.history_window)


if __name__ == "__main__":
    sys.exit(main())
