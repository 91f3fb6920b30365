"""Reports, as JSON in INFO, what reached the model: its initialize args (less the config), the
parameters of its config, and the sizes of the /dev/shm regions its stub process has mapped."""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


def _shm_regions():
    """{path: size} of the /dev/shm files this process maps (the stub's shared memory with the server)."""
    regions = {}
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip().startswith("/dev/shm/"):
                path = parts[5].strip()
                if os.path.exists(path):
                    regions[path] = os.path.getsize(path)
    return regions


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.info = {
            "args": {k: v for k, v in args.items() if k != "model_config"},
            "parameters": {k: v.get("string_value") for k, v in config.get("parameters", {}).items()},
            "shm_sizes": sorted(set(_shm_regions().values())),
        }

    def execute(self, requests):
        text = json.dumps(self.info)
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("INFO", np.array([text.encode()], dtype=np.object_))])
            for _ in requests
        ]
