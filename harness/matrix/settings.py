"""Typed settings of matrix.toml (``[settings]``, ``[docker]``) and the validator every TOML reader shares.

Settings are read by key once, here, where the file is validated; everything else reads attributes of
frozen dataclasses. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.compat import KW_ONLY
from harness.deadlines import Budget, NestingError
from harness.errors import HarnessError

DOCKER_IMAGES = ("offline", "release")
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


@dataclass(frozen=True, **KW_ONLY)
class DockerSettings:
    image: str = "offline"  # "offline": built here from the wheel, no registry; "release": FROM the NGC image
    shm_size: str = "256m"  # /dev/shm of the container: the python backend's tensors travel through it


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
    v.keys(raw, ("image", "shm_size"), "docker")
    for k, value in raw.items():
        v.type(value, str, f"docker.{k}")
    docker = DockerSettings(**raw)
    if docker.image not in DOCKER_IMAGES:
        v.fail("docker.image", f"unknown image kind {docker.image!r}", f"use one of: {', '.join(DOCKER_IMAGES)}")
    if not re.match(r"^\d+[kmg]?$", docker.shm_size):
        v.fail("docker.shm_size", f"{docker.shm_size!r} is not a size", 'write e.g. "256m" or "1g"')
    return docker


class Validator:
    """Raises one-line errors that name the file and the key."""

    def __init__(self, shown: str) -> None:
        self.shown = shown

    def fail(self, key: str, problem: str, fix: str) -> None:
        where = f"{self.shown}: {key}" if key else self.shown
        raise HarnessError(problem, where=where, fix=fix)

    def type(self, value: Any, expected: type, key: str) -> None:
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            names = {str: "a string", list: "a list", dict: "a table", float: "a number"}
            self.fail(key, f"expected {names.get(expected, expected.__name__)}, got {_toml_type(value)}", "fix its type")

    def keys(self, table: dict[str, Any], allowed: tuple[str, ...], key: str) -> None:
        for k in table:
            if k not in allowed:
                self.fail(f"{key}.{k}" if key else k, f"unknown key {k!r}", f"use one of: {', '.join(allowed)}")

    def strings(self, value: Any, key: str) -> list[str]:
        self.type(value, list, key)
        for item in value:
            self.type(item, str, key)
        return list(value)

    def list_of_tables(self, value: Any, key: str) -> list[dict[str, Any]]:
        self.type(value, list, key)
        for i, item in enumerate(value):
            self.type(item, dict, f"{key}[{i}]")
        return value


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
