"""The models a python model calls through BLS, read from its source (a config declares none).

Triton loads a repository's models in no promised order, and a BLS model that asks a model not yet
loaded fails its first requests. The source is read with ``ast``, never imported: the team's code runs
only inside the server.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from harness.compat import KW_ONLY

REQUEST_CLASS = "InferenceRequest"  # pb_utils.InferenceRequest(model_name=..., ...)
DEFAULT_MODEL_FILE = "model.py"


@dataclass(frozen=True, **KW_ONLY)
class Call:
    """A model named by a string literal of the source."""

    model: str
    where: str  # "<file>:<line>"


def sources(model_folder: Path, config: dict) -> list[Path]:
    """The python files a server would run: ``<version>/<default_model_filename or model.py>``."""
    name = str(config.get("default_model_filename") or DEFAULT_MODEL_FILE)
    return sorted(p / name for p in model_folder.iterdir() if p.is_dir() and p.name.isdigit() and (p / name).is_file())


def calls(files: list[Path], known: set[str]) -> tuple[Call, ...]:
    """Models the sources name: ``InferenceRequest``'s literal ``model_name`` (a model, known or not), and
    any string literal that is the name of a model in ``known`` (a helper such as ``_call("tokenizer", …)``)."""
    found: dict[str, Call] = {}
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError):  # the server names what is wrong with it
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node.func) == REQUEST_CLASS:
                literal = _model_name_argument(node)
                if literal is not None:
                    found[literal] = Call(model=literal, where=f"{path}:{node.lineno}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
                found.setdefault(node.value, Call(model=node.value, where=f"{path}:{node.lineno}"))
    return tuple(found.values())


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _model_name_argument(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "model_name":
            return _literal(keyword.value)
    return _literal(call.args[0]) if call.args else None


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
