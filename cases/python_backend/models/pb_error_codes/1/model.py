"""Answers each request with a TritonError whose code is named by the CODE input (e.g. NOT_FOUND)."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            name = pb_utils.get_input_tensor_by_name(request, "CODE").as_numpy()[0].decode()
            code = getattr(pb_utils.TritonError, name)
            responses.append(pb_utils.InferenceResponse(
                error=pb_utils.TritonError(f"pb_error_codes: failing with {name} on purpose", code)))
        return responses
