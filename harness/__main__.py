"""Command line: ``python -m harness cells|run|cell|report``.

Every :class:`HarnessError` becomes one line on stderr and exit code 2, with no traceback.
``cells`` and ``cell`` need only the standard library; ``run`` and ``report`` need
``harness/requirements-run.txt``. ``nox -s matrix -- ARGS`` is ``python -m harness run ARGS``: the
options are declared here, once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import matrix as matrix_mod
from harness import processes, sources
from harness.errors import HarnessError

CASES_HELP = "a case library folder (repeatable); 'builtin' is this repository's cases/"
MATRIX_HELP = "matrix file (default: $TRITON_MATRIX or ./matrix.toml)"
MODELS_HELP = ("a Triton model repository to load, ask and compare on every cell (repeatable; default: "
               "matrix.toml's models); without --cases only these run")
WORKERS_HELP = "pytest workers per cell, each with a server of its own (default: matrix.toml's settings.workers)"
REFERENCE_HELP = ("models mode: the cell every cell's answers are compared with (default: the oldest release's "
                  "cell of the same backend, kind, Python and env)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    cells = sub.add_parser("cells", help="print the expanded cells of the matrix")
    cells.add_argument("--matrix", help=MATRIX_HELP)
    cells.add_argument("--runner", help="run every cell with this runner (local, docker)")
    cells.add_argument("--cell", action="append", default=[], help="only cells whose id matches (glob)")
    cells.add_argument("--json", action="store_true", help="a JSON list, as a CI matrix consumes it")

    run = sub.add_parser("run", prog="nox -s matrix --",
                         help="run the selected cells, N at a time, then write the report (nox -s matrix)")
    run.add_argument("--cases", action="append", default=[], help=CASES_HELP)
    run.add_argument("--cell", action="append", default=[], help="only cells whose id matches (glob, repeatable)")
    run.add_argument("--runner", help="run every cell with this runner (local, docker)")
    run.add_argument("--matrix", help=MATRIX_HELP)
    run.add_argument("--jobs", type=int, default=None,
                     help="cells at once (default: as many as keep 6 workers per CPU alive)")
    run.add_argument("--reports", default="reports", help="reports folder")
    run.add_argument("--baseline", help="a previous compat.json to diff the report against")
    run.add_argument("-v", "--verbose", action="store_true", help="also a line for each not-applicable cell")
    run.add_argument("--models", action="append", default=[], help=MODELS_HELP)
    run.add_argument("--reference", help=REFERENCE_HELP)
    run.add_argument("--workers", type=int, default=None, help=WORKERS_HELP)

    cell = sub.add_parser("cell", help="run one cell and write its JUnit file")
    cell.add_argument("id", help="the cell id, e.g. 24.10-python-cpu-py3.11")
    cell.add_argument("--matrix", help=MATRIX_HELP)
    cell.add_argument("--cases", action="append", default=[], help=CASES_HELP)
    cell.add_argument("--reports", default="reports", help="reports folder")
    cell.add_argument("--models", action="append", default=[], help=MODELS_HELP)
    cell.add_argument("--workers", type=int, default=None, help=WORKERS_HELP)
    cell.add_argument("--serial", action="store_true",
                      help="one case at a time, a case's models loaded one by one (the path the benchmark compares)")
    cell.epilog = "Arguments after -- go to pytest (e.g. -k, or case files to run only those)."

    report = sub.add_parser("report", help="merge the cells' JUnit files into the compatibility report")
    report.add_argument("--reports", default="reports", help="reports folder (reads junit/, writes compat.*)")
    report.add_argument("--plan", help="plan.json listing the cells of the run (default: reports/plan.json)")
    report.add_argument("--baseline", help="a previous compat.json to diff against")
    report.add_argument("--matrix", help="the matrix whose known incompatibilities apply (default: the one in use)")
    report.add_argument("--reference", help=REFERENCE_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = extra
    try:
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
    workers = _positive(args.workers, "--workers")
    files = workers_mod.targets_of([str(r) for r in _case_roots(args.cases, models)])
    per_cell = workers_mod.worker_count(files, workers or loaded.settings.workers)
    jobs = _positive(args.jobs, "--jobs") or run.default_jobs(per_cell)
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
                        models=models, worker_count=_positive(args.workers, "--workers"), serial=args.serial)


def _case_roots(cases: list[str], models: list[Path]) -> list[Path]:
    """The case libraries a cell runs: ``--cases``, else the built-in one unless models mode alone."""
    from harness import cell as cell_mod

    return cell_mod.case_roots(cases) if cases or not models else []


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise HarnessError(f"{option} must be at least 1, got {value}", where=option, fix=f"e.g. {option} 4")
    return value


def _report(args: argparse.Namespace) -> int:
    from harness.report import build

    return build.main(reports=Path(args.reports), plan=Path(args.plan) if args.plan else None,
                      baseline=Path(args.baseline) if args.baseline else None,
                      matrix=Path(args.matrix) if args.matrix else None, reference=args.reference)


if __name__ == "__main__":
    sys.exit(main())
