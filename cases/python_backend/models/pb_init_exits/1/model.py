"""initialize exits the interpreter (sys.exit): the load must fail with the stub's message."""

import sys


class TritonPythonModel:
    def initialize(self, args):
        sys.exit("pb_init_exits: exiting from initialize on purpose")

    def execute(self, requests):
        raise AssertionError("never reached: initialize exited")
