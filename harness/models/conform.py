"""Whether an answer is what the model's served config promises: the ``conforms`` check's rules.

A client that trusts the config (a C++ client reading ``TYPE_INT32`` as int32) misreads an answer
whose datatype or shape differs from it, so every output of every answer must have the datatype the
config the server serves declares and a shape its dims allow (-1 is any size; a batching model's
first dimension is the batch, at most ``max_batch_size``; an output's ``reshape`` is allowed as
well), every declared output (not marked ``optional``) must be there, and nothing undeclared.
Standard library only, pure: the check feeds it the served config and the answers' records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.compat import KW_ONLY
from harness.models.samples import DATATYPES


@dataclass(frozen=True, **KW_ONLY)
class DeclaredOutput:
    """An output as the served config declares it (dims without the batch dimension)."""

    name: str
    data_type: str  # as in the config, e.g. TYPE_INT32
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None = None
    optional: bool = False

    @property
    def datatype(self) -> str:
        """The protocol's datatype for the config's data_type (TYPE_STRING -> BYTES)."""
        return DATATYPES.get(self.data_type, self.data_type)


class Problem(Enum):
    """What is wrong with one output of an answer."""

    DATATYPE = "datatype"
    SHAPE = "shape"
    ABSENT = "absent"  # declared, not optional, not in the answer
    UNDECLARED = "undeclared"


@dataclass(frozen=True, **KW_ONLY)
class Mismatch:
    """One output that is not what the config declares: named, with the declared and the served form."""

    output: str
    problem: Problem
    declared: str  # e.g. "TYPE_INT32 [batch <= 8, -1]"; "" for an undeclared output
    served: str  # e.g. "INT64 [1, 3]"; "" for an absent output

    def sentence(self) -> str:
        if self.problem is Problem.ABSENT:
            return f"output {self.output!r} (declared {self.declared}) is missing from the answer"
        if self.problem is Problem.UNDECLARED:
            return f"output {self.output!r} is not declared in the served config (served {self.served})"
        return (f"output {self.output!r} is declared {self.declared}, served {self.served} "
                f"(its {self.problem.value} differs)")


def declared_outputs(config: Mapping[str, Any]) -> dict[str, DeclaredOutput]:
    """The served config's outputs by name (its JSON form, or config.pbtxt as ``pbtxt`` reads it)."""
    found = {}
    for entry in config.get("output", []) or []:
        reshape = entry.get("reshape")
        if isinstance(reshape, list):  # config.pbtxt as read: a repeated field
            reshape = reshape[0] if reshape else None
        found[str(entry.get("name"))] = DeclaredOutput(
            name=str(entry.get("name")), data_type=str(entry.get("data_type", "TYPE_INVALID")),
            dims=tuple(int(d) for d in entry.get("dims", []) or []),
            reshape=tuple(int(d) for d in reshape.get("shape", []) or []) if isinstance(reshape, dict) else None,
            optional=bool(entry.get("optional", False)))
    return found


def max_batch_size(config: Mapping[str, Any]) -> int:
    return int(config.get("max_batch_size", 0) or 0)


def describe(output: DeclaredOutput, batch: int) -> str:
    """The declared form, as a failure shows it: ``TYPE_INT32 [batch <= 8, -1]`` (or ``reshape [...]``)."""
    dims = [*([f"batch <= {batch}"] if batch > 0 else []), *(str(d) for d in output.dims)]
    text = f"{output.data_type} [{', '.join(dims)}]"
    if output.reshape is not None:
        text += f" (reshape [{', '.join(str(d) for d in output.reshape)}])"
    return text


def _fits(shape: tuple[int, ...], dims: tuple[int, ...]) -> bool:
    return len(shape) == len(dims) and all(d < 0 or d == s for s, d in zip(shape, dims))


def shape_allowed(shape: tuple[int, ...], output: DeclaredOutput, batch: int) -> bool:
    """The served shape fits the dims (or the reshape), after a batch dimension of 1..max_batch_size."""
    if batch > 0:
        if not shape or not 0 < shape[0] <= batch:
            return False
        shape = shape[1:]
    return any(_fits(shape, dims) for dims in (output.dims, output.reshape) if dims is not None)


def mismatches(config: Mapping[str, Any], response: Mapping[str, Mapping[str, Any]]) -> list[Mismatch]:
    """What in one response (output name -> a record with ``datatype`` and ``shape``) the served config
    does not allow; empty when it conforms."""
    declared = declared_outputs(config)
    batch = max_batch_size(config)
    found = []
    for name, output in sorted(declared.items()):
        if name not in response and not output.optional:
            found.append(Mismatch(output=name, problem=Problem.ABSENT, declared=describe(output, batch), served=""))
    for name, record in sorted(response.items()):
        served_type = str(record.get("datatype"))
        shape = tuple(int(d) for d in record.get("shape", []))
        served = f"{served_type} [{', '.join(str(d) for d in shape)}]"
        output = declared.get(name)
        if output is None:
            found.append(Mismatch(output=name, problem=Problem.UNDECLARED, declared="", served=served))
            continue
        problem = (Problem.DATATYPE if served_type != output.datatype else
                   Problem.SHAPE if not shape_allowed(shape, output, batch) else None)
        if problem:
            found.append(Mismatch(output=name, problem=problem, declared=describe(output, batch), served=served))
    return found


def answer_mismatches(config: Mapping[str, Any], answers: list[list[Mapping[str, Mapping[str, Any]]]]) -> list[Mismatch]:
    """Every mismatch of every response of every answer, each said once."""
    seen: dict[Mismatch, None] = {}
    for answer in answers:
        for response in answer:
            for found in mismatches(config, response):
                seen.setdefault(found)
    return list(seen)
