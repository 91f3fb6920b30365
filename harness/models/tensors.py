"""Samples as arrays, generated inputs, and answers as small comparable records (numpy; in the cell).

Generated inputs come from SHAKE-256 of ``<model>/<input>`` rather than numpy's random generators,
whose streams may change between numpy versions: a numpy 1 cell and a numpy 2 cell must send the
same bytes. Dims of -1 become 1; a batching model gets a batch of one.
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import numpy as np

from harness.models.differ import STORED_ELEMENTS
from harness.models.samples import Sample, Tensor, TensorSpec, shape_of, specs

NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
         "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
         "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_, "BF16": np.float32}
Arrays = dict[str, tuple[np.ndarray, str]]  # name -> (array, protocol datatype)
GENERATED_STEPS = 3  # a generated sequence: start, one step, end


class InputMismatch(AssertionError):
    """The samples do not fit the config the server holds (fails the answers check)."""


def batched(config: dict[str, Any]) -> bool:
    return int(config.get("max_batch_size", 0) or 0) > 0


def sample_arrays(sample: Sample, config: dict[str, Any]) -> Arrays:
    """One samples.json entry as arrays for the server, checked against the config it holds."""
    inputs = {s.name: s for s in specs(config, "input")}
    out: Arrays = {}
    for tensor in sample.inputs:
        spec = inputs.get(tensor.name)
        if spec is None:
            raise InputMismatch(f"samples.json gives input {tensor.name!r}; the server's config has "
                                f"{', '.join(inputs) or 'no inputs'}")
        out[tensor.name] = (_array(tensor, spec, batched(config)), spec.datatype)
    missing = sorted(set(inputs) - set(out))
    if missing:
        raise InputMismatch(f"samples.json gives no input {missing[0]!r} (the server's config has it)")
    return out


def _array(tensor: Tensor, spec: TensorSpec, batch: bool) -> np.ndarray:
    dtype = NUMPY[spec.datatype]
    shape = shape_of(tensor, spec)
    if tensor.b64:
        raw = base64.b64decode(tensor.content["b64"])
        array = np.frombuffer(raw, dtype=dtype).reshape(shape) if dtype is not np.object_ else np.array([raw])
    elif dtype is np.object_:
        flat = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in _flatten(tensor.content)]
        array = np.array(flat, dtype=np.object_).reshape(shape)
    else:
        array = np.array(_flatten(tensor.content), dtype=dtype).reshape(shape)
    return array[np.newaxis, ...] if batch else array


def _flatten(content: Any) -> list[Any]:
    if isinstance(content, list):
        return [v for c in content for v in _flatten(c)]
    return [content]


def generate(model: str, config: dict[str, Any], step: int | None = None) -> Arrays:
    """Inputs for a model without samples.json, from its config: the same bytes on every run and cell
    (``step``: a generated sequence's step, each step other bytes)."""
    out: Arrays = {}
    for spec in specs(config, "input"):
        shape = tuple(1 if d < 0 else d for d in spec.dims) or (1,)
        if batched(config):
            shape = (1, *shape)
        seed = f"{model}/{spec.name}" + (f"/{step}" if step is not None else "")
        out[spec.name] = (_generated(seed, spec.datatype, shape), spec.datatype)
    return out


def _generated(seed: str, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    count = math.prod(shape)
    raw = np.frombuffer(hashlib.shake_256(seed.encode()).digest(4 * count), dtype="<u4").astype(np.int64)
    if datatype == "BYTES":
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = [("".join(letters[(int(v) >> s) % 26] for s in range(0, 8 + int(v) % 4 * 4, 4))).encode()
                 for v in raw]
        return np.array(words, dtype=np.object_).reshape(shape)
    if datatype == "BOOL":
        return (raw % 2 == 1).reshape(shape)
    if datatype.startswith(("FP", "BF")):  # small values with few significant bits: exact in every float type
        return ((raw % 256 - 128) / 16.0).astype(NUMPY[datatype]).reshape(shape)
    return (raw % 100).astype(NUMPY[datatype]).reshape(shape)


def payload(array: np.ndarray, datatype: str) -> bytes:
    """The tensor's bytes, BYTES elements length-prefixed (as on the wire)."""
    if datatype == "BYTES":
        parts = [b if isinstance(b, bytes) else str(b).encode() for b in array.reshape(-1)]
        return b"".join(len(p).to_bytes(4, "little") + p for p in parts)
    return np.ascontiguousarray(array).tobytes()


def record(array: np.ndarray, datatype: str) -> dict[str, Any]:
    """An answer tensor as stored: datatype, shape, digest, and the values when small."""
    body = payload(array, datatype)
    shape = [int(d) for d in array.shape]
    entry: dict[str, Any] = {"datatype": datatype, "shape": shape,
                             "digest": hashlib.sha256(f"{datatype}{shape}".encode() + body).hexdigest()[:32]}
    if array.size <= STORED_ELEMENTS:
        if datatype == "BYTES":
            entry["values"] = [base64.b64encode(b if isinstance(b, bytes) else str(b).encode()).decode()
                               for b in array.reshape(-1)]
        else:
            entry["values"] = [v.item() if hasattr(v, "item") else v for v in array.reshape(-1)]
    return entry


def expected_record(tensor: Tensor, spec: TensorSpec | None, batch: bool) -> dict[str, Any]:
    """validation_data's tensor as a record (values only; compared with :func:`difference`)."""
    datatype = spec.datatype if spec else ("BYTES" if any(isinstance(v, str) for v in _flatten(tensor.content))
                                           else "FP64")
    array = _array(tensor, TensorSpec(name=tensor.name, datatype=datatype, dims=spec.dims if spec else ()), batch)
    return record(array, datatype)
