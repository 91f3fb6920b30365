"""Loads with any config: the cases only read back the config the server holds for it."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        error = pb_utils.TritonError("cfg_valid models only exist to be loaded")
        return [pb_utils.InferenceResponse(error=error) for _ in requests]
