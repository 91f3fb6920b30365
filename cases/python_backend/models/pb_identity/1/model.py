"""OUT_<T> = IN_<T> for every input the request carries, byte for byte (BF16: see pb_bf16)."""

import triton_python_backend_utils as pb_utils

SUFFIXES = ("FP32", "INT8", "BOOL", "BYTES", "FP16")


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            outputs = []
            for suffix in SUFFIXES:
                tensor = pb_utils.get_input_tensor_by_name(request, f"IN_{suffix}")
                if tensor is None:
                    continue
                outputs.append(pb_utils.Tensor(f"OUT_{suffix}", tensor.as_numpy()))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses
