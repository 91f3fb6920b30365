"""auto_complete_config raises: the load must fail with this message."""


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        raise ValueError("pb_autocomplete_raises: cannot work out the inputs of this model")

    def execute(self, requests):
        raise AssertionError("never reached: the load failed")
