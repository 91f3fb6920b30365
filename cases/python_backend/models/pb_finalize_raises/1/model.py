"""Serves (OUT = IN), but finalize raises: the unload must still finish and the error be reported."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
            for r in requests]

    def finalize(self):
        raise RuntimeError("pb_finalize_raises: cleanup failed, 3 handles leaked")
