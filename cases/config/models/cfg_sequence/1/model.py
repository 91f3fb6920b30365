"""OUTPUT0 = the running sum of INPUT0 within the request's sequence (state kept per CORRID)."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            value = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            start = pb_utils.get_input_tensor_by_name(request, "START").as_numpy()
            corrid = pb_utils.get_input_tensor_by_name(request, "CORRID").as_numpy()
            out = np.empty_like(value)
            for i in range(value.shape[0]):
                key = int(corrid.reshape(-1)[i])
                if int(start.reshape(-1)[i]):
                    self.sums[key] = 0.0
                self.sums[key] = self.sums.get(key, 0.0) + float(value[i, 0])
                out[i, 0] = self.sums[key]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", out)]))
        return responses
