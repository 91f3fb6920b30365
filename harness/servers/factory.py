"""Make the servers of a cell: the cell's own, a spare one for a case (``triton_factory``).

Kept apart from the pytest fixtures (as pytest-docker's ``get_docker_services``): :func:`serve` is a
context manager any caller can use; the plugin only wires it in.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import repository
from harness.compat import KW_ONLY
from harness.matrix import Cell, Release
from harness.matrix.settings import DockerSettings, Settings
from harness.servers import Server


@dataclass(frozen=True, **KW_ONLY)
class CellServers:
    """What every server of one cell shares: the rendered repository, the built backends, settings."""

    cell: Cell
    release: Release
    settings: Settings
    docker: DockerSettings
    repository: Path
    custom_backends: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def prepare(cls, cell: Cell, release: Release, settings: Settings, docker: DockerSettings,
                case_roots: list[Path], workdir: Path) -> CellServers:
        """Render the case roots' models into one repository and build their custom backends (what the
        worker's cell spec, ``harness.spec``, gives: no matrix file is read here)."""
        repo = workdir / "repository"
        if not repo.exists():
            repository.render(case_roots, cell, repo)
        backends = repository.build_backends(case_roots, workdir / "custom-backends")
        return cls(cell=cell, release=release, settings=settings, docker=docker, repository=repo,
                   custom_backends=backends)

    def create(self, *, log_path: Path, workdir: Path, extra_args: tuple[str, ...] = ()) -> Server:
        """A server of the cell's runner (not started)."""
        settings = self.settings
        common = {"log_path": log_path, "start_timeout": settings.start_timeout,
                  "load_timeout": settings.load_timeout, "stop_timeout": settings.stop_timeout,
                  "repository": self.repository, "extra_args": extra_args, "extra_backends": self.custom_backends}
        if self.cell.runner == "local":
            from harness.servers.local import LocalServer

            # The pytest process runs in the cell's venv: that venv is the models' environment too.
            return LocalServer(venv=Path(sys.prefix), python=self.cell.python,
                               python_libdir=Path(sys.base_prefix) / "lib", workdir=workdir, **common)
        from harness.servers.docker import DockerServer

        return DockerServer(cell=self.cell, release=self.release, settings=self.docker, **common)

    @contextlib.contextmanager
    def serve(self, *, log_path: Path, workdir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
        """A started server, stopped (nothing left behind) when the block ends, however it ends."""
        server = self.create(log_path=log_path, workdir=workdir, extra_args=extra_args)
        try:
            server.start_and_wait()
            yield server
        finally:
            server.stop()
