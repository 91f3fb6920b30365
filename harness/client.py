"""One small face over tritonclient's HTTP and gRPC clients, so a case is written once for both.

``client.infer("add_sub", {"INPUT0": a, "INPUT1": b})`` returns ``{"OUTPUT0": array, ...}``;
``client.raw`` is the tritonclient client and ``client.module`` its module, for everything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tritonclient.utils import np_to_triton_dtype

PROTOCOLS = ("http", "grpc")


class Client:
    def __init__(self, protocol: str, raw: Any, *, timeout: float | None = None) -> None:
        """``timeout``: seconds one request may take (gRPC; the HTTP client gets it at creation)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        self.protocol = protocol
        self.raw = raw
        self.timeout = timeout
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
        self.module = module

    def __repr__(self) -> str:
        return f"Client({self.protocol})"

    def inputs(self, arrays: dict[str, np.ndarray]) -> list[Any]:
        result = []
        for name, array in arrays.items():
            tensor = self.module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            result.append(tensor)
        return result

    def infer(
        self, model: str, arrays: dict[str, np.ndarray], outputs: list[str] | None = None, **kwargs: Any
    ) -> dict[str, np.ndarray]:
        """Run one request; returns every output (or the ``outputs`` asked for) as numpy arrays."""
        requested = [self.module.InferRequestedOutput(o) for o in outputs] if outputs else None
        result = self.raw.infer(model, self.inputs(arrays), outputs=requested, **self.bounded(kwargs))
        response = result.get_response()
        names = outputs or [o["name"] if isinstance(o, dict) else o.name for o in _outputs(response)]
        arrays_out = {}
        for name in names:
            try:
                arrays_out[name] = result.as_numpy(name)
            except ValueError as exc:  # the server sent fewer bytes than the shape it declared
                output = result.get_output(name)
                shape = list(output["shape"] if isinstance(output, dict) else output.shape)
                raise AssertionError(
                    f"the server answered {model!r} with output {name!r} of shape {shape} but data that does "
                    f"not fill it ({exc})") from None
        return arrays_out

    def bounded(self, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """``kwargs`` for a ``raw`` infer call, with the gRPC client's request timeout added (the HTTP
        client has its timeout from its creation): ``client.raw.infer(m, inputs, **client.bounded())``."""
        kwargs = dict(kwargs or {})
        if self.protocol == "grpc" and self.timeout:
            kwargs.setdefault("client_timeout", self.timeout)
        return kwargs

    def is_model_ready(self, model: str) -> bool:
        return bool(self.raw.is_model_ready(model))

    def model_config(self, model: str) -> dict[str, Any]:
        """The config the server holds for ``model``, as a dict in both protocols."""
        if self.protocol == "http":
            return self.raw.get_model_config(model)
        return self.raw.get_model_config(model, as_json=True)["config"]

    def close(self) -> None:
        self.raw.close()


def _outputs(response: Any) -> list[Any]:
    if isinstance(response, dict):
        return response.get("outputs", [])
    return list(response.outputs)
