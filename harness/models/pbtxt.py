"""A small reader of protobuf text format, enough for Triton's ``config.pbtxt``.

Standard library only: the command line checks samples against a model's inputs before anything
starts, and the cell turns the config into the JSON of a load's config override. Repeated fields
become lists; map fields (``key``/``value`` entries, e.g. ``parameters``) become dicts, as in the
JSON form the server takes.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import HarnessError

_TOKEN = re.compile(r"""\s+|\#[^\n]*|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([{}\[\]:,;<>])|([^\s{}\[\]:,;<>"'#]+)""")
# Fields of model_config.proto that are repeated: always lists, even with one entry.
REPEATED = {"input", "output", "instance_group", "dims", "reshape", "gpus", "step", "preferred_batch_size",
            "batch_input", "batch_output", "source_input", "control_input", "control", "state",
            "initial_state", "profile", "secondary_devices", "model_warmup", "priority_levels",
            "allowed_input", "fp32_false_true", "int32_false_true", "labels", "cuda_graph_spec",
            "gpu_execution_accelerator", "cpu_execution_accelerator", "graph_spec", "model_version"}
MAPS = {"parameters", "input_map", "output_map", "cc_model_filenames", "metric_tags", "model_operations",
        "priority_queue_policy"}


class ConfigSyntaxError(HarnessError):
    """A config.pbtxt this reader cannot read; ``reason`` says where it stops (``line 5: ...``)."""

    def __init__(self, reason: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(reason, where=where, fix=fix)
        self.reason = reason


def _tokens(text: str, where: str) -> tuple[list[str], list[int]]:
    """The tokens, and the line each starts on (a syntax error names its line, as Triton's does)."""
    out, lines, pos = [], [], 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found:
            raise ConfigSyntaxError(f"line {text.count(chr(10), 0, pos) + 1}: cannot read {text[pos:pos + 10]!r}",
                                    where=where, fix="check the config syntax")
        token = found.group(1) or found.group(2) or found.group(3)
        if token:
            out.append(token)
            lines.append(text.count("\n", 0, pos) + 1)
        pos = found.end()
    return out, lines


def _scalar(token: str) -> Any:
    if token[0] in "\"'":
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token in ("true", "True"):
        return True
    if token in ("false", "False"):
        return False
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token  # an enum value, e.g. TYPE_FP32


def parse(text: str, where: str = "config.pbtxt") -> dict[str, Any]:
    """The config as a dict (JSON-compatible)."""
    tokens, lines = _tokens(text, where)
    pos = 0

    def line(at: int) -> int:
        return lines[min(at, len(lines) - 1)] if lines else 1

    def message(end: str | None) -> dict[str, Any]:
        nonlocal pos
        opened = pos - 1
        fields: dict[str, Any] = {}
        while pos < len(tokens) and tokens[pos] != end:
            name = tokens[pos]
            pos += 1
            if pos < len(tokens) and tokens[pos] == ":":
                pos += 1
            value = value_of()
            if isinstance(value, list) or name in REPEATED or name in MAPS:
                fields.setdefault(name, []).extend(value if isinstance(value, list) else [value])
            else:
                fields[name] = value
            if pos < len(tokens) and tokens[pos] in (",", ";"):
                pos += 1
        if end is not None:
            if pos >= len(tokens):
                raise ConfigSyntaxError(f"line {line(pos)}: missing {end!r} for the block opened at line "
                                        f"{line(opened)}", where=where, fix="close every block")
            pos += 1
        return {k: _as_map(v) if k in MAPS else v for k, v in fields.items()}

    def value_of() -> Any:
        nonlocal pos
        if pos >= len(tokens):
            raise ConfigSyntaxError(f"line {line(pos)}: a field without a value at the end", where=where,
                                    fix="check the config syntax")
        token = tokens[pos]
        pos += 1
        if token in ("{", "<"):
            return message("}" if token == "{" else ">")
        if token == "[":
            opened, items = pos - 1, []
            while pos < len(tokens) and tokens[pos] != "]":
                items.append(value_of())
                if pos < len(tokens) and tokens[pos] == ",":
                    pos += 1
                elif pos < len(tokens) and tokens[pos] != "]":  # protobuf's text format wants the comma
                    raise ConfigSyntaxError(f"line {line(pos)}: expected ',' or ']' in the list opened at line "
                                            f"{line(opened)}, found {tokens[pos]!r}", where=where,
                                            fix="separate list items with ',' and close the list with ']'")
            if pos >= len(tokens):
                raise ConfigSyntaxError(f"line {line(pos)}: missing ']' for the list opened at line {line(opened)}",
                                        where=where, fix="close every list")
            pos += 1
            return items
        if token.startswith("-") and token == "-" and pos < len(tokens):  # "- 1"
            token = "-" + tokens[pos]
            pos += 1
        return _scalar(token)

    return message(None)


def _as_map(entries: Any) -> Any:
    if isinstance(entries, list) and all(isinstance(e, dict) and "key" in e for e in entries):
        return {e["key"]: e.get("value") for e in entries}
    return entries
