"""The docker runner against a real Docker engine: images, containers, isolation, cleanup.

CI installs and starts dockerd (.ci/run); there, a missing engine fails these tests instead of
skipping them.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import docker.errors
import numpy as np
import pytest

from conftest import ROOT, require, run_harness
from harness.matrix import images
from harness import matrix as matrix_mod
from harness.client import Client
from harness.servers import NotApplicable, ServerError
from harness.matrix.settings import DockerSettings
from harness.servers import docker as docker_runner
from harness.servers import reaper

CELL = matrix_mod.Cell(triton="24.10", backend="python", instance_kind="cpu", python="3.11", runner="docker")
ADD_SUB = ROOT / "cases" / "basics" / "models" / "add_sub"


@pytest.fixture(scope="module")
def engine():
    try:
        client = docker_runner.engine()
    except ServerError as exc:
        require(False, f"no Docker engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def release() -> matrix_mod.Release:
    return matrix_mod.load(ROOT / "matrix.toml").release("24.10")


@pytest.fixture(scope="module")
def image(engine, release) -> str:
    return images.server_image(engine, release, "offline")[0]


@pytest.fixture
def run_label(monkeypatch: pytest.MonkeyPatch) -> str:
    value = uuid.uuid4().hex[:12]
    monkeypatch.setenv(docker_runner.RUN_ID_ENV, value)
    return value


def containers_of(engine, run: str) -> list:
    """The run's containers; one the reaper removes while they are listed is not one of them."""
    return engine.containers.list(all=True, filters={"label": f"{docker_runner.LABEL}.run={run}"},
                                  ignore_removed=True)


def repo_with_add_sub(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ADD_SUB, repo / "add_sub")
    config = repo / "add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace("${kind}", "KIND_CPU"))
    return repo


def server(engine, release, tmp_path: Path, cell: matrix_mod.Cell = CELL) -> docker_runner.DockerServer:
    return docker_runner.DockerServer(cell=cell, release=release, repository=repo_with_add_sub(tmp_path),
                                      log_path=tmp_path / "server.log", client=engine, stop_timeout=5)


def test_unreachable_engine_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ServerError) as info:
        docker_runner.engine()
    message = str(info.value)
    assert message.startswith("unix:///nonexistent/docker.sock: the Docker engine is not reachable")
    assert "start dockerd" in message and "\n" not in message


