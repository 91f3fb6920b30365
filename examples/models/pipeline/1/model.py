import numpy as np
import triton_python_backend_utils as pb_utils


def _call(model, name, array, output):
    request = pb_utils.InferenceRequest(model_name=model, requested_output_names=[output],
                                        inputs=[pb_utils.Tensor(name, array)])
    response = request.exec()
    if response.has_error():
        raise pb_utils.TritonModelException(f"{model}: {response.error().message()}")
    return pb_utils.get_output_tensor_by_name(response, output).as_numpy()


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            ids = _call("tokenizer", "TEXT", text.reshape(1, 1), "IDS")
            score = _call("scorer", "FEATURES", ids[0, :4].astype(np.float32), "SCORE")
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", score)]))
        return responses
