"""Command line: ``python -m harness cells|run|cell|report``.

Every :class:`HarnessError` becomes one line on stderr and exit code 2, with no traceback.
``cells`` and ``cell`` need only the standard library; ``run`` and ``report`` need
``harness/requirements-run.txt``. ``nox -s matrix -- ARGS`` is ``python -m harness run ARGS``: the
options are declared once, in ``harness.options``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import matrix as matrix_mod
from harness import options, processes, sources
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
        return _report(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cells(args: argparse.Namespace) -> int:
    matrix = matrix_mod.load(args.matrix)
    cells = matrix.select(args.cell, runner=args.runner)
    if args.json:
        print(json.dumps([c.as_dict() for c in cells]))
    else:
        for c in cells:
            print(c.id)
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness import run
    from harness import workers as workers_mod
    from harness.models import cli as models_cli

    processes.die_with_parent_now(os.getppid())  # nox SIGKILLed: the whole run goes with it
    matrix_path = Path(args.matrix).resolve() if args.matrix else None
    loaded = matrix_mod.load(matrix_path)
    cells = loaded.select(args.cell, runner=args.runner)
    # Bad input: one line, exit 2, before anything starts.
    models = models_cli.repositories(args.models, loaded)
    sources.check(_case_roots(args.cases, models))
    if args.reference:
        loaded.cell(args.reference)
    cases = tuple(c if c == "builtin" else str(Path(c).resolve()) for c in args.cases)
    workers = args.workers
    files = workers_mod.targets_of([str(r) for r in _case_roots(args.cases, models)])
    per_cell = workers_mod.worker_count(files, workers or loaded.settings.workers)
    jobs = args.jobs or run.default_jobs(per_cell)
    options = run.RunOptions(reports=Path(args.reports).resolve(), jobs=jobs, workers=workers,
                             cases=cases, models=tuple(models), reference=args.reference, matrix=matrix_path,
                             verbose=args.verbose, baseline=Path(args.baseline) if args.baseline else None)
    return run.main(cells, options, loaded)


def _cell(args: argparse.Namespace) -> int:
    from harness import cell as cell_mod
    from harness.models import cli as models_cli

    processes.die_with_parent_now(os.getppid())
    processes.adopt_orphans()  # a dead worker's server and stubs come here, to be ended (pool.end_orphans)

    matrix = matrix_mod.load(args.matrix)
    cell = matrix.cell(args.id)
    models = models_cli.repositories(args.models, matrix)  # models mode (harness/models/)
    roots = _case_roots(args.cases, models)
    return cell_mod.run(matrix, cell, roots=roots, reports=Path(args.reports), extra=args.pytest_args,
                        models=models, worker_count=args.workers, serial=args.serial)


def _case_roots(cases: list[str], models: list[Path]) -> list[Path]:
    """The case libraries a cell runs: ``--cases``, else the built-in one unless models mode alone."""
    from harness import cell as cell_mod

    return cell_mod.case_roots(cases) if cases or not models else []


def _report(args: argparse.Namespace) -> int:
    from harness.report import build

    return build.main(reports=Path(args.reports), plan=Path(args.plan) if args.plan else None,
                      baseline=Path(args.baseline) if args.baseline else None,
                      matrix=Path(args.matrix) if args.matrix else None, reference=args.reference)


if __name__ == "__main__":
    sys.exit(main())
