"""The tritonserver command line, written once for every runner (as PyTriton's ``TritonServerConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.compat import KW_ONLY


# The environment every server and its python backend stubs get, unless the user set these already.
# A stub starts a Python that imports numpy; OpenBLAS's thread pool (a thread per CPU, with its
# buffers) took more CPU than the rest of that import, about 0.1 s a stub, and a cell starts some 240.
SERVER_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def server_env(inherited: dict[str, str]) -> dict[str, str]:
    """:data:`SERVER_ENV` where ``inherited`` does not say otherwise."""
    return {name: inherited.get(name, value) for name, value in SERVER_ENV.items()}


@dataclass(frozen=True, **KW_ONLY)
class Ports:
    http: int
    grpc: int
    metrics: int


@dataclass(frozen=True, **KW_ONLY)
class ServerOptions:
    """What every server of a cell is started with.

    ``address``: where it listens (loopback for a local server; every address inside a container,
    whose ports are published on the host's loopback only). ``stop_timeout``: the harness's bound on
    a stop; the server's own ``--exit-timeout-secs`` is shorter, so it gives up on stuck models first.
    """

    repository: str
    backend_directory: str
    ports: Ports
    address: str = "127.0.0.1"
    stop_timeout: float = 10.0
    python_shm_prefix: str | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def exit_timeout_s(self) -> int:
        return max(1, int(self.stop_timeout) - 2)

    def to_args(self) -> list[str]:
        args = [
            f"--model-repository={self.repository}",
            f"--backend-directory={self.backend_directory}",
            "--model-control-mode=explicit",
            "--strict-readiness=true",
            f"--http-address={self.address}",
            f"--grpc-address={self.address}",
            f"--metrics-address={self.address}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
        ]
        if self.python_shm_prefix:
            args.append(f"--backend-config=python,shm-region-prefix-name={self.python_shm_prefix}")
        return [*args, *self.extra_args]
