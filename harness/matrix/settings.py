"""Typed settings of matrix.toml (``[settings]``, ``[docker]``) and the validator every TOML reader shares.

Settings are read by key once, here, where the file is validated; everything else reads attributes of
frozen dataclasses. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from harness.compat import KW_ONLY
from harness.deadlines import Budget, NestingError
from harness.errors import HarnessError

DOCKER_IMAGES = ("offline", "release")
SIZES = ("shm_size", "tmp_size", "memory")  # [docker] keys that are sizes, as Docker writes them
SIZE_RE = re.compile(r"^(\d+)([kmg]?)$")
MIN_PIDS = 16
COUNTS = ("workers",)  # settings that are counts, not seconds
RELEASE_RE = re.compile(r"^\d{2}\.\d{2}$")  # a Triton release: YY.MM


def release_key(name: str) -> tuple[int, int]:
    """``24.03`` < ``24.10``: a release name (already checked against RELEASE_RE) as a sort key."""
    year, month = name.split(".")
    return int(year), int(month)


@dataclass(frozen=True, **KW_ONLY)
class Settings:
    """Seconds (each wait of a run is bounded by one of these), and how many workers a cell runs.

    The timeouts are deadlines judged by progress (``harness.deadlines``): a wait whose server and stubs
    still move is given up to three times as long. They nest: load < case < cell.
    """

    start_timeout: float = 60.0  # until the server must answer ready
    load_timeout: float = 20.0  # one model load or unload, before the server is judged hung
    case_timeout: float = 60.0  # one case: the watchdog ends what it waits on at this deadline
    stop_timeout: float = 10.0  # a graceful server stop, before SIGKILL
    cell_timeout: float = 1800.0  # a whole cell: what has not finished by then is timed out
    workers: int = 4  # pytest workers per cell, each with a server of its own (harness.run.workers)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def budget(self, case_timeout: float | None = None) -> Budget:
        """The cell's deadlines, innermost first (a case's own deadline where it declares one)."""
        return Budget(load=self.load_timeout, case=case_timeout or self.case_timeout, cell=self.cell_timeout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        return cls(**data)


@dataclass(frozen=True, **KW_ONLY)
class DockerSettings:
    """The container of a docker cell's server: which image, and the limits of its hardened profile
    (``harness.servers.docker``). The defaults fit one server of a cell: a cell runs ``workers`` of them."""

    image: str = "offline"  # "offline": built here from the wheel, no registry; "release": FROM the NGC image
    shm_size: str = "256m"  # /dev/shm of the container: the python backend's tensors travel through it
    tmp_size: str = "1g"  # the tmpfs /tmp (exec allowed: stubs, unpacked environments); counts as memory
    memory: str = "4g"  # the container's memory limit, swap included (/dev/shm and /tmp count against it)
    cpus: float = 2.0  # CPUs the container may use (--cpus)
    pids_limit: int = 1024  # processes and threads of the container (tritonserver's threads, the stubs)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DockerSettings:
        return cls(**data)


PERF_METRICS = ("throughput", "p50", "p90", "p99", "start", "load", "rss", "rss_growth")  # [perf] thresholds' keys
PERF_PROTOCOLS = ("http", "grpc")
PERF_ABSOLUTE = "rss_growth"  # near zero: called on its difference, in MB per 1,000 requests, not on a ratio
PERF_DEFAULT_THRESHOLDS = {PERF_ABSOLUTE: 1.0}  # a leak of 1 KB per request; the rest: 10%


@dataclass(frozen=True, **KW_ONLY)
class PerfSettings:
    """``[perf]``: what ``nox -s perf`` measures, how often, and when a difference is called.

    Defaults: the python ``add_sub`` of cases/ on each release's python py3.11 cell, at concurrency 1
    and 4, 5 interleaved rounds, each metric called beyond 10%, the oldest release measured as reference.
    """

    models: tuple[str, ...] = ("add_sub",)  # models of the case library (cases/*/models)
    cells: tuple[str, ...] = ("*-python-cpu-py3.11-*",)  # cell id globs
    concurrency: tuple[int, ...] = (1, 4)
    rounds: int = 5  # interleaved rounds: A B C, A B C, ...
    requests: int = 500  # requests perf_analyzer counts per concurrency level in one round
    protocol: str = "http"
    reference: str | None = None  # the release the others are compared with; None: the oldest measured
    thresholds: dict[str, float] = field(default_factory=dict)  # metric -> fraction (0.1 = 10%); the rest 0.1

    def threshold(self, metric: str) -> float:
        return self.thresholds.get(metric, PERF_DEFAULT_THRESHOLDS.get(metric, 0.10))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PERF_MIN_ROUNDS = 5  # fewer rounds make the bootstrap's interval too coarse to call anything


def parse_perf(v: Validator, raw: Any, releases: tuple[str, ...]) -> PerfSettings:
    v.type(raw, dict, "perf")
    v.keys(raw, PerfSettings.names(), "perf")
    found: dict[str, Any] = {}
    for key in ("models", "cells"):
        if key in raw:
            found[key] = v.string_list(raw[key], f"perf.{key}")
    if "concurrency" in raw:
        levels = raw["concurrency"]
        if not isinstance(levels, list) or not levels or not all(_whole(x, 1) for x in levels):
            v.fail("perf.concurrency", f"expected a list of whole numbers of at least 1, got {levels!r}",
                   "write e.g. concurrency = [1, 4]")
        found["concurrency"] = tuple(sorted(set(levels)))
    for key, least in (("rounds", PERF_MIN_ROUNDS), ("requests", 10)):
        if key in raw:
            if not _whole(raw[key], least):
                v.fail(f"perf.{key}", f"expected a whole number of at least {least}, got {raw[key]!r}",
                       f"write e.g. {key} = {getattr(PerfSettings, key)}")
            found[key] = raw[key]
    if "protocol" in raw:
        found["protocol"] = v.choice(v.text(raw["protocol"], "perf.protocol"), PERF_PROTOCOLS, "perf.protocol")
    if "reference" in raw:
        found["reference"] = v.choice(v.release(raw["reference"], "perf.reference"), releases, "perf.reference")
    thresholds = raw.get("thresholds", {})
    v.type(thresholds, dict, "perf.thresholds")
    v.keys(thresholds, PERF_METRICS, "perf.thresholds")
    for metric, value in thresholds.items():
        if metric == PERF_ABSOLUTE:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                v.fail(f"perf.thresholds.{metric}", f"expected a positive number of MB per 1,000 requests, got "
                       f"{value!r}", f"write e.g. {metric} = 1.0")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            v.fail(f"perf.thresholds.{metric}", f"expected a fraction between 0 and 1, got {value!r}",
                   f"write e.g. {metric} = 0.1 (10%)")
    return PerfSettings(**found, thresholds={k: float(x) for k, x in thresholds.items()})


def _whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def parse_settings(v: Validator, raw: Any) -> Settings:
    v.type(raw, dict, "settings")
    v.keys(raw, Settings.names(), "settings")
    for k, value in raw.items():
        if k in COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                v.fail(f"settings.{k}", f"expected a whole number of at least 1, got {value!r}", "write e.g. 4")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            v.fail(f"settings.{k}", f"expected a positive number of seconds, got {value!r}", "write e.g. 60")
    settings = Settings(**{k: value if k in COUNTS else float(value) for k, value in raw.items()})
    try:
        settings.budget().check()
    except NestingError as exc:
        v.fail("settings", str(exc), "keep load_timeout < case_timeout and the case's 3x cap well inside cell_timeout")
    return settings


def parse_tolerance(v: Validator, raw: Any) -> dict[str, float]:
    """``[tolerance]``: model name -> the absolute difference its answers may have (models mode)."""
    v.type(raw, dict, "tolerance")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            v.fail(f"tolerance.{name}", f"expected a non-negative number, got {value!r}", "write e.g. 1e-3")
    return {name: float(value) for name, value in raw.items()}


def parse_docker(v: Validator, raw: Any) -> DockerSettings:
    v.type(raw, dict, "docker")
    v.keys(raw, DockerSettings.names(), "docker")
    for k in SIZES:
        if k in raw:
            v.type(raw[k], str, f"docker.{k}", fix='write e.g. "256m" or "1g"')
            if not SIZE_RE.match(raw[k]):
                v.fail(f"docker.{k}", f"{raw[k]!r} is not a size", 'write e.g. "256m" or "1g"')
    if "image" in raw:
        v.type(raw["image"], str, "docker.image")
        v.choice(raw["image"], DOCKER_IMAGES, "docker.image")
    cpus = raw.get("cpus", DockerSettings.cpus)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        v.fail("docker.cpus", f"expected a positive number of CPUs, got {cpus!r}", "write e.g. 2 or 1.5")
    pids = raw.get("pids_limit", DockerSettings.pids_limit)
    if isinstance(pids, bool) or not isinstance(pids, int) or pids < MIN_PIDS:
        v.fail("docker.pids_limit", f"expected a whole number of at least {MIN_PIDS}, got {pids!r}",
               "write e.g. 1024 (tritonserver alone runs dozens of threads)")
    docker = DockerSettings(**{**raw, "cpus": float(cpus)})
    if size_bytes(docker.shm_size) + size_bytes(docker.tmp_size) >= size_bytes(docker.memory):
        v.fail("docker.memory", f"{docker.memory} leaves nothing beside shm_size {docker.shm_size} and tmp_size "
               f"{docker.tmp_size} (both count against it)", "raise memory or lower shm_size/tmp_size")
    return docker


def size_bytes(size: str) -> int:
    """``"256m"`` -> bytes (Docker's units: powers of 1024); the size is already checked by SIZE_RE."""
    number, unit = SIZE_RE.match(size).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** "bkmg".index(unit or "b")


class Validator:
    """Raises one-line errors that name the file and the key: a :class:`HarnessError`, or the reader's own
    kind of it (``error``), so that callers tell a broken matrix from a broken case library by type."""

    def __init__(self, shown: str, error: type[HarnessError] = HarnessError) -> None:
        self.shown = shown
        self.error = error

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        where = f"{self.shown}: {key}" if key else self.shown
        raise self.error(problem, where=where, fix=fix)

    def type(self, value: Any, expected: type, key: str, fix: str = "fix its type") -> None:
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            names = {str: "a string", list: "a list", dict: "a table", float: "a number", bool: "true or false"}
            self.fail(key, f"expected {names.get(expected, expected.__name__)}, got {_toml_type(value)}", fix)

    def keys(self, table: dict[str, Any], allowed: tuple[str, ...], key: str, fix: str | None = None) -> None:
        for k in table:
            if k not in allowed:
                self.fail(f"{key}.{k}" if key else k, f"unknown key {k!r}", fix or f"use one of: {', '.join(allowed)}")

    def require(self, table: dict[str, Any], required: tuple[str, ...], key: str, fix: str) -> None:
        for k in required:
            if k not in table:
                self.fail(key, f"missing {k}", fix)

    def strings(self, value: Any, key: str) -> list[str]:
        self.type(value, list, key)
        for item in value:
            self.type(item, str, key)
        return list(value)

    def text(self, value: Any, key: str) -> str:
        """A string with something in it."""
        if not isinstance(value, str) or not value.strip():
            shown = "an empty string" if isinstance(value, str) else _toml_type(value)
            self.fail(key, f"expected a non-empty string, got {shown}", f'write {_leaf(key)} = "..."')
        return value

    def string_list(self, value: Any, key: str, *, may_be_empty: bool = False) -> tuple[str, ...]:
        """One string or a list of them (globs, fragments), each non-empty: ``cases = "x"`` is ``["x"]``."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            bad = _toml_type(items) if not isinstance(items, list) else \
                next(f"a list holding {'an empty string' if i == '' else _toml_type(i)}" for i in items
                     if not (isinstance(i, str) and i))
            self.fail(key, f"expected a string or a list of strings, got {bad}", f'write {_leaf(key)} = ["..."]')
        if not items and not may_be_empty:
            self.fail(key, "empty list", f"name at least one ({_leaf(key)} = [\"*\"] for all)")
        return tuple(items)

    def choice(self, value: str, allowed: tuple[str, ...], key: str) -> str:
        if value not in allowed:
            self.fail(key, f"unknown {_leaf(key)} {value!r}", f"use one of: {', '.join(allowed)}")
        return value

    def release(self, value: Any, key: str) -> str:
        """A Triton release name, YY.MM."""
        if not RELEASE_RE.match(self.text(value, key)):
            self.fail(key, f"{value!r} is not a Triton release", "write it as YY.MM, e.g. '24.07'")
        return value

    def list_of_tables(self, value: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            self.fail(key, f"expected an array of tables, got {_toml_type(value)}", f"write each entry as [[{key}]]")
        for i, item in enumerate(value):
            self.type(item, dict, f"{key}[{i}]")
        return value


def _leaf(key: str) -> str:
    """``issue[0].cases`` -> ``cases``: the key as the user writes it in its table."""
    return key.rpartition(".")[2]


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
