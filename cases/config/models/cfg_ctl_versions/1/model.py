"""VERSION = the version Triton loaded this file as; LABEL = the config's 'label' parameter."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.version = int(args["model_version"])
        self.label = config.get("parameters", {}).get("label", {}).get("string_value", "")

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("VERSION", np.array([self.version], dtype=np.int32)),
                pb_utils.Tensor("LABEL", np.array([self.label.encode()], dtype=np.object_)),
            ])
            for _ in requests
        ]
