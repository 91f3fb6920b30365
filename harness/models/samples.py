"""``<model>/samples.json``: perf_analyzer's ``--input-data`` JSON format, read and checked.

Standard library only, so the command line refuses a broken file (one line naming the file and the
key, exit 2) before any cell starts. The format::

    {"data": [{"INPUT0": [1, 2, 3, 4], "TEXT": {"content": ["a b"], "shape": [1]}}, ...],
     "validation_data": [{"OUTPUT0": [2, 4, 6, 8]}, ...]}

A tensor is a plain list (its shape from the config, a -1 taken from the list's length) or
``{"content": [...] | {"b64": "..."}, "shape": [...]}``. Shapes are without the batch dimension, as
perf_analyzer writes them; a batching model gets a batch of one. An entry of ``data`` that is a list
of such objects is a sequence model's stream (``validation_data``: a list per stream too); each
step becomes a :class:`Sample` that knows its stream and whether it starts or ends it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compat import KW_ONLY
from harness.errors import HarnessError

# config data_type -> the protocol's datatype
DATATYPES = {"TYPE_BOOL": "BOOL", "TYPE_UINT8": "UINT8", "TYPE_UINT16": "UINT16", "TYPE_UINT32": "UINT32",
             "TYPE_UINT64": "UINT64", "TYPE_INT8": "INT8", "TYPE_INT16": "INT16", "TYPE_INT32": "INT32",
             "TYPE_INT64": "INT64", "TYPE_FP16": "FP16", "TYPE_FP32": "FP32", "TYPE_FP64": "FP64",
             "TYPE_STRING": "BYTES", "TYPE_BF16": "BF16"}


class SamplesError(HarnessError):
    """samples.json is not perf_analyzer's --input-data format, or does not fit the model's config."""


class SamplesConfigMismatch(SamplesError):
    """samples.json names inputs the config does not have, or shapes it does not allow."""


@dataclass(frozen=True, **KW_ONLY)
class Tensor:
    """One tensor of a sample: its values (a flat or nested list, or raw bytes from b64) and shape."""

    name: str
    content: Any
    shape: tuple[int, ...] | None = None  # None: from the config / the content's length
    b64: bool = False


@dataclass(frozen=True, **KW_ONLY)
class Sample:
    """One request: a sample, or one step of a sequence model's stream (``stream``: its index in
    ``data``; the first step starts the sequence, the last ends it)."""

    inputs: tuple[Tensor, ...]
    expected: tuple[Tensor, ...] | None = None  # validation_data
    stream: int | None = None
    start: bool = False
    end: bool = False
    entry: str = ""  # its place in samples.json: data[3], or data[3][1] for a stream's step


def is_sequence(config: dict[str, Any]) -> bool:
    """A sequence-batching model: its requests carry a sequence id and start/end flags."""
    return "sequence_batching" in config


@dataclass(frozen=True, **KW_ONLY)
class TensorSpec:
    """An input or output of the config: name, protocol datatype and dims (without the batch dim)."""

    name: str
    datatype: str
    dims: tuple[int, ...]


def specs(config: dict[str, Any], key: str) -> list[TensorSpec]:
    """The config's ``input`` or ``output`` list as specs."""
    found = []
    for entry in config.get(key, []) or []:
        dims = tuple(int(d) for d in entry.get("dims", []))
        found.append(TensorSpec(name=str(entry.get("name")), datatype=DATATYPES.get(str(entry.get("data_type")),
                                str(entry.get("data_type"))), dims=dims))
    return found


def load(path: Path) -> list[Sample]:
    """Read and check a samples.json; every problem names the file and the key."""
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SamplesError(f"cannot read ({exc})", where=where, fix="make it a readable UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise SamplesError(f"not JSON ({exc.msg} at line {exc.lineno})", where=where,
                           fix="write perf_analyzer's --input-data JSON") from None
    if not isinstance(data, dict) or "data" not in data:
        raise SamplesError("no 'data' key at the top", where=where,
                           fix='write {"data": [{"<input>": [...]}, ...]} (perf_analyzer --input-data format)')
    unknown = sorted(set(data) - {"data", "validation_data", "parameters"})
    if unknown:
        raise SamplesError(f"unknown key {unknown[0]!r}", where=f"{where}: {unknown[0]}",
                           fix="use data and validation_data")
    entries = data["data"]
    if not isinstance(entries, list) or not entries:
        raise SamplesError("'data' is not a non-empty list", where=f"{where}: data", fix="give at least one sample")
    expected = data.get("validation_data")
    if expected is not None and (not isinstance(expected, list) or len(expected) != len(entries)):
        raise SamplesError("'validation_data' is not a list with one entry per sample in 'data'",
                           where=f"{where}: validation_data", fix=f"give {len(entries)} entries")
    samples = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, list):
            inputs = _tensors(entry, f"{where}: data[{i}]")
            outputs = _tensors(expected[i], f"{where}: validation_data[{i}]") if expected is not None else None
            samples.append(Sample(inputs=inputs, expected=outputs, entry=f"data[{i}]"))
            continue
        if not entry:  # a stream of steps, for a sequence model (perf_analyzer's format)
            raise SamplesError("an empty stream", where=f"{where}: data[{i}]", fix="give the stream's steps")
        if expected is not None and (not isinstance(expected[i], list) or len(expected[i]) != len(entry)):
            raise SamplesError("a stream's validation_data is a list with one entry per step",
                               where=f"{where}: validation_data[{i}]", fix=f"give {len(entry)} entries")
        for j, step in enumerate(entry):
            inputs = _tensors(step, f"{where}: data[{i}][{j}]")
            outputs = _tensors(expected[i][j], f"{where}: validation_data[{i}][{j}]") if expected is not None else None
            samples.append(Sample(inputs=inputs, expected=outputs, stream=i, start=j == 0, end=j == len(entry) - 1,
                                  entry=f"data[{i}][{j}]"))
    return samples