def test_image_is_built_once_then_found_by_its_hash(engine, release, image, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(images, "_build", lambda *a, **k: calls.append(a))
    started = time.monotonic()
    tag, python = images.server_image(engine, release, "offline")
    assert tag == image and python == "3.11"
    assert calls == [], "a second run builds nothing"
    assert time.monotonic() - started < 5
    labels = engine.images.get(tag).labels
    assert labels["org.triton-matrix.python"] == "3.11"


def test_container_serves_and_leaves_nothing(engine, release, image, run_label, tmp_path) -> None:
    with server(engine, release, tmp_path) as srv:
        assert srv.version == "2.51.0", "same server version as the local runner gives for 24.10"
        assert srv.load("add_sub").error is None
        client = Client("http", srv.http_client())
        a = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(client.infer("add_sub", {"INPUT0": a, "INPUT1": a})["OUTPUT1"], a - a)
        client.close()
        assert len(containers_of(engine, run_label)) == 1
    assert containers_of(engine, run_label) == [], "stopped and removed"
    assert "successfully loaded 'add_sub'" in (tmp_path / "server.log").read_text(), "log streamed to file"


class LaggingLogServer(docker_runner.DockerServer):
    """A container whose log the engine hands over a second late (a busy engine, a busy host). The engine
    copies stdout and stderr apart, each in its order: ``LATE`` names the streams that lag."""

    LAG_S = 1.0
    LATE = ("stdout", "stderr")

    def _stream_log(self) -> None:
        lock = threading.Lock()

        def copy(stream: str) -> None:
            lag = self.LAG_S if stream in self.LATE else 0.0
            received: queue.Queue[tuple[float, bytes | None]] = queue.Queue()

            def write_late() -> None:
                while (item := received.get())[1] is not None:
                    time.sleep(max(0.0, item[0] + lag - time.monotonic()))
                    with lock, open(self.log_path, "ab") as fh:
                        fh.write(item[1])

            writer = threading.Thread(target=write_late, daemon=True)
            writer.start()
            for chunk in self.container.logs(stream=True, follow=True, stdout=stream == "stdout",
                                             stderr=stream == "stderr"):
                received.put((time.monotonic(), chunk))
            received.put((time.monotonic(), None))
            writer.join()

        copiers = [threading.Thread(target=copy, args=(stream,), daemon=True) for stream in ("stdout", "stderr")]
        for copier in copiers:
            copier.start()
        for copier in copiers:
            copier.join()


class LaggingStderrServer(LaggingLogServer):
    """Its stderr (where the server logs) lags, its stdout does not: nothing orders one after the other."""

    LATE = ("stderr",)


@pytest.mark.parametrize("lagging", [LaggingLogServer, LaggingStderrServer], ids=["output", "stderr"])
def test_a_loads_log_holds_the_lines_it_wrote_though_the_engine_copies_them_late(
        engine, release, image, run_label, tmp_path, monkeypatch, lagging) -> None:
    """A refused config's parser message is in its load's log even where the engine's copy of the
    container's output lags, all of it or its stderr alone; without the log sync the same load's log
    misses it (the control)."""
    repo = repo_with_add_sub(tmp_path)
    shutil.copytree(ROOT / "cases" / "basics" / "models" / "invalid_dtype", repo / "invalid_dtype")
    with lagging(cell=CELL, release=release, repository=repo, log_path=tmp_path / "server.log",
                 client=engine, stop_timeout=5) as srv:
        with monkeypatch.context() as unsynced:
            unsynced.setattr(srv, "sync_log", lambda: None)
            control = srv.load("invalid_dtype")
        assert control.error is not None and "TYPE_FOO" not in control.log, "the lag did not show: no control"
        synced = srv.load("invalid_dtype")
        assert synced.error is not None
        assert "TYPE_FOO" in synced.log, synced.log[-2000:]


def test_isolation_from_the_engines_inspect_data(engine, release, image, run_label, tmp_path) -> None:
    with server(engine, release, tmp_path) as srv:
        data = srv.client.api.inspect_container(srv.container.id)
        host = data["HostConfig"]
        assert host["Privileged"] is False
        assert not host.get("CapAdd")
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        mounts = [m for m in data["Mounts"] if m["Destination"] == "/models"]
        assert len(mounts) == 1 and mounts[0]["RW"] is False
        for port, bindings in data["NetworkSettings"]["Ports"].items():
            assert bindings, port
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, f"{port} is published beyond loopback"
        assert host["ShmSize"] == 256 * 1024 * 1024
        denied = srv.container.exec_run(["sh", "-c", "touch /models/add_sub/written"])
        assert denied.exit_code != 0 and b"Read-only file system" in denied.output
        assert not (tmp_path / "repo" / "add_sub" / "written").exists()


def test_crash_in_the_container_is_reported_and_cleaned(engine, release, image, run_label, tmp_path) -> None:
    with server(engine, release, tmp_path) as srv:
        srv.container.kill()
        deadline = time.monotonic() + 20
        while srv.exit_status() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(ServerError, match=r"ended during the cell \(exit code 137\)"):
            srv.check_alive()
    assert containers_of(engine, run_label) == []


def test_leftovers_of_a_dead_run_are_removed(engine, release, image, run_label, tmp_path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = engine.containers.create(image, ["sleep", "600"], labels={
        docker_runner.LABEL: "1", f"{docker_runner.LABEL}.run": "crashed",
        f"{docker_runner.LABEL}.owner": f"{os.uname().nodename}:{dead.pid}"})
    try:
        with server(engine, release, tmp_path):
            pass
        with pytest.raises(Exception):
            engine.containers.get(leftover.id)
    finally:
        try:
            leftover.remove(force=True)
        except Exception:  # noqa: BLE001 - already removed, as it should be
            pass


def test_gpu_cell_on_an_engine_without_gpu_is_not_applicable(engine, release, image, run_label, tmp_path):
    gpu = matrix_mod.Cell(triton="24.10", backend="python", instance_kind="gpu", python="3.11", runner="docker")
    srv = server(engine, release, tmp_path, cell=gpu)
    try:
        with pytest.raises(NotApplicable) as info:
            srv.start()
    finally:
        srv.stop()
    assert str(info.value).startswith("the Docker engine gives no GPU: ")
    assert "\n" not in str(info.value)
    assert containers_of(engine, run_label) == []


def test_image_python_must_match_the_cell(engine, release, image, tmp_path) -> None:
    py312 = matrix_mod.Cell(triton="24.10", backend="python", instance_kind="cpu", python="3.12", runner="docker")
    with pytest.raises(NotApplicable, match="runs Python 3.11, not 3.12"):
        server(engine, release, tmp_path, cell=py312).start()


def test_docker_cells_match_local_cells_side_by_side(engine, image, tmp_path: Path) -> None:
    """nox -s matrix -- --runner docker, then the local cell into the same report: same results."""
    run = uuid.uuid4().hex[:12]
    reports = tmp_path / "reports"
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "cases" / "basics", lib / "basics", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, docker_runner.RUN_ID_ENV: run}
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "matrix", "--", "--runner=docker", "--cell=*cpu-py3.11*",
         f"--reports={reports}", f"--cases={lib}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    local = run_harness("cell", "24.10-python-cpu-py3.11", f"--reports={reports}", f"--cases={lib}")
    assert local.returncode == 0, local.stdout[-2000:]
    assert run_harness("report", f"--reports={reports}").returncode == 0
    data = json.loads((reports / "compat.json").read_text())
    by = {}
    for r in data["results"]:
        if r["case"].startswith("basics/"):
            by.setdefault(r["case"], {})[r["cell"]] = r["state"]
    assert by, "the built-in basics ran"
    for case, states in by.items():
        assert states["24.10-python-cpu-py3.11-docker"] == states["24.10-python-cpu-py3.11"] == "passed", case
    docker_cell = {c["id"]: c for c in data["cells"]}["24.10-python-cpu-py3.11-docker"]
    assert docker_cell["runner"] == "docker" and docker_cell["server_version"] == "2.51.0"
    assert containers_of(engine, run) == [], "no container of the run is left"


LIBRARY_CELLS = ("24.10-python-cpu-py3.11-numpy1", "24.10-custom-cpu-py3.11-numpy1")  # of the repository's matrix


def test_the_whole_library_gives_the_same_states_in_docker_as_locally(engine, image, tmp_path) -> None:
    """Every case of the built-in library on 24.10 py3.11 (python and custom cells) ends in the same state
    in the docker cell as in the local one, case by case: the cases that read the server's stub
    processes and shared memory read them in its container (``triton.inside``), none is not applicable
    there for being in a container."""
    from bench import results

    run = uuid.uuid4().hex[:12]
    reports = tmp_path / "reports"
    for cell_id in LIBRARY_CELLS:
        for twin in (cell_id, f"{cell_id}-docker"):
            done = run_harness("cell", twin, f"--reports={reports}", f"--matrix={ROOT / 'matrix.toml'}",
                               env={docker_runner.RUN_ID_ENV: run}, timeout=1500)
            assert (reports / "junit" / f"{twin}.xml").is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    run_harness("report", f"--reports={reports}", f"--matrix={ROOT / 'matrix.toml'}")
    data = json.loads((reports / "compat.json").read_text())
    local, docker = results.runner_twins(data)
    assert {r["cell"] for r in local["results"]} == set(LIBRARY_CELLS)
    local_said, docker_said = ({(r["cell"], r["case"]): r.get("message") for r in run["results"]} for run in (local, docker))
    differ = [f"{d.cell} {d.case}: local {d.idle} ({local_said.get((d.cell, d.case))}), "
              f"docker {d.loaded} ({docker_said.get((d.cell, d.case))})" for d in results.differing(local, docker)]
    assert not differ, "\n".join(differ)
    for_the_runner = [r for r in docker["results"] if "needs runner" in (r.get("message") or "")]
    assert not for_the_runner, for_the_runner
    lifecycle = [r for r in docker["results"] if r["case"].startswith("python_backend/test_lifecycle.py")
                 and r["cell"] == LIBRARY_CELLS[0]]
    assert lifecycle and not [r for r in lifecycle if r["state"] == "not-applicable"], lifecycle
    assert containers_of(engine, run) == [], "no container of the run is left"


def test_hardened_profile_from_docker_inspect(engine, release, image, run_label, tmp_path) -> None:
    """Every item of the cell profile, read back from the engine (docker inspect) and from inside."""
    limits = DockerSettings(shm_size="64m", tmp_size="128m", memory="1g", cpus=1.5, pids_limit=512)
    repo = repo_with_add_sub(tmp_path)
    repo.chmod(0o700)  # as mkdtemp makes it: uid 1000 must still read the models
    with docker_runner.DockerServer(cell=CELL, release=release, repository=repo, settings=limits,
                                    log_path=tmp_path / "server.log", client=engine, stop_timeout=5) as srv:
        assert srv.load("add_sub").error is None, "the repository is readable by uid 1000"
        data = srv.client.api.inspect_container(srv.container.id)
        host = data["HostConfig"]
        assert data["Config"]["User"] == "1000:1000"
        assert data["State"]["Running"] and data["State"]["OOMKilled"] is False
        assert host["ReadonlyRootfs"] is True
        assert set(host["Tmpfs"]) == {"/tmp"}
        assert {"exec", "size=128m"} <= set(host["Tmpfs"]["/tmp"].split(",")) and "noexec" not in host["Tmpfs"]["/tmp"]
        assert host["ShmSize"] == 64 * 1024 ** 2
        assert host["Memory"] == host["MemorySwap"] == 1024 ** 3
        assert host["NanoCpus"] == 1_500_000_000
        assert host["PidsLimit"] == 512
        assert host["Privileged"] is False and not host.get("CapAdd") and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"], "no seccomp=unconfined: the default profile"
        assert not host.get("DeviceRequests"), "no GPU for a cpu cell"
        for port, bindings in data["NetworkSettings"]["Ports"].items():
            assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, port

        def inside(script: str) -> str:
            done = srv.container.exec_run(["sh", "-c", script])
            return done.output.decode().strip() if done.exit_code == 0 else f"exit {done.exit_code}: {done.output!r}"

        assert inside("id -u; id -un") == "1000\ntriton-server"
        status = dict(line.split(":\t", 1) for line in inside("cat /proc/1/status").splitlines() if ":\t" in line)
        assert status["Uid"].split()[0] == "1000"
        assert status["Seccomp"].strip() == "2", "seccomp filter mode: the engine's default profile"
        assert status["NoNewPrivs"].strip() == "1"
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
        assert "Read-only file system" in inside("touch /etc/written || true 2>&1; touch /etc/written 2>&1")
        assert inside("printf '#!/bin/sh\\necho ran' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh") == "ran"
        assert inside("df -k /dev/shm | tail -1 | awk '{print $2}'") == str(64 * 1024)
    gpu = matrix_mod.Cell(triton="24.10", backend="python", instance_kind="gpu", python="3.11", runner="docker")
    assert docker_runner.DockerServer(cell=gpu, release=release, repository=repo, log_path=tmp_path / "g.log",
                                      client=engine).profile()["device_requests"], "GPUs in a gpu cell"


def limited_server(engine, release, tmp_path: Path, **limits) -> docker_runner.DockerServer:
    return docker_runner.DockerServer(cell=CELL, release=release, repository=repo_with_add_sub(tmp_path),
                                      settings=DockerSettings(**limits), log_path=tmp_path / "server.log",
                                      client=engine, stop_timeout=5, start_timeout=60)


def test_a_server_at_its_memory_limit_fails_saying_so(engine, release, image, run_label, tmp_path) -> None:
    srv = limited_server(engine, release, tmp_path, memory="24m", shm_size="4m", tmp_size="4m")
    with pytest.raises(docker_runner.MemoryLimitReached) as info:
        with srv:
            srv.load("add_sub")  # where the server itself still fit, its stub does not
    assert "reached its memory limit 24m" in str(info.value)
    assert containers_of(engine, run_label) == []


def test_a_server_at_its_pids_limit_fails_saying_so(engine, release, image, run_label, tmp_path) -> None:
    srv = limited_server(engine, release, tmp_path, pids_limit=16)
    with pytest.raises(docker_runner.PidsLimitReached) as info:
        with srv:
            srv.load("add_sub")
    assert "reached its pids limit 16" in str(info.value)
    assert containers_of(engine, run_label) == []


@pytest.mark.parametrize("killed", ["top", "tree"])
def test_sigkill_of_the_run_leaves_no_container(engine, image, tmp_path, killed: str) -> None:
    """The reaper: SIGKILL of ``python -m harness cell`` of a docker cell, mid-cell; within 15 s no
    container of the run is left (the engine is asked, not the harness). ``top``: the top process
    alone (its children get their death signal and may still clean up); ``tree``: its whole process
    group at once (a CI runner that kills the job, the OOM killer of its cgroup), where only the
    reaper is left to do it: without it the container stays (checked by hand: still there after 40 s)."""
    run = uuid.uuid4().hex[:12]
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "cases" / "basics", lib / "basics", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != reaper.REAPER_ENV}
    top = subprocess.Popen(
        [sys.executable, "-m", "harness", "cell", "24.10-python-cpu-py3.11-docker", f"--reports={tmp_path / 'r'}",
         f"--cases={lib}"], cwd=ROOT, env={**env, docker_runner.RUN_ID_ENV: run},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not [c for c in containers_of(engine, run) if c.status == "running"]:
            assert top.poll() is None, "the cell ended before a container of it ran"
            assert time.monotonic() < deadline, "no container of the cell ran"
            time.sleep(0.2)
        if killed == "tree":
            os.killpg(top.pid, signal.SIGKILL)
        else:
            top.kill()
        top.wait()
        killed = time.monotonic()
        while containers_of(engine, run) and time.monotonic() - killed < 15:
            time.sleep(0.2)
        assert containers_of(engine, run) == [], "containers of the run left 15 s after its SIGKILL"
    finally:
        if top.poll() is None:
            top.kill()
        for container in containers_of(engine, run):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):  # the reaper's removal won
                container.remove(force=True)
