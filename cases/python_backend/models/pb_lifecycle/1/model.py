"""Says, on stdout (the server log), when initialize and finalize run, with the stub's pid.

execute answers with the pid of the stub that ran it and a token made in initialize, so a case can
tie requests to stub processes and prove initialize ran in that very process.
"""

import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


def _say(text):
    print(text, flush=True)
    sys.stdout.flush()


class TritonPythonModel:
    def initialize(self, args):
        self.name = args["model_instance_name"]
        self.token = f"init:{self.name}:{os.getpid()}"
        _say(f"PB_LIFECYCLE initialize instance={self.name} pid={os.getpid()}")

    def execute(self, requests):
        responses = []
        for request in requests:
            pid = np.array([os.getpid()], dtype=np.int64)
            token = np.array([self.token.encode()], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("PID", pid), pb_utils.Tensor("INIT_TOKEN", token)]))
        return responses

    def finalize(self):
        _say(f"PB_LIFECYCLE finalize instance={self.name} pid={os.getpid()}")
