"""OUT = pb_sibling_helper.shout(IN), from the module next to this file; HELPER_FILE is where the
imported module was found (it must be the sibling, not some other module of that name)."""

import numpy as np
import pb_sibling_helper
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().reshape(-1)[0].decode()
            out = np.array([pb_sibling_helper.shout(text).encode()], dtype=np.object_)
            where = np.array([pb_sibling_helper.__file__.encode()], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OUT", out), pb_utils.Tensor("HELPER_FILE", where)]))
        return responses
