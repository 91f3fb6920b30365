"""Decoupled: holds each request until the client cancels it (is_cancelled), at most 15 s.

It says on stdout (the server log) when it starts waiting and when it saw the cancellation, with the
request's TAG, so a case can cancel only once the request is in execute and then see it noticed.
"""

import time

import numpy as np
import triton_python_backend_utils as pb_utils

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
LIMIT_S = 15.0


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            tag = pb_utils.get_input_tensor_by_name(request, "TAG").as_numpy().reshape(-1)[0].decode()
            sender = request.get_response_sender()
            print(f"PB_WAIT_CANCEL waiting tag={tag}", flush=True)
            deadline = time.monotonic() + LIMIT_S
            while time.monotonic() < deadline:
                if request.is_cancelled() or sender.is_cancelled():
                    print(f"PB_WAIT_CANCEL cancelled tag={tag}", flush=True)
                    sender.send(flags=FINAL)
                    break
                time.sleep(0.01)  # a bounded poll of the cancellation flag
            else:
                print(f"PB_WAIT_CANCEL not cancelled tag={tag}", flush=True)
                out = np.array([b"not cancelled"], dtype=np.object_)
                sender.send(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", out)]),
                            flags=FINAL)
