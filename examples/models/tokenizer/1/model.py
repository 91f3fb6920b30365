import numpy as np
import triton_python_backend_utils as pb_utils

WORDS = 8


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            rows = text.reshape(text.shape[0], -1)
            ids = np.zeros((rows.shape[0], WORDS), dtype=np.int32)
            for b, row in enumerate(rows):
                for i, word in enumerate(row[0].decode("utf-8").split()[:WORDS]):
                    ids[b, i] = sum(word.encode("utf-8")) % 1000 + 1
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("IDS", ids)]))
        return responses
