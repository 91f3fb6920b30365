"""OUT is NBYTES bytes of a known pattern (i % 251), made in the stub: it must travel through the
stub's shared-memory pool, which grows to fit it.

With the config parameter ``shm_file_limit`` the stub limits the size of the files it may grow
(RLIMIT_FSIZE, SIGXFSZ ignored): the pool is then bounded as by a small /dev/shm, and an output
beyond it must fail with the backend's message while the stub stays alive.
"""

import resource
import signal

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import json

        params = json.loads(args["model_config"]).get("parameters", {})
        limit = params.get("shm_file_limit", {}).get("string_value")
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), hard))

    def execute(self, requests):
        responses = []
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "NBYTES").as_numpy()[0])
            out = (np.arange(n, dtype=np.int64) % 251).astype(np.uint8)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", out)]))
        return responses
