"""Calls other models of the same server through BLS (sync exec), as MODE says:

- ``add_one``: OUT = pb_add_one(IN)
- ``pipeline``: OUT = pb_double(pb_add_one(IN))
- ``fail``: calls pb_fail; its error is returned to the client, with its message
- ``decoupled``: calls the decoupled pb_repeat and returns every OUT it streamed, in order
"""

import numpy as np
import triton_python_backend_utils as pb_utils


def call(model, x, **kwargs):
    request = pb_utils.InferenceRequest(
        model_name=model, inputs=[pb_utils.Tensor("IN", x)], requested_output_names=["OUT"])
    return request.exec(**kwargs)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            mode = pb_utils.get_input_tensor_by_name(request, "MODE").as_numpy().reshape(-1)[0].decode()
            x = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            responses.append(self.run(mode, x))
        return responses

    def run(self, mode, x):
        if mode == "decoupled":
            values = []
            for response in call("pb_repeat", x, decoupled=True):
                if response.has_error():
                    return pb_utils.InferenceResponse(error=pb_utils.TritonError(
                        f"pb_bls: pb_repeat said: {response.error().message()}"))
                out = pb_utils.get_output_tensor_by_name(response, "OUT")
                if out is not None:
                    values.append(int(out.as_numpy().reshape(-1)[0]))
            return pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OUT", np.array(values, dtype=np.int32))])
        chain = {"add_one": ["pb_add_one"], "pipeline": ["pb_add_one", "pb_double"], "fail": ["pb_fail"]}[mode]
        for model in chain:
            response = call(model, x)
            if response.has_error():
                return pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"pb_bls: {model} said: {response.error().message()}"))
            x = pb_utils.get_output_tensor_by_name(response, "OUT").as_numpy()
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", x.astype(np.int32))])
