"""The run's options, declared once: one table builds every parser and renders every child's argv.

``python -m harness cells|run|cell|report`` and the pytest plugin read their options from :data:`OPTIONS`:
:func:`parser` builds the command line's parsers, :func:`add_pytest_options` registers a cell worker's
options (``--spec``, ``--worker``, ``--claims``: a worker reads its cell spec, ``harness.spec``, not the
matrix), and :func:`to_args` writes the argv of a child process (the scheduler's ``python -m harness
cell``, the cell runner's workers), so a flag is spelled, typed and explained in one place.

A default that depends on the machine or the matrix (``--workers``, ``--jobs``) is resolved once, by
:func:`resolve` in the process the user started; a child is handed the resolved value and does not
resolve it again. A bad value is an :class:`OptionError`: one line, exit code 2.

Standard library only, importable on Python 3.9: the plugin imports it in the cell's venv.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

CELLS, RUN, CELL, REPORT, PLUGIN, PERF = "cells", "run", "cell", "report", "plugin", "perf"
META = ("command", "pytest_args")  # what :func:`parse` adds beside the options' values


class OptionError(HarnessError):
    """A bad value on the command line; ``str(err)`` names the option, the value and the fix."""

    def __init__(self, flag: str, message: str, example: str) -> None:
        super().__init__(message, where=flag, fix=f"e.g. {flag} {example}")


@dataclass(frozen=True)
class Context:
    """What a resolved default depends on: the matrix's settings and the case files a cell runs."""

    settings: Any  # harness.matrix.settings.Settings (not imported: the plugin needs none of it)
    targets: tuple[str, ...] = ()


Resolver = Callable[[Mapping[str, Any], Context], Any]


@dataclass(frozen=True)
class Option:
    """One option: its flag, how its value is read, its default, and the commands that take it.

    ``resolver``: the default where it depends on the matrix or the machine, computed by
    :func:`resolve` in the top process only (the value stays None until then). ``helps``: a command
    whose help says more than ``help`` (the same meaning, with what that command does with it).
    """

    flag: str  # "--workers", or a positional's name ("id")
    help: str
    commands: frozenset[str]
    type: Callable[[str], Any] | None = None
    default: Any = None
    action: str | None = None  # "append" or "store_true"
    short: str | None = None  # "-v"
    resolver: Resolver | None = None
    needs: tuple[str, ...] = ()  # the options (dests) whose resolved values ``resolver`` reads
    helps: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")

    def initial(self) -> Any:
        """The value when the option is not given (a fresh list for a repeatable one)."""
        return [] if self.action == "append" else False if self.action == "store_true" else self.default

    def help_for(self, command: str) -> str:
        return self.helps.get(command, self.help)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    prog: str | None = None  # how the user types it, where that is not ``python -m harness NAME``
    epilog: str | None = None


def at_least_one(flag: str) -> Callable[[str], int]:
    """The type of a count option: a whole number >= 1, else an :class:`OptionError` (not argparse's
    usage text: bad input is one line)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise OptionError(flag, f"not a whole number: {text!r}", "4") from None
        if value < 1:
            raise OptionError(flag, f"must be at least 1, got {value}", "4")
        return value

    return convert


def workers_for(targets: Iterable[str], requested: int) -> int:
    """The workers a cell runs: ``requested``, but no more than case files (a worker without a module
    to take only costs), and at least one. The one clamp of ``--workers``."""
    return max(1, min(requested, len({t.split("::")[0] for t in targets})))


def default_workers(values: Mapping[str, Any], context: Context) -> int:
    """``--workers`` unset: the matrix's ``settings.workers``."""
    return int(context.settings.workers)


