"""A negative X fails only its own request (error response); the others get Y = 10 * X.

BATCH tells how many requests the execute call held, so a case can prove they were batched together.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        batch = np.array([[len(requests)]], dtype=np.int32)
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            if (x < 0).any():
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"pb_batch_errors: X={int(x.flat[0])} is negative")))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("Y", (x * 10).astype(np.int32)), pb_utils.Tensor("BATCH", batch)]))
        return responses
