"""initialize calls pb_add_one through BLS. The server refuses BLS outside execute: the refusal
(an exception, or an error response) fails the load with the server's words."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        request = pb_utils.InferenceRequest(
            model_name="pb_add_one", inputs=[pb_utils.Tensor("IN", np.array([1], dtype=np.int32))],
            requested_output_names=["OUT"])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"pb_bls_init: BLS in initialize refused: {response.error().message()}")
        self.warmup = pb_utils.get_output_tensor_by_name(response, "OUT").as_numpy()

    def execute(self, requests):
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", self.warmup)])
                for _ in requests]