def _tensors(entry: Any, where: str) -> tuple[Tensor, ...]:
    if not isinstance(entry, dict) or not entry:
        raise SamplesError("not an object of tensors", where=where, fix='write {"<tensor name>": [values]}')
    tensors = []
    for name, value in entry.items():
        key = f"{where}.{name}"
        if isinstance(value, list):
            tensors.append(Tensor(name=name, content=value))
            continue
        if not isinstance(value, dict) or "content" not in value:
            raise SamplesError("a tensor is a list, or an object with 'content' (and 'shape')", where=key,
                               fix='write [1, 2] or {"content": [1, 2], "shape": [2]}')
        extra = sorted(set(value) - {"content", "shape"})
        if extra:
            raise SamplesError(f"unknown key {extra[0]!r}", where=f"{key}.{extra[0]}", fix="use content and shape")
        shape = value.get("shape")
        if shape is not None and (not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise SamplesError(f"shape {shape!r} is not a list of sizes", where=f"{key}.shape", fix="write e.g. [2, 3]")
        content = value["content"]
        b64 = isinstance(content, dict)
        if b64 and set(content) != {"b64"}:
            raise SamplesError("content is a list, or {'b64': '...'}", where=f"{key}.content",
                               fix="give the values or their base64")
        if not b64 and not isinstance(content, list):
            raise SamplesError("content is a list, or {'b64': '...'}", where=f"{key}.content",
                               fix="give the values or their base64")
        if not b64 and shape is not None and _count(content) != math.prod(shape):
            raise SamplesError(f"{_count(content)} values do not fill shape {shape}", where=f"{key}.content",
                               fix="make content and shape agree")
        tensors.append(Tensor(name=name, content=content, shape=tuple(shape) if shape is not None else None, b64=b64))
    return tuple(tensors)


def _count(content: Any) -> int:
    if isinstance(content, list):
        return sum(_count(c) for c in content)
    return 1


def shape_of(tensor: Tensor, spec: TensorSpec | None) -> tuple[int, ...]:
    """The tensor's shape without batch dim: given, else the config's dims with -1 from the length."""
    if tensor.shape is not None:
        return tensor.shape
    count = _count(tensor.content)
    if spec is None or not spec.dims:
        return (count,)
    known = math.prod(d for d in spec.dims if d >= 0)
    wild = [i for i, d in enumerate(spec.dims) if d < 0]
    if not wild:
        return spec.dims
    if len(wild) == 1 and known and count % known == 0:
        return tuple(count // known if d < 0 else d for d in spec.dims)
    return (count,)


def check_against(samples: list[Sample], config: dict[str, Any], where: str) -> None:
    """Inputs must be the config's, with shapes its dims allow (skipped when the config names no inputs:
    the server auto-completes it, and the cell checks the samples against the config it holds)."""
    stream = next((s for s in samples if s.stream is not None), None)
    if config and stream is not None and not is_sequence(config):
        raise SamplesConfigMismatch("a stream of steps is for a sequence model; the config has no sequence_batching",
                                    where=f"{where}: data[{stream.stream}]",
                                    fix="give one object of tensors per sample, or add sequence_batching")
    inputs = {s.name: s for s in specs(config, "input")}
    if not inputs:
        return
    for sample in samples:
        for tensor in sample.inputs:
            key = f"{where}: {sample.entry}.{tensor.name}"
            spec = inputs.get(tensor.name)
            if spec is None:
                raise SamplesConfigMismatch(f"the config has no input {tensor.name!r}", where=key,
                                            fix=f"use the config's inputs: {', '.join(inputs)}")
            if tensor.b64:
                continue
            shape = shape_of(tensor, spec)
            if spec.dims and not _fits(shape, spec.dims):
                raise SamplesConfigMismatch(f"shape {list(shape)} does not fit the config's dims {list(spec.dims)}",
                                            where=key, fix="give content and shape the config allows")
            if tensor.shape is None and _count(tensor.content) != math.prod(shape):
                raise SamplesConfigMismatch(f"{_count(tensor.content)} values do not fill dims {list(spec.dims)}",
                                            where=key, fix="give a shape, or as many values as the dims hold")


def _fits(shape: tuple[int, ...], dims: tuple[int, ...]) -> bool:
    return len(shape) == len(dims) and all(d < 0 or d == s for s, d in zip(shape, dims))


PLACEHOLDERS = {"BYTES": "<text>", "BOOL": False}  # other datatypes: 0


def template(config: dict[str, Any]) -> dict[str, Any]:
    """A samples.json with one sample for the config's inputs (a sequence model: one stream of two
    steps), placeholders to replace with real values: what a hint shows a team whose model refused
    generated inputs."""
    entry: dict[str, Any] = {}
    for spec in specs(config, "input"):
        shape = [1 if d < 0 else d for d in spec.dims] or [1]
        value = PLACEHOLDERS.get(spec.datatype, 0)
        content = [value] * math.prod(shape)
        entry[spec.name] = {"content": content, "shape": shape} if any(d < 0 for d in spec.dims) else content
    return {"data": [[entry, entry]] if is_sequence(config) else [entry]}