def default_jobs(values: Mapping[str, Any], context: Context) -> int:
    """``--jobs`` unset: as many cells as keep the run's workers (each with a server and its stubs)
    within what the CPUs serve (``harness.admission.server_budget``). Six workers per core (3 cells of
    4 on 2 cores) ran the matrix at a load average of 17 and timed cases out."""
    from harness import admission

    return max(1, admission.server_budget() // workers_for(context.targets, values["workers"]))


def _on(*commands: str) -> frozenset[str]:
    return frozenset(commands)


COMMANDS = (
    Command(CELLS, "print the expanded cells of the matrix"),
    Command(RUN, "run the selected cells, N at a time, then write the report (nox -s matrix)",
            prog="nox -s matrix --"),
    Command(CELL, "run one cell and write its JUnit file",
            epilog="Arguments after -- go to pytest (e.g. -k, or case files to run only those)."),
    Command(REPORT, "merge the cells' JUnit files into the compatibility report"),
    Command(PERF, "measure speed and memory of matrix.toml's [perf] models across releases (nox -s perf)",
            prog="nox -s perf --"),
)

OPTIONS = (
    Option("id", "the cell id, e.g. 24.10-python-cpu-py3.11", _on(CELL)),
    Option("--cases", "a case library folder (repeatable); 'builtin' is this repository's cases/", _on(RUN, CELL, PERF),
           action="append"),
    Option("--cell", "only cells whose id matches (glob, repeatable)", _on(CELLS, RUN, PERF), action="append"),
    Option("--runner", "run every cell with this runner (local, docker)", _on(CELLS, RUN)),
    Option("--matrix", "matrix file (default: $TRITON_MATRIX or ./matrix.toml)", _on(CELLS, RUN, CELL, REPORT, PERF),
           helps={REPORT: "the matrix whose known incompatibilities apply (default: the one in use)"}),
    Option("--jobs", "cells at once (default: as many as keep 6 workers per CPU alive)", _on(RUN),
           type=at_least_one("--jobs"), resolver=default_jobs, needs=("workers",)),
    Option("--reports", "reports folder", _on(RUN, CELL, REPORT, PERF), default="reports",
           helps={REPORT: "reports folder (reads junit/, writes compat.*)"}),
    Option("--plan", "plan.json listing the cells of the run (default: reports/plan.json)", _on(REPORT)),
    Option("--baseline", "a previous compat.json to diff the report against", _on(RUN, REPORT)),
    Option("--history", "the history store: the report adds this run to it and shows the last runs "
                        "(default: REPORTS/history)", _on(RUN, REPORT)),
    Option("--history-window", "how many runs of the history the report shows (default: 20)", _on(RUN, REPORT),
           type=at_least_one("--history-window"), default=20),
    Option("--verbose", "also a line for each not-applicable cell", _on(RUN), action="store_true", short="-v"),
    Option("--models", "a Triton model repository to load, ask and compare on every cell (repeatable; default: "
                       "matrix.toml's models); without --cases only these run", _on(RUN, CELL), action="append"),
    Option("--reference", "models mode: the cell every cell's answers are compared with (default: the oldest "
                          "release's cell of the same backend, kind, Python and env)", _on(RUN, REPORT)),
    Option("--workers", "pytest workers per cell, each with a server of its own (default: matrix.toml's "
                        "settings.workers)", _on(RUN, CELL), type=at_least_one("--workers"), resolver=default_workers),
    Option("--serial", "one case at a time, a case's models loaded one by one (the path the benchmark compares)",
           _on(CELL), action="store_true"),
    Option("--json", "a JSON list, as a CI matrix consumes it", _on(CELLS), action="store_true"),
    Option("--perf", "after the cells, measure the speed and memory of [perf]'s models on this run's cells it "
                     "names (as nox -s perf does) and add them to the report", _on(RUN), action="store_true"),
    Option("--perf-gate", "exit 1 when a release is called slower (or to use more memory) than the reference",
           _on(RUN, PERF), action="store_true"),
    # A cell's pytest worker (-p harness.incell.plugin): its cell spec is all it reads (harness.spec).
    Option("--spec", "the cell spec the cell runner wrote (reports/workers/<cell>/spec.json): the cell, its "
                     "settings, case libraries, known issues and worker plan", _on(PLUGIN)),
    Option("--worker", "which of the cell's workers this is (its server log, progress and JUnit file)", _on(PLUGIN),
           type=int, default=0),
    Option("--claims", "a folder the cell's workers claim case modules in (harness.incell.sharing)", _on(PLUGIN)),
)


def options_of(command: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if command in o.commands)


def _add(add: Callable[..., Any], option: Option, command: str) -> None:
    names = [option.flag] if option.short is None else [option.short, option.flag]
    kwargs: dict[str, Any] = {"help": option.help_for(command)}
    if option.action:
        kwargs["action"] = option.action
    if option.action != "store_true":
        kwargs["default"] = option.initial()
        if option.type is not None:
            kwargs["type"] = option.type
    add(*names, **kwargs)


def parser() -> argparse.ArgumentParser:
    """Every command's parser, from the table."""
    top = argparse.ArgumentParser(prog="python -m harness", description="Command line: "
                                  "``python -m harness cells|run|cell|report``.")
    sub = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        extra = {"prog": command.prog} if command.prog else {}
        child = sub.add_parser(command.name, help=command.help, epilog=command.epilog, **extra)
        for option in options_of(command.name):
            _add(child.add_argument, option, command.name)
    return top


def parse(argv: list[str]) -> argparse.Namespace:
    """The command, each option's value by its ``dest`` (unresolved), and ``pytest_args``: what
    follows ``--``. A bad value raises :class:`OptionError`; a usage error exits 2 as argparse does."""
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser().parse_args(argv[:cut])
    args.pytest_args = list(argv[cut + 1:])
    return args


def resolve(command: str, args: argparse.Namespace, context: Context) -> argparse.Namespace:
    """``args`` with each unset option that has a resolver filled in, each after those it ``needs``
    (``--jobs`` reads the resolved ``--workers``). Called once, by the process the user started."""
    values = dict(vars(args))
    pending = [o for o in options_of(command) if o.resolver is not None and values.get(o.dest) is None]
    while pending:
        option = next(o for o in pending if not set(o.needs) & {p.dest for p in pending})
        values[option.dest] = option.resolver(values, context)  # type: ignore[misc] - only those with one
        pending.remove(option)
    return argparse.Namespace(**values)


def to_args(command: str, values: Mapping[str, Any]) -> list[str]:
    """The argv that gives ``command`` these values (its positionals first, then ``--flag=value`` for
    each option not at its default), so that ``parse([command, *to_args(command, v)])`` reads ``v``."""
    known = {o.dest: o for o in options_of(command)}
    unknown = sorted(set(values) - set(known) - set(META))
    if unknown:
        raise ValueError(f"{command} takes no option {', '.join(unknown)}")
    argv = [str(values[o.dest]) for o in known.values() if o.positional]
    for option in known.values():
        value = values.get(option.dest, option.initial())
        if option.positional or value is None or value == option.initial():
            continue
        if option.action == "store_true":
            argv.append(option.flag)
        elif option.action == "append":
            argv += [f"{option.flag}={item}" for item in value]
        else:
            argv.append(f"{option.flag}={value}")
    return argv


def add_pytest_options(parser: Any) -> None:
    """Register a cell worker's options (the :data:`PLUGIN` ones) in pytest's ``parser``."""
    group = parser.getgroup("triton-matrix")
    for option in options_of(PLUGIN):
        _add(group.addoption, option, PLUGIN)
