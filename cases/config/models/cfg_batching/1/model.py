"""OUTPUT0 = INPUT0; BATCH_SIZE = the batch this execution saw (the sum of its requests' batches)."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() for r in requests]
        batch = sum(x.shape[0] for x in inputs)
        return [
            pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", x),
                pb_utils.Tensor("BATCH_SIZE", np.full((x.shape[0], 1), batch, dtype=np.int32)),
            ])
            for x in inputs
        ]
