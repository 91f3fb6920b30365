"""Every request fails with an error response naming this model and the input's first value."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            first = int(x.flat[0]) if x.size else None
            responses.append(pb_utils.InferenceResponse(
                error=pb_utils.TritonError(f"pb_fail: rejected input starting with {first}")))
        return responses
