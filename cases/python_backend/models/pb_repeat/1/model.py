"""Decoupled: one response per element of IN (OUT = the element, IDX = its position).

A negative element is answered with an error response instead, and the stream goes on. The final
flag comes alone after the last response, or with the last response when FINAL_WITH_LAST is true.
"""

import numpy as np
import triton_python_backend_utils as pb_utils

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            values = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().reshape(-1)
            with_last = pb_utils.get_input_tensor_by_name(request, "FINAL_WITH_LAST")
            with_last = bool(with_last.as_numpy().reshape(-1)[0]) if with_last is not None else False
            for i, value in enumerate(values):
                last = i == len(values) - 1
                flags = FINAL if (last and with_last) else 0
                if value < 0:
                    response = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"pb_repeat: element {i} is negative ({int(value)})"))
                else:
                    response = pb_utils.InferenceResponse(output_tensors=[
                        pb_utils.Tensor("OUT", np.array([value], dtype=np.int32)),
                        pb_utils.Tensor("IDX", np.array([i], dtype=np.int32))])
                sender.send(response, flags=flags)
            if not (with_last and len(values)):
                sender.send(flags=FINAL)
