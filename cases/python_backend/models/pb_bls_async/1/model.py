"""async execute with BLS async_exec, as MODE says:

- ``gather``: pb_add_one(IN) and pb_double(IN) awaited together; OUT = their sum (3 * IN + 1)
- ``fail``: awaits pb_fail; its error is returned to the client, with its message
"""

import asyncio

import numpy as np
import triton_python_backend_utils as pb_utils


def request_for(model, x):
    return pb_utils.InferenceRequest(
        model_name=model, inputs=[pb_utils.Tensor("IN", x)], requested_output_names=["OUT"])


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            mode = pb_utils.get_input_tensor_by_name(request, "MODE").as_numpy().reshape(-1)[0].decode()
            x = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            models = {"gather": ["pb_add_one", "pb_double"], "fail": ["pb_fail"]}[mode]
            results = await asyncio.gather(*(request_for(m, x).async_exec() for m in models))
            failed = [(m, r) for m, r in zip(models, results) if r.has_error()]
            if failed:
                model, result = failed[0]
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"pb_bls_async: {model} said: {result.error().message()}")))
                continue
            outs = [pb_utils.get_output_tensor_by_name(r, "OUT").as_numpy() for r in results]
            total = np.sum(outs, axis=0).astype(np.int32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", total)]))
        return responses
