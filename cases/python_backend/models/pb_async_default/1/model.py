"""async def execute on ONE instance: a "wait" request awaits an event that only a later "set"
request can set. Both succeed only if the second execute runs while the first is still awaiting.

wait -> OK = the event was set within TIMEOUT seconds; set -> OK = a waiter was there to release.
pb_async_overlap is decoupled (answers through the response sender), pb_async_default is not; the
same file serves both.
"""

import asyncio
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.event = None
        config = json.loads(args["model_config"])
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(config)

    async def execute(self, requests):
        responses = []
        for request in requests:
            role = pb_utils.get_input_tensor_by_name(request, "ROLE").as_numpy().reshape(-1)[0].decode()
            timeout = float(pb_utils.get_input_tensor_by_name(request, "TIMEOUT").as_numpy().reshape(-1)[0])
            if role == "wait":
                self.event = asyncio.Event()
                print("PB_ASYNC waiting", flush=True)
                # A bounded poll, not asyncio.wait_for: its timeout error differs across Pythons.
                deadline = time.monotonic() + timeout
                while not self.event.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                ok = self.event.is_set()
                self.event = None
            else:
                ok = self.event is not None
                if ok:
                    self.event.set()
            response = pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("OK", np.array([ok], dtype=np.bool_))])
            if self.decoupled:
                request.get_response_sender().send(
                    response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                responses.append(response)
        return None if self.decoupled else responses
