import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.total = 0

    def execute(self, requests):
        responses = []
        for request in requests:
            if pb_utils.get_input_tensor_by_name(request, "START").as_numpy().reshape(-1)[0]:
                self.total = 0
            self.total += int(pb_utils.get_input_tensor_by_name(request, "X").as_numpy().sum())
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SUM", np.array([[self.total]], np.int32))]))
        return responses
