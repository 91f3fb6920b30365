"""Sets the environment variables named by its ``env:NAME`` config parameters in its own stub,
then answers VALUE = os.environ[NAME] (or "<unset>") for the NAME asked.

The same file is pb_env_reader's model, which has no such parameters: the variables must not leak
from one model's stub into another's.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        for key, value in params.items():
            if key.startswith("env:"):
                os.environ[key[4:]] = value["string_value"]

    def execute(self, requests):
        responses = []
        for request in requests:
            name = pb_utils.get_input_tensor_by_name(request, "NAME").as_numpy().reshape(-1)[0].decode()
            value = os.environ.get(name, "<unset>")
            out = np.array([value.encode("utf-8")], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("VALUE", out)]))
        return responses
