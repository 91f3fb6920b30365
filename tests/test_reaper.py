"""The run's reaper against a stand-in engine (the Docker API's two calls it makes, on a unix socket):
what binds it to the run, without a Docker engine. The real engine: tests/test_docker.py (SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import ROOT
from harness import processes
from harness.servers import reaper

pytestmark = pytest.mark.fast  # no engine, no server

RUN = f"test-{os.getpid()}-"  # run ids of these tests alone (a reaper is found by its run id)

OWNER = """
import os, sys, time
from harness import processes
from harness.servers import reaper
reaper.start(sys.argv[1])
print(os.getpid(), flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)
time.sleep(600)
"""


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        self.containers: dict[str, str] = {}  # id -> run label
        self.deleted: list[str] = []
        super().__init__(str(path), Handler)


class Handler(BaseHTTPRequestHandler):
    server: FakeEngine

    def address_string(self) -> str:  # a unix socket has no host
        return "engine"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlparse(self.path)
        labels = json.loads(urllib.parse.parse_qs(url.query)["filters"][0])["label"]
        wanted = {label.partition("=")[2] for label in labels}
        self._answer(200, [{"Id": c} for c, run in self.server.containers.items() if run in wanted])

    def do_DELETE(self) -> None:  # noqa: N802
        container = urllib.parse.urlparse(self.path).path.rsplit("/", 1)[1]
        self.server.containers.pop(container, None)
        self.server.deleted.append(container)
        self._answer(204, {})


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngine]:
    sock = Path(f"/tmp/triton-matrix-reaper-{os.getpid()}-{tmp_path.name[-20:]}.sock")
    fake = FakeEngine(sock)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    yield fake
    fake.shutdown()
    fake.server_close()
    sock.unlink(missing_ok=True)


def owner(run: str, how: str, **popen: object) -> tuple[subprocess.Popen[str], int]:
    """A process that starts the reaper of ``run``; returns it and the pid it says it has."""
    proc = subprocess.Popen([sys.executable, "-c", OWNER, run, how], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            **popen)  # type: ignore[call-overload]
    return proc, int(proc.stdout.readline())


def reapers(run: str) -> list[int]:
    return [pid for pid, args in processes.command_lines().items()
            if b"harness.servers.reaper" in args and run.encode() in args]


def wait_for(condition, what: str, limit: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigkill_of_the_owner_removes_the_runs_containers_only(engine: FakeEngine) -> None:
    engine.containers.update({"a": RUN + "1", "b": RUN + "1", "other": RUN + "2"})
    proc, _ = owner(RUN + "1", "stay")
    wait_for(lambda: reapers(RUN + "1"), "the reaper started")
    time.sleep(0.3)
    assert engine.deleted == [], "nothing is removed while the run lives"
    proc.kill()
    proc.wait()
    wait_for(lambda: "a" not in engine.containers and "b" not in engine.containers, "the run's containers removed")
    engine.containers["c"] = RUN + "1"  # made by a process of the run still stopping
    wait_for(lambda: "c" not in engine.containers, "a container made after the kill removed too")
    wait_for(lambda: not reapers(RUN + "1"), "the reaper ends once the run stays quiet")
    assert engine.containers == {"other": RUN + "2"}


def test_a_normal_exit_ends_the_reaper_at_once(engine: FakeEngine) -> None:
    proc, _ = owner(RUN + "3", "exit")
    proc.wait()
    wait_for(lambda: not reapers(RUN + "3"), "the reaper is gone", limit=reaper.SETTLE_S)


def test_the_death_of_the_owners_parent_is_enough(engine: FakeEngine) -> None:
    """nox SIGKILLed: the harness below it still stops gracefully, its reaper does not wait for that."""
    engine.containers["d"] = RUN + "4"
    middle = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time
p = subprocess.Popen([sys.executable, "-c", {OWNER!r}, {RUN + "4"!r}, "stay"], cwd={str(ROOT)!r}, stdout=subprocess.PIPE,
                     text=True, start_new_session=True)
print(p.pid, p.stdout.readline().strip(), flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
    child = int(middle.stdout.readline().split()[0])
    try:
        wait_for(lambda: reapers(RUN + "4"), "the reaper started")
        middle.send_signal(signal.SIGKILL)
        middle.wait()
        wait_for(lambda: "d" not in engine.containers, "removed while the owner itself still runs")
        assert os.path.exists(f"/proc/{child}")
    finally:
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: not reapers(RUN + "4"), "the reaper ends once its owner is gone too")
