"""A team's Triton model repository: found, checked before anything starts, copied for the server.

Standard library only (the command line checks it). The repository is only read: the server gets a
copy inside the cell's work folder (the python backend writes ``__pycache__`` next to ``model.py``),
so the team's folder may be read-only.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.matrix import Cell
from harness.models import SAMPLES_FILE, bls, pbtxt, samples

CONFIG = "config.pbtxt"
PLATFORM_BACKENDS = {"onnxruntime_onnx": "onnxruntime", "pytorch_libtorch": "pytorch", "tensorrt_plan": "tensorrt",
                     "tensorflow_savedmodel": "tensorflow", "tensorflow_graphdef": "tensorflow"}
GPU_ONLY_BACKENDS = ("tensorrt",)
KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}


class NotAModelRepository(HarnessError):
    """--models names something that is not a Triton model repository."""


class MissingDependency(HarnessError):
    """An ensemble's step, or a BLS request's literal model_name, names a model that none of the --models
    repositories holds."""


@dataclass(frozen=True, **KW_ONLY)
class TeamModel:
    name: str
    source: Path
    config: dict[str, Any]  # config.pbtxt as read (empty when there is none: the server auto-completes)
    config_error: str | None = None  # where the harness's reader stops in a config.pbtxt it cannot read
    bls_calls: tuple[bls.Call, ...] = ()  # the models its python source names (a config declares none)

    @property
    def backend(self) -> str | None:
        if self.config.get("backend"):
            return str(self.config["backend"])
        platform = self.config.get("platform")
        return PLATFORM_BACKENDS.get(str(platform), str(platform)) if platform else None

    @property
    def samples_path(self) -> Path:
        return self.source / SAMPLES_FILE

    @property
    def config_path(self) -> Path:
        return self.source / CONFIG

    @property
    def steps(self) -> tuple[str, ...]:
        """The models an ensemble's steps run (``ensemble_scheduling { step [ { model_name } ] }``)."""
        scheduling = self.config.get("ensemble_scheduling") or {}
        steps = scheduling.get("step", []) if isinstance(scheduling, dict) else []
        return tuple(dict.fromkeys(str(s["model_name"]) for s in steps if isinstance(s, dict) and "model_name" in s))

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The models to load before this one: its ensemble steps and the models its BLS code calls."""
        return tuple(dict.fromkeys((*self.steps, *(c.model for c in self.bls_calls))))


def discover(repositories: list[Path]) -> dict[str, TeamModel]:
    """The models of the repositories, by name, each config read and each samples.json checked."""
    models: dict[str, TeamModel] = {}
    for repo in repositories:
        repo = Path(repo)
        if not repo.is_dir():
            raise NotAModelRepository("not a folder", where=str(repo), fix="pass a Triton model repository folder")
        found = 0
        for folder in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
            has_version = any(v.is_dir() and v.name.isdigit() for v in folder.iterdir())
            if not (folder / CONFIG).is_file() and not has_version:
                raise NotAModelRepository(f"folder {folder.name!r} has neither {CONFIG} nor a version folder",
                                          where=str(folder), fix="pass the repository folder (it holds one folder per model)")
            if folder.name in models:
                raise NotAModelRepository(f"model {folder.name!r} is also in {models[folder.name].source.parent}",
                                          where=str(folder), fix="give each model one name across --models folders")
            config, config_error = {}, None
            if (folder / CONFIG).is_file():
                try:
                    config = pbtxt.parse((folder / CONFIG).read_text(encoding="utf-8"), str(folder / CONFIG))
                except pbtxt.ConfigSyntaxError as exc:  # its loads check names Triton's error beside this one
                    config_error = exc.reason
            model = TeamModel(name=folder.name, source=folder, config=config, config_error=config_error)
            if model.samples_path.is_file():
                samples.check_against(samples.load(model.samples_path), config, str(model.samples_path))
            models[folder.name] = model
            found += 1
        if not found:
            raise NotAModelRepository("holds no model folder", where=str(repo),
                                      fix="pass a Triton model repository (<repo>/<model>/config.pbtxt, <model>/1/...)")
    for name, model in models.items():
        if model.backend in (None, "python"):
            found = bls.calls(bls.sources(model.source, model.config), known=set(models) - {name})
            models[name] = dataclasses.replace(model, bls_calls=tuple(c for c in found if c.model != name))
    for model in models.values():
        for needed in model.steps:
            if needed not in models:
                raise MissingDependency(f"ensemble {model.name!r} runs model {needed!r}, which is in none of the "
                                        f"--models repositories", where=str(model.config_path),
                                        fix=f"add {needed!r}'s folder to a --models repository")
        for call in model.bls_calls:
            if call.model not in models:
                raise MissingDependency(f"model {model.name!r} asks model {call.model!r} through BLS, which is in "
                                        f"none of the --models repositories", where=call.where,
                                        fix=f"add {call.model!r}'s folder to a --models repository")
    return models


def load_order(models: dict[str, TeamModel]) -> list[str]:
    """The model names, each after the models its ensemble steps run or its BLS code calls (else by name):
    the loads check loads them in this order, so an ensemble finds its steps loaded with the cell's
    instance kind and a BLS model's first request finds the model it asks."""
    order: dict[str, None] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name in path or name not in models:  # a cycle is Triton's to refuse
            return
        for needed in models[name].dependencies:
            visit(needed, (*path, name))
        order[name] = None

    for name in sorted(models):
        visit(name, ())
    return list(order)


def install(models: dict[str, TeamModel], dest: Path) -> None:
    """Copy the models into the server's repository ``dest`` (which may hold the case library's)."""
    dest.mkdir(parents=True, exist_ok=True)
    for model in models.values():
        target = dest / model.name
        if target.exists():
            raise HarnessError(f"model {model.name!r} is also a model of the case library", where=str(model.source),
                               fix="rename the model, or run it without --cases")
        shutil.copytree(model.source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def not_applicable(model: TeamModel, cell: Cell) -> str | None:
    """Why the model cannot run on the cell, or None."""
    backend = model.backend
    if backend in GPU_ONLY_BACKENDS and not cell.gpu:
        return f"the model's backend {backend} runs on GPUs only; cell {cell.id} is a cpu cell"
    if backend is not None and backend not in ("ensemble", cell.backend):
        return f"the model's backend is {backend}; cell {cell.id} runs the {cell.backend} backend"
    return None


def override(model: TeamModel, cell: Cell) -> tuple[str | None, str]:
    """The config override (JSON) that makes the instance kind the cell's, and a note; (None, "") when
    the config already fits (or there is no config.pbtxt to override)."""
    kind = KINDS[cell.instance_kind]
    if model.backend == "ensemble":  # no instances of its own: its steps run on theirs
        return None, ""
    groups = model.config.get("instance_group") or []
    other = sorted({str(g.get("kind", "KIND_AUTO")) for g in groups} - {kind, "KIND_MODEL", "KIND_AUTO"})
    if not model.config or (not other and (groups or not cell.gpu)):
        return None, ""
    config = json.loads(json.dumps(model.config))
    config["instance_group"] = [dict(g, kind=kind) for g in groups] or [{"kind": kind}]
    config.setdefault("name", model.name)
    note = f"instance_group kind {'/'.join(other) or 'default'} overridden to {kind} for the cell"
    return json.dumps(config), note
