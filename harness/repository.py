"""Render the case library's model templates for one cell into one model repository.

Every directory under a ``models/`` folder of a case root is a model, named by its directory. Its
``config.pbtxt`` is a :class:`string.Template`: ``${kind}`` becomes ``KIND_CPU`` or ``KIND_GPU`` for the
cell, and ``${triton}``, ``${python}``, ``${backend}``, ``${instance_kind}`` are the cell's axes (write
``$$`` for a literal dollar). Other files are copied as they are; a ``generate.py`` with a
``generate(model_dir)`` function writes generated model files (an ONNX graph, a TorchScript file). Two models with one name, a template
naming an unknown placeholder and a model folder without ``config.pbtxt`` are errors naming the file.
"""

from __future__ import annotations

import runpy
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from harness import sources
from harness.matrix import known_issues
from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.matrix import Cell

CONFIG = "config.pbtxt"
GENERATOR = "generate.py"  # optional: writes the model's files at render time
IGNORED = ("__pycache__", "*.pyc")


@dataclass(frozen=True, **KW_ONLY)
class Model:
    name: str
    source: Path


def discover(case_roots: list[Path]) -> dict[str, Model]:
    """All models of the case roots, by name; a name used twice is an error."""
    models: dict[str, Model] = {}
    for root in case_roots:
        for models_dir in sorted(Path(root).rglob("models")):
            if not models_dir.is_dir() or "__pycache__" in models_dir.parts:
                continue
            for source in sorted(p for p in models_dir.iterdir() if p.is_dir() and p.name != "__pycache__"):
                if source.name in models:
                    raise HarnessError(
                        f"model name {source.name!r} is used twice (also {models[source.name].source})",
                        where=str(source),
                        fix="rename one of the model folders",
                    )
                if not (source / CONFIG).is_file():
                    raise HarnessError(
                        f"model folder has no {CONFIG}", where=str(source), fix=f"add {CONFIG} (at least its backend)"
                    )
                models[source.name] = Model(name=source.name, source=source)
    return models


def discover_backends(case_roots: list[Path]) -> dict[str, Path]:
    """Custom backends of the case roots: every folder under a ``backends/`` folder, holding C sources."""
    found: dict[str, Path] = {}
    for root in case_roots:
        for backends_dir in sorted(Path(root).rglob("backends")):
            if not backends_dir.is_dir():
                continue
            for source in sorted(p for p in backends_dir.iterdir() if p.is_dir() and list(p.glob("*.c"))):
                if source.name in found:
                    raise HarnessError(f"backend name {source.name!r} is used twice (also {found[source.name]})",
                                       where=str(source), fix="rename one of the backend folders")
                found[source.name] = source
    return found


def build_backends(case_roots: list[Path], dest: Path, cc: str = "cc") -> dict[str, Path]:
    """Compile each custom backend into ``dest/<name>/libtriton_<name>.so`` (the server's layout).

    No link against the server library: its symbols come from the server process at load time.
    """
    import subprocess

    built: dict[str, Path] = {}
    for name, source in discover_backends(case_roots).items():
        out = dest / name
        out.mkdir(parents=True, exist_ok=True)
        cmd = [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-std=c11", f"-I{source}",
               "-o", str(out / f"libtriton_{name}.so"), *sorted(str(c) for c in source.glob("*.c"))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise HarnessError(f"custom backend does not compile: {first}", where=str(source),
                               fix="fix the C source (the command was: " + " ".join(cmd) + ")")
        built[name] = out
    return built


def variables(cell: Cell) -> dict[str, str]:
    return {
        "kind": "KIND_GPU" if cell.gpu else "KIND_CPU",
        "instance_kind": cell.instance_kind,
        "triton": cell.triton,
        "python": cell.python,
        "backend": cell.backend,
    }


def render_config(path: Path, cell: Cell) -> str:
    text = path.read_text(encoding="utf-8")
    try:
        return string.Template(text).substitute(variables(cell))
    except KeyError as exc:
        raise HarnessError(
            f"unknown placeholder ${{{exc.args[0]}}}",
            where=str(path),
            fix=f"use one of {', '.join('${' + k + '}' for k in variables(cell))}, or $$ for a dollar",
        ) from None
    except ValueError as exc:
        raise HarnessError(f"template does not render ({exc})", where=str(path), fix="write $$ for a dollar") from None


def check(case_roots: list[Path], cell: Cell) -> dict[str, Model]:
    """Compile the case files, discover and render every template in memory, and read each
    known_issues.toml: a broken library fails before anything starts."""
    sources.check(case_roots)
    for root in case_roots:
        known_issues.load(root)
    models = discover(case_roots)
    for model in models.values():
        render_config(model.source / CONFIG, cell)
    return models


def render(case_roots: list[Path], cell: Cell, dest: Path) -> dict[str, Model]:
    """Write every model of ``case_roots`` rendered for ``cell`` into the repository ``dest``."""
    models = discover(case_roots)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for model in models.values():
        target = dest / model.name
        shutil.copytree(model.source, target, ignore=shutil.ignore_patterns(*IGNORED, GENERATOR))
        (target / CONFIG).write_text(render_config(model.source / CONFIG, cell), encoding="utf-8")
        generate(model.source, target)
    return models


def generate(source: Path, target: Path) -> bool:
    """Run the model's ``generate.py`` (its ``generate(model_dir)`` writes model files, e.g. an ONNX
    graph) in this process. A generator whose package is not installed here (onnx, torch) leaves
    the model without its file: only cells of that backend load it, and they install the package."""
    script = source / GENERATOR
    if not script.exists():
        return False
    try:
        namespace = runpy.run_path(str(script))
        namespace["generate"](target)
    except ImportError:
        return False
    except Exception as exc:  # noqa: BLE001 - any error in the case's own generator, named
        raise HarnessError(f"generate() failed: {type(exc).__name__}: {exc}", where=str(script),
                           fix="fix the model generator") from None
    return True
