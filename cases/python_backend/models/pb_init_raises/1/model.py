"""initialize raises: the load must fail and say why (the message below)."""


class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("pb_init_raises: refusing to start, the weights file is missing")

    def execute(self, requests):
        raise AssertionError("never reached: initialize failed")
