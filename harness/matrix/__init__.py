"""Read ``matrix.toml``, validate it and expand it into cells.

Standard library only: a CI plan job runs ``python -m harness cells --json`` with a bare Python >= 3.11,
and the noxfile imports this module to name one session per cell.

The file has axes (``[axes]``), one table per Triton release (``[releases."24.10"]``), optional model
environments (``[envs.<name>]``), ``exclude``/``include`` lists with GitHub Actions matrix semantics,
a ``runner`` and ``[settings]``. Every mistake is one :class:`HarnessError` naming the file and the key.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from harness import PROJECT_ROOT
from harness.compat import KW_ONLY, tomllib
from harness.errors import HarnessError
from harness.matrix.known_issues import KnownIssue, parse_known_failure
from harness.matrix.settings import (
    RELEASE_RE,
    DockerSettings,
    PerfSettings,
    Settings,
    Validator,
    parse_docker,
    parse_perf,
    parse_settings,
    parse_tolerance,
    release_key,
    shown_path,
)

AXES = ("triton", "backend", "instance_kind", "python", "env")
REQUIRED_AXES = ("triton", "backend", "instance_kind", "python")
BACKENDS = ("python", "onnxruntime", "pytorch", "tensorrt", "custom")
INSTANCE_KINDS = ("cpu", "gpu")
RUNNERS = ("local", "docker")
TOP_LEVEL_KEYS = ("runner", "axes", "exclude", "include", "releases", "envs", "settings", "known_failures",
                  "docker", "models", "tolerance", "perf")
RELEASE_KEYS = {"server_version": str, "pytriton": str, "image": str, "image_python": str, "pythons": list}
DEFAULT_ENV_PACKAGES = ("numpy<2",)  # what nvidia-pytriton itself pins; name an env axis for others
PYTHON_RE = re.compile(r"^3\.\d{1,2}$")

DEFAULT_MATRIX = PROJECT_ROOT / "matrix.toml"
MATRIX_ENV = "TRITON_MATRIX"
T = TypeVar("T")


@dataclass(frozen=True, **KW_ONLY)
class Release:
    """What is needed to get one Triton release: its server version, image and local wheel."""

    name: str
    server_version: str
    pytriton: str | None = None
    image: str | None = None
    image_python: str | None = None
    pythons: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[int, int]:
        """Sort key: ``24.03`` < ``24.10``."""
        return release_key(self.name)

    def at_least(self, other: str) -> bool:
        """``release.at_least("24.03")``: this release is ``other`` or newer (the cases' one comparison)."""
        return self.key >= _checked_key(other)

    def at_most(self, other: str) -> bool:
        """``release.at_most("24.07")``: this release is ``other`` or older."""
        return self.key <= _checked_key(other)

    def pick(self, by_release: Mapping[str, T]) -> T | None:
        """From ``{"default": a, "24.07": b}`` the value of the newest key at or below this release, else
        ``default`` (None without one): an expectation whose wording changed with a release."""
        keys = [k for k in by_release if k != "default"]
        for k in keys:
            _checked_key(k)
        chosen = [k for k in keys if release_key(k) <= self.key]
        return by_release[max(chosen, key=release_key)] if chosen else by_release.get("default")

    def to_dict(self) -> dict[str, Any]:
        """JSON's types (the cell spec, ``harness.spec``, carries the release to the workers)."""
        return {"name": self.name, "server_version": self.server_version, "pytriton": self.pytriton,
                "image": self.image, "image_python": self.image_python, "pythons": list(self.pythons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Release:
        return cls(**{**data, "pythons": tuple(data.get("pythons", ()))})


def _checked_key(name: str) -> tuple[int, int]:
    """A case's release string as a sort key; anything but YY.MM is the case's mistake, said as such."""
    if not isinstance(name, str) or not RELEASE_RE.match(name):
        raise ValueError(f"{name!r} is not a Triton release or 'default'; write it as YY.MM, e.g. '24.03'")
    return release_key(name)


@dataclass(frozen=True, **KW_ONLY)
class ModelEnv:
    """A named set of packages installed into a cell's venv, which the python backend's models use."""

    name: str
    packages: tuple[str, ...] = ()


@dataclass(frozen=True, **KW_ONLY)
class Cell:
    """One combination of the axes; its id names the nox session, JUnit suite, log and report column."""

    triton: str
    backend: str
    instance_kind: str
    python: str
    env: str | None = None
    runner: str = "local"

    @property
    def id(self) -> str:
        parts = [self.triton, self.backend, self.instance_kind, f"py{self.python}"]
        if self.env:
            parts.append(self.env)
        if self.runner != "local":
            parts.append(self.runner)
        return "-".join(parts)

    @property
    def gpu(self) -> bool:
        return self.instance_kind == "gpu"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "triton": self.triton,
            "backend": self.backend,
            "instance_kind": self.instance_kind,
            "python": self.python,
            "env": self.env,
            "runner": self.runner,
            "gpu": self.gpu,
        }

    def to_dict(self) -> dict[str, Any]:
        """The axes alone (no derived id or gpu): what :meth:`from_dict` reads back."""
        return {"triton": self.triton, "backend": self.backend, "instance_kind": self.instance_kind,
                "python": self.python, "env": self.env, "runner": self.runner}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        return cls(**data)


@dataclass(frozen=True, **KW_ONLY)
class Matrix:
    """A validated matrix file; :meth:`cells` expands it."""

    path: Path
    axes: dict[str, tuple[str, ...]]
    releases: dict[str, Release]
    envs: dict[str, ModelEnv] = field(default_factory=dict)
    runner: str = "local"
    exclude: tuple[dict[str, str], ...] = ()
    include: tuple[dict[str, str], ...] = ()
    settings: Settings = field(default_factory=Settings)
    known_failures: tuple[KnownIssue, ...] = ()  # [[known_failures]], as the issues they declare
    docker: DockerSettings = field(default_factory=DockerSettings)
    models: tuple[Path, ...] = ()  # team model repositories (relative paths: to the matrix file's folder)
    tolerance: dict[str, float] = field(default_factory=dict)  # model name -> allowed absolute difference
    perf: PerfSettings = field(default_factory=PerfSettings)  # [perf]: what nox -s perf measures

    def cells(self, *, runner: str | None = None) -> list[Cell]:
        """Expand the axes, drop excluded combinations, then apply includes (GitHub Actions order)."""
        names = [a for a in AXES if a in self.axes]
        combos = [dict(zip(names, values)) for values in itertools.product(*(self.axes[a] for a in names))]
        combos = [c for c in combos if not any(_matches(c, ex) for ex in self.exclude)]
        originals = [dict(c) for c in combos]
        for i, entry in enumerate(self.include):
            axis_items = {k: v for k, v in entry.items() if k in AXES}
            extra = {k: v for k, v in entry.items() if k not in AXES}
            merged = False
            for combo, original in zip(combos, originals):
                if all(original.get(k, v) == v for k, v in axis_items.items()):
                    combo.update(axis_items)
                    combo.update(extra)
                    merged = True
            if not merged:
                missing = [a for a in REQUIRED_AXES if a not in entry]
                if missing:
                    raise HarnessError(
                        f"adds a new cell but does not name {', '.join(missing)}",
                        where=f"{shown_path(self.path)}: include[{i}]",
                        fix="name every axis for a cell that matches no other",
                    )
                combos.append(dict(entry))
                originals.append(dict(entry))
        cells: list[Cell] = []
        seen: set[str] = set()
        for combo in combos:
            cell = Cell(
                triton=combo["triton"],
                backend=combo["backend"],
                instance_kind=combo["instance_kind"],
                python=combo["python"],
                env=combo.get("env"),
                runner=runner or combo.get("runner", self.runner),
            )
            if cell.id not in seen:
                seen.add(cell.id)
                cells.append(cell)
        return cells

    def select(self, patterns: list[str] | None = None, *, runner: str | None = None) -> list[Cell]:
        """The cells whose id matches any of the glob ``patterns`` (all cells when none are given)."""
        if runner is not None and runner not in RUNNERS:
            raise HarnessError(
                f"unknown runner {runner!r}", where="--runner", fix=f"use one of: {', '.join(RUNNERS)}"
            )
        cells = self.cells(runner=runner)
        if not patterns:
            return cells
        chosen = [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
        if not chosen:
            raise HarnessError(
                f"no cell matches {' '.join(patterns)!r}",
                where=str(self.path),
                fix="list the cells with 'python -m harness cells'",
            )
        return chosen

    def cell(self, cell_id: str) -> Cell:
        cells = self.cells()
        for cell in cells + [replace(c, runner=r) for c in cells for r in RUNNERS]:
            if cell.id == cell_id:
                return cell
        raise HarnessError(
            f"no cell {cell_id!r}", where=str(self.path), fix="list the cells with 'python -m harness cells'"
        )

    def release(self, name: str) -> Release:
        return self.releases[name]

    def env_packages(self, cell: Cell) -> tuple[str, ...]:
        """The model environment's packages; without an env axis, the wheels' own pin (numpy<2)."""
        return self.envs[cell.env].packages if cell.env else DEFAULT_ENV_PACKAGES


def _matches(combo: dict[str, str], pattern: dict[str, str]) -> bool:
    return all(combo.get(k) == v for k, v in pattern.items())


def matrix_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The matrix file to use: the argument, else ``$TRITON_MATRIX``, else the repository's own."""
    if path:
        return Path(path)
    return Path(os.environ.get(MATRIX_ENV) or DEFAULT_MATRIX)


def load(path: str | os.PathLike[str] | None = None) -> Matrix:
    """Read and validate a matrix file."""
    path = matrix_path(path)
    shown = shown_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError("file not found", where=shown, fix="pass an existing matrix file") from None
    except OSError as exc:
        raise HarnessError(f"cannot read: {exc.strerror}", where=shown) from None
    except UnicodeDecodeError:
        raise HarnessError("not UTF-8 text", where=shown, fix="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"not valid TOML ({exc})", where=shown, fix="fix the TOML syntax") from None
    return parse(data, path)


def parse(data: dict[str, Any], path: Path) -> Matrix:
    """Validate already-parsed TOML; ``path`` is only used in messages."""
    v = Validator(shown_path(path))
    v.keys(data, TOP_LEVEL_KEYS, "")

    runner = data.get("runner", "local")
    v.type(runner, str, "runner")
    if runner not in RUNNERS:
        v.fail("runner", f"unknown runner {runner!r}", f"use one of: {', '.join(RUNNERS)}")

    releases = _parse_releases(v, data.get("releases"))
    envs = _parse_envs(v, data.get("envs", {}))
    axes = _parse_axes(v, data.get("axes"), releases, envs)
    known = {**{a: set(axes.get(a, ())) for a in AXES}}

    exclude = tuple(
        _parse_rule(v, entry, f"exclude[{i}]", known, releases, envs, new_cell=False)
        for i, entry in enumerate(v.list_of_tables(data.get("exclude", []), "exclude"))
    )
    include = tuple(
        _parse_rule(v, entry, f"include[{i}]", known, releases, envs, new_cell=True)
        for i, entry in enumerate(v.list_of_tables(data.get("include", []), "include"))
    )
    settings = parse_settings(v, data.get("settings", {}))
    docker = parse_docker(v, data.get("docker", {}))
    known_failures = tuple(
        parse_known_failure(v, entry, i)
        for i, entry in enumerate(v.list_of_tables(data.get("known_failures", []), "known_failures"))
    )
    models = tuple((path.parent / m) for m in v.strings(data.get("models", []), "models"))
    tolerance = parse_tolerance(v, data.get("tolerance", {}))
    perf = parse_perf(v, data.get("perf", {}), tuple(releases))
    matrix = Matrix(path=path, models=models, tolerance=tolerance, perf=perf, axes=axes, releases=releases, envs=envs,
                    runner=runner, exclude=exclude, include=include, settings=settings,
                    known_failures=known_failures, docker=docker)
    cells = matrix.cells()
    if not cells:
        v.fail("exclude", "the excludes remove every cell", "remove an exclude or add axis values")
    for cell in cells:
        if cell.env is None and "env" in axes:
            v.fail("include", f"cell {cell.id} has no env", "name the env axis in every include")
    return matrix


def _parse_releases(v: Validator, raw: Any) -> dict[str, Release]:
    if raw is None:
        v.fail("releases", "no release tables", 'add one [releases."24.10"] table per Triton release')
    v.type(raw, dict, "releases")
    releases = {}
    for name, table in raw.items():
        key = f'releases."{name}"'
        if not RELEASE_RE.match(name):
            v.fail(key, f"release name {name!r} is not YY.MM", 'name releases as NGC does, e.g. "24.10"')
        v.type(table, dict, key)
        v.keys(table, tuple(RELEASE_KEYS), key)
        if "server_version" not in table:
            v.fail(key, "missing server_version", 'add server_version = "2.51.0" (what /v2 reports)')
        for k, t in RELEASE_KEYS.items():
            if k in table:
                v.type(table[k], t, f"{key}.{k}")
        pythons = tuple(v.strings(table.get("pythons", []), f"{key}.pythons"))
        for py in pythons:
            if not PYTHON_RE.match(py):
                v.fail(f"{key}.pythons", f"{py!r} is not a Python version", 'write versions as "3.11"')
        releases[name] = Release(
            name=name,
            server_version=table["server_version"],
            pytriton=table.get("pytriton"),
            image=table.get("image"),
            image_python=table.get("image_python"),
            pythons=pythons,
        )
    return releases


def _parse_envs(v: Validator, raw: Any) -> dict[str, ModelEnv]:
    v.type(raw, dict, "envs")
    envs = {}
    for name, table in raw.items():
        key = f"envs.{name}"
        if not re.match(r"^[A-Za-z0-9_.]+$", name):
            v.fail(key, f"env name {name!r} may only hold letters, digits, '_' and '.'", "rename it")
        v.type(table, dict, key)
        v.keys(table, ("packages",), key)
        envs[name] = ModelEnv(name=name, packages=tuple(v.strings(table.get("packages", []), f"{key}.packages")))
    return envs


def _parse_axes(
    v: Validator, raw: Any, releases: dict[str, Release], envs: dict[str, ModelEnv]
) -> dict[str, tuple[str, ...]]:
    if raw is None:
        v.fail("axes", "no [axes] table", "add [axes] with triton, backend, instance_kind and python lists")
    v.type(raw, dict, "axes")
    v.keys(raw, AXES, "axes")
    axes: dict[str, tuple[str, ...]] = {}
    for axis in AXES:
        if axis not in raw:
            if axis in REQUIRED_AXES:
                v.fail(f"axes.{axis}", "missing axis", f"add {axis} = [...] to [axes]")
            continue
        values = v.strings(raw[axis], f"axes.{axis}")
        if not values:
            v.fail(f"axes.{axis}", "empty axis", "give it at least one value")
        dupes = sorted({x for x in values if values.count(x) > 1})
        if dupes:
            v.fail(f"axes.{axis}", f"duplicate value {dupes[0]!r}", "list each value once")
        for value in values:
            _check_value(v, f"axes.{axis}", axis, value, releases, envs)
        axes[axis] = tuple(values)
    return axes


def _check_value(
    v: Validator, key: str, axis: str, value: str, releases: dict[str, Release], envs: dict[str, ModelEnv]
) -> None:
    if axis == "triton" and value not in releases:
        v.fail(key, f"release {value!r} has no table", f'add [releases."{value}"] with its server_version')
    if axis == "backend" and value not in BACKENDS:
        v.fail(key, f"unknown backend {value!r}", f"use one of: {', '.join(BACKENDS)}")
    if axis == "instance_kind" and value not in INSTANCE_KINDS:
        v.fail(key, f"unknown instance kind {value!r}", f"use one of: {', '.join(INSTANCE_KINDS)}")
    if axis == "python" and not PYTHON_RE.match(value):
        v.fail(key, f"{value!r} is not a Python version", 'write versions as "3.11"')
    if axis == "env" and value not in envs:
        v.fail(key, f"env {value!r} has no table", f"add [envs.{value}] with its packages")


def _parse_rule(
    v: Validator,
    entry: dict[str, Any],
    key: str,
    known: dict[str, set[str]],
    releases: dict[str, Release],
    envs: dict[str, ModelEnv],
    *,
    new_cell: bool,
) -> dict[str, str]:
    allowed = AXES + (("runner",) if new_cell else ())
    v.keys(entry, allowed, key)
    if not entry:
        v.fail(key, "empty entry", "name at least one axis")
    rule: dict[str, str] = {}
    for axis, value in entry.items():
        v.type(value, str, f"{key}.{axis}")
        if axis == "runner":
            if value not in RUNNERS:
                v.fail(f"{key}.runner", f"unknown runner {value!r}", f"use one of: {', '.join(RUNNERS)}")
        elif new_cell:
            _check_value(v, f"{key}.{axis}", axis, value, releases, envs)
        elif value not in known[axis]:
            shown = ", ".join(sorted(known[axis])) or "none"
            v.fail(f"{key}.{axis}", f"{value!r} is not a value of axis {axis}", f"use one of: {shown}")
        rule[axis] = value
    return rule
