"""One request to a team's model, over HTTP, gRPC or the gRPC stream (decoupled), as answer records.

An answer is the list of responses a request got (one, or a decoupled model's every response until
the final flag), each response a dict of output name -> :func:`tensors.record`.
"""

from __future__ import annotations

import hashlib
import json
import queue
from dataclasses import dataclass
from typing import Any

from harness.compat import KW_ONLY
from harness.models.tensors import Arrays, record

Answer = list[dict[str, dict[str, Any]]]
# gRPC statuses that mean no answer came (the deadline passed, the server went away), not a refusal.
NO_ANSWER_STATUSES = frozenset({"StatusCode.DEADLINE_EXCEEDED", "StatusCode.UNAVAILABLE", "StatusCode.CANCELLED"})


class NoFinalResponse(AssertionError):
    """A decoupled request's stream did not bring its final response in time."""


def refused(exc: BaseException) -> bool:
    """Whether a failed request was answered with an error (the model's own, or the server's on its
    behalf, e.g. a shape it rejects), rather than left without an answer (timeout, lost connection)."""
    from tritonclient.utils import InferenceServerException

    return isinstance(exc, InferenceServerException) and exc.status() not in NO_ANSWER_STATUSES


def _inputs(module: Any, arrays: Arrays) -> list[Any]:
    made = []
    for name, (array, datatype) in arrays.items():
        tensor = module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        made.append(tensor)
    return made


def _outputs(result: Any) -> dict[str, dict[str, Any]]:
    response = result.get_response()
    outputs = response.get("outputs", []) if isinstance(response, dict) else list(response.outputs)
    answer = {}
    for output in outputs:
        name = output["name"] if isinstance(output, dict) else output.name
        datatype = output["datatype"] if isinstance(output, dict) else output.datatype
        array = result.as_numpy(name)
        if array is None:
            raise AssertionError(f"output {name!r} came back without data")
        answer[name] = record(array, datatype)
    return dict(sorted(answer.items()))


@dataclass(frozen=True, **KW_ONLY)
class SequenceStep:
    """A request's place in a sequence model's stream: its sequence id and start/end flags."""

    sequence_id: int
    start: bool
    end: bool

    def kwargs(self) -> dict[str, Any]:
        return {"sequence_id": self.sequence_id, "sequence_start": self.start, "sequence_end": self.end}


def unary(client: Any, module: Any, model: str, arrays: Arrays, timeout: float, grpc: bool,
          sequence: SequenceStep | None = None) -> Answer:
    kwargs = {"client_timeout": timeout} if grpc else {}
    kwargs.update(sequence.kwargs() if sequence else {})
    return [_outputs(client.infer(model, _inputs(module, arrays), **kwargs))]


def stream(client: Any, module: Any, model: str, arrays: Arrays, timeout: float,
           sequence: SequenceStep | None = None) -> Answer:
    """A decoupled request over the gRPC stream: every response until the one flagged final."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    answer: Answer = []
    try:
        client.async_stream_infer(model, _inputs(module, arrays), enable_empty_final_response=True,
                                  **(sequence.kwargs() if sequence else {}))
        while True:
            try:
                result, error = responses.get(timeout=timeout)
            except queue.Empty:
                raise NoFinalResponse(f"no final response within {timeout:g} s "
                                     f"({len(answer)} responses came)") from None
            if error is not None:
                raise error
            outputs = _outputs(result)
            if outputs:
                answer.append(outputs)
            params = result.get_response().parameters
            if "triton_final_response" in params and params["triton_final_response"].bool_param:
                return answer
    finally:
        client.stop_stream()


def digest(answer: Answer) -> str:
    """One digest for a whole answer (every response, every output)."""
    parts = [[(name, out["digest"]) for name, out in response.items()] for response in answer]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
