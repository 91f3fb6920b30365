"""Faults: a server killed mid-cell, a dying stub, a hanging model, a taken port, Ctrl-C/SIGTERM,
two runs at once. Each against the real server; each checks that a report is written, the reason
is named, and no server or stub process is left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT, run_harness, run_processes, triton_processes
from harness import processes
from harness.matrix import envs
from harness.layout import cell_logs
from harness.servers import ServerError
from test_end_to_end import MATRIX, write_case_library
from test_local_server import server_for

HANGING_MODEL = '''
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(600)  # the fault under test: a model that never answers
        return [pb_utils.InferenceResponse(output_tensors=[]) for _ in requests]
'''


@pytest.fixture
def marker() -> str:
    return uuid.uuid4().hex


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def add_hanging_model(lib: Path) -> None:
    model = lib / "area" / "models" / "e2e_hang"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(textwrap.dedent('''
        name: "e2e_hang"
        backend: "python"
        max_batch_size: 0
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        instance_group [ { kind: ${kind} count: 1 } ]
        '''))
    (model / "1" / "model.py").write_text(HANGING_MODEL)


def quick_then_hanging(lib: Path) -> Path:
    """A case library of a case that passes at once, then one whose model never answers."""
    write_case_library(lib, '''
        import numpy as np
        import pytest

        @pytest.mark.models("e2e_add_sub")
        def test_1_quick(http_client):
            assert http_client.is_model_ready("e2e_add_sub")

        @pytest.mark.models("e2e_hang")
        def test_2_hangs(http_client):
            http_client.infer("e2e_hang", {"INPUT0": np.ones(4, dtype=np.float32)})
        ''')
    add_hanging_model(lib)
    return lib


@contextlib.contextmanager
def killed_at_the_end(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``proc`` for the block, killed after it if still running (a failed wait leaves nothing behind)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def junit_cases(path: Path) -> dict[str, str]:
    """case id -> outcome tag (passed / failure / error / skipped) of a cell's JUnit file."""
    out = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        case = next((p.get("value") for p in tc.iter("property") if p.get("name") == "case"), tc.get("name"))
        tags = [c.tag for c in tc if c.tag in ("failure", "error", "skipped")]
        out[case] = tags[0] if tags else "passed"
    return out


def served_around(middle: str) -> str:
    """A case library's module: a case that is served, ``middle`` (the fault), then one that must be
    served again (by the same cell, after the fault)."""
    return textwrap.dedent('''
        import os
        import signal
        import threading

        import numpy as np
        import pytest
        import tritonclient.grpc as grpcclient

        A = np.ones(4, dtype=np.float32)

        @pytest.mark.models("e2e_add_sub")
        def test_1_serves(client):
            assert client.infer("e2e_add_sub", {"INPUT0": A, "INPUT1": A})["OUTPUT0"].tolist() == [2] * 4
        ''') + textwrap.dedent(middle) + textwrap.dedent('''
        @pytest.mark.models("e2e_add_sub")
        def test_3_after(client):
            assert client.infer("e2e_add_sub", {"INPUT0": A, "INPUT1": A})["OUTPUT0"].tolist() == [2] * 4
        ''')


def test_server_sigkilled_mid_case_errors_that_case_and_the_cell_goes_on(tmp_path: Path, marker: str) -> None:
    """One crash costs one case: the case in flight is an error naming the signal, the server is
    started again, the later cases of the cell pass, and the other cells run."""
    lib = write_case_library(tmp_path / "lib", served_around('''
        @pytest.mark.models("e2e_hang")
        def test_2_server_killed_while_waiting(triton, http_client, cell):
            if cell.python != "3.11":
                return
            threading.Timer(1.0, os.kill, (triton.pid, signal.SIGKILL)).start()
            http_client.infer("e2e_hang", {"INPUT0": A})
        '''))
    add_hanging_model(lib)
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX.replace('python = ["3.11"]', 'python = ["3.11", "3.12"]'))
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "matrix", "--", f"--matrix={matrix}", f"--reports={reports}",
         f"--cases={lib}", "--cell=*cpu*", "--jobs=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "TRITON_MATRIX_TEST": marker},
        check=False)
    assert done.returncode == 1, done.stdout[-3000:]
    data = json.loads((reports / "compat.json").read_text())
    cells = {c["id"]: c for c in data["cells"]}
    assert cells["24.10-python-cpu-py3.11"]["state"] == "error"
    assert cells["24.10-python-cpu-py3.12"]["state"] == "passed", "the remaining cell ran and passed"
    rows = {(r["case"], r["cell"]): r for r in data["results"]}
    killed = rows[("area/test_area.py::test_2_server_killed_while_waiting", "24.10-python-cpu-py3.11")]
    assert killed["state"] == "error"
    assert killed["message"].startswith("tritonserver ended during this case (killed by SIGKILL)"), killed
    for protocol in ("http", "grpc"):
        after = rows[(f"area/test_area.py::test_3_after[{protocol}]", "24.10-python-cpu-py3.11")]
        assert after["state"] == "passed", after
    assert (reports / "compat.html").exists() and data["partial"] is False
    assert not triton_processes(marker)


def test_a_worker_sigkilled_mid_case_loses_only_that_case(tmp_path: Path, marker: str) -> None:
    """A case that kills its own pytest worker: its server and stubs go with it, that case is an error
    naming the signal, and a replacement worker (a server of its own) runs every other case of the
    module, the ones the dead worker had finished included (their results died with it)."""
    lib = write_case_library(tmp_path / "lib", served_around('''
        @pytest.mark.models("e2e_add_sub")
        def test_2_kills_its_worker(triton):
            os.kill(os.getpid(), signal.SIGKILL)
        '''))
    reports = tmp_path / "reports"
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
                       f"--reports={reports}", env={"TRITON_MATRIX_TEST": marker}, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "worker 1 replaces worker 0, which died (killed by SIGKILL)" in done.stderr, done.stderr[-3000:]
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 1
    data = json.loads((reports / "compat.json").read_text())
    states = {r["case"]: (r["state"], r["message"]) for r in data["results"]}
    state, message = states.pop("area/test_area.py::test_2_kills_its_worker")
    assert state == "error" and message.startswith("worker 0 died during this case (killed by SIGKILL)"), message
    assert {case: s for case, (s, _) in states.items()} == {
        f"area/test_area.py::test_{n}[{p}]": "passed" for n in ("1_serves", "3_after") for p in ("http", "grpc")}
    assert data["partial"] is False
    assert not triton_processes(marker)


def test_case_blocked_in_the_grpc_core_times_out_and_the_next_case_passes(tmp_path: Path, marker: str) -> None:
    """A raw gRPC call without a client timeout to a model that never answers: pytest-timeout's alarm
    cannot interrupt it; the watchdog ends the wait at the deadline and the cell goes on."""
    lib = write_case_library(tmp_path / "lib", served_around('''
        @pytest.mark.models("e2e_hang")
        def test_2_blocks_in_grpc_core(triton):
            raw = grpcclient.InferenceServerClient(triton.grpc_url)
            tensor = grpcclient.InferInput("INPUT0", [4], "FP32")
            tensor.set_data_from_numpy(A)
            try:
                raw.infer("e2e_hang", [tensor])  # no client_timeout: only the watchdog ends this
            except Exception:
                pass  # a case that swallows the error is a timeout all the same
        '''))
    add_hanging_model(lib)
    matrix = tmp_path / "matrix.toml"
    case_timeout = 6
    matrix.write_text(MATRIX.replace("case_timeout = 60", f"case_timeout = {case_timeout}\nload_timeout = 5\nstop_timeout = 4"))
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
                       f"--reports={reports}", env={"TRITON_MATRIX_TEST": marker}, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:]
    junit = ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot()
    times = {tc.get("name"): float(tc.get("time")) for tc in junit.iter("testcase")}
    assert times["test_2_blocks_in_grpc_core"] < case_timeout + 10, times
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 1
    data = json.loads((reports / "compat.json").read_text())
    states = {r["case"]: (r["state"], r["message"]) for r in data["results"]}
    state, message = states["area/test_area.py::test_2_blocks_in_grpc_core"]
    assert state == "timeout" and message.startswith("Timeout: no progress within the case's 6 s deadline (load average"), message
    assert states["area/test_area.py::test_3_after[grpc]"][0] == "passed"
    assert states["area/test_area.py::test_3_after[http]"][0] == "passed"
    assert not triton_processes(marker)


def test_fixture_blocked_in_setup_or_teardown_times_out_and_the_next_case_passes(tmp_path: Path, marker: str) -> None:
    """A fixture that waits on the server without a timeout blocks a worker as surely as a case does:
    in its setup (an infer) and in its teardown (a gRPC stream's stop waits for the answers still due).
    The watchdog keeps the deadline of every phase, and each is a timeout naming the phase."""
    lib = write_case_library(tmp_path / "lib", served_around('''
        def _hang_tensor():
            tensor = grpcclient.InferInput("INPUT0", [4], "FP32")
            tensor.set_data_from_numpy(A)
            return tensor

        @pytest.fixture
        def answered_in_setup(triton):
            triton.load("e2e_hang")
            raw = grpcclient.InferenceServerClient(triton.grpc_url)
            raw.infer("e2e_hang", [_hang_tensor()])  # no client_timeout: only the watchdog ends this
            yield

        @pytest.fixture
        def stream_held_open(triton):
            raw = grpcclient.InferenceServerClient(triton.grpc_url)
            raw.start_stream(callback=lambda result, error: None)
            yield raw
            raw.stop_stream()  # waits for the answer still due: only the watchdog ends this

        def test_2a_setup_blocks(answered_in_setup):
            pass

        @pytest.mark.models("e2e_hang")
        def test_2b_teardown_blocks(stream_held_open):
            stream_held_open.async_stream_infer("e2e_hang", [_hang_tensor()])
        '''))
    add_hanging_model(lib)
    matrix = tmp_path / "matrix.toml"
    case_timeout = 6
    matrix.write_text(MATRIX.replace("case_timeout = 60", f"case_timeout = {case_timeout}\nload_timeout = 5\nstop_timeout = 4"))
    reports = tmp_path / "reports"
    started = time.monotonic()
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
                       f"--reports={reports}", env={"TRITON_MATRIX_TEST": marker}, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:]
    assert time.monotonic() - started < 240, "a blocked fixture held the cell"
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 1
    data = json.loads((reports / "compat.json").read_text())
    states = {r["case"]: (r["state"], r["message"]) for r in data["results"]}
    for case, phase in (("test_2a_setup_blocks", "setup"), ("test_2b_teardown_blocks", "teardown")):
        state, message = states[f"area/test_area.py::{case}"]
        assert state == "timeout", (case, state, message)
        assert f"deadline in its fixtures' {phase} (load average" in message, message
    assert states["area/test_area.py::test_3_after[grpc]"][0] == "passed"
    assert states["area/test_area.py::test_3_after[http]"][0] == "passed"
    assert not triton_processes(marker)


def test_dead_stub_keeps_the_stop_bounded(cell_env: envs.CellEnv, tmp_path: Path) -> None:
    """After a stub died, server 2.51.0 waits its whole exit timeout; ours is bounded, then SIGKILL."""
    server = server_for(cell_env, tmp_path, stop_timeout=4)
    with server:
        assert server.load("add_sub").error is None
        stubs = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_stub_of(int(p), server.pid)]
        assert stubs, "the model has a stub process"
        for pid in stubs:
            os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
    took = time.monotonic() - started
    assert took < 4 + 5 + 1, f"stop took {took:.1f} s"
    assert not processes.group_alive(server.pid)


def _is_stub_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return stat[stat.find("(") + 1:stat.rfind(")")].startswith("triton_python") and fields[1] == str(parent)


def test_hanging_model_times_out_and_the_cell_goes_on(tmp_path: Path, marker: str) -> None:
    lib = write_case_library(tmp_path / "lib", '''
        import numpy as np
        import pytest

        @pytest.mark.models("e2e_hang")
        def test_1_hangs(http_client):
            http_client.infer("e2e_hang", {"INPUT0": np.ones(4, dtype=np.float32)})

        @pytest.mark.models("e2e_add_sub")
        def test_2_next(http_client):
            assert http_client.is_model_ready("e2e_add_sub")
        ''')
    add_hanging_model(lib)
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX.replace("case_timeout = 60", "case_timeout = 8\nload_timeout = 6\nstop_timeout = 4"))
    reports = tmp_path / "reports"
    started = time.monotonic()
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
                       f"--reports={reports}", env={"TRITON_MATRIX_TEST": marker}, timeout=300)
    took = time.monotonic() - started
    assert done.returncode == 1
    cases = junit_cases(reports / "junit" / "24.10-python-cpu-py3.11.xml")
    assert cases == {"area/test_area.py::test_1_hangs": "failure", "area/test_area.py::test_2_next": "passed"}
    assert took < 60, f"the cell took {took:.0f} s: nothing may wait forever"
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 1
    data = json.loads((reports / "compat.json").read_text())
    states = {r["case"]: r["state"] for r in data["results"]}
    assert states["area/test_area.py::test_1_hangs"] == "timeout", "timeouts are shown apart from failures"
    assert not triton_processes(marker)


def test_port_already_taken_is_an_error_within_the_timeout(cell_env: envs.CellEnv, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from harness.servers import local

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    monkeypatch.setattr(local, "free_ports", lambda count=3: [port, port + 1, port + 2])
    server = server_for(cell_env, tmp_path, start_timeout=30)
    started = time.monotonic()
    try:
        with pytest.raises(ServerError) as info:
            with server:
                pass
    finally:
        taken.close()
    assert time.monotonic() - started < 30
    assert "exited before it was ready" in str(info.value)
    assert "already in use" in str(info.value)
    assert "NVML" not in str(info.value), "start-up noise is not shown as the reason"
    assert not processes.group_alive(server.pid)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill"])
def test_a_stopped_run_leaves_nothing_keeps_finished_cells_and_writes_a_partial_report(
        tmp_path: Path, marker: str, how: str) -> None:
    """Ctrl-C as a terminal sends it (SIGINT to the foreground process group), SIGTERM to the top
    process alone (a CI job cancelled), SIGKILL to the top process alone (an OOM kill): every process
    of the run is gone within 10 s (15 s for SIGKILL), finished cells keep their JUnit file."""
    lib = write_case_library(tmp_path / "lib", '''
        import numpy as np
        import pytest

        @pytest.mark.models("e2e_add_sub")
        def test_1_quick(http_client):
            assert http_client.is_model_ready("e2e_add_sub")

        @pytest.mark.models("e2e_hang")
        def test_2_hangs_on_312(http_client, cell):
            if cell.python == "3.12":
                http_client.infer("e2e_hang", {"INPUT0": np.ones(4, dtype=np.float32)})
        ''')
    add_hanging_model(lib)
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX.replace('python = ["3.11"]', 'python = ["3.11", "3.12"]'))
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", "matrix", "--", f"--matrix={matrix}", f"--reports={reports}",
         f"--cases={lib}", "--cell=*cpu*", "--jobs=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "TRITON_MATRIX_TEST": marker},
        start_new_session=True,  # a terminal's foreground group of its own; SIGINT as a terminal has it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def hang_loaded() -> bool:  # in the log of whichever worker's server took the case
        logs = cell_logs(reports, "24.10-python-cpu-py3.12")
        return any("successfully loaded 'e2e_hang'" in log.read_text() for log in logs)

    with killed_at_the_end(proc):
        wait_for(hang_loaded, 240, "the 3.12 cell to reach its hanging case")
        time.sleep(0.5)  # let the request reach the model
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        started = time.monotonic()
        wait_for(lambda: not triton_processes(marker), 10, "every server and stub of the run to go")
        gone_after = time.monotonic() - started
        wait_for(lambda: not run_processes(marker), 15, "every process of the run to go")
        proc.wait(60)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert gone_after < 10
    assert proc.returncode != 0, out[-2000:]
    first = junit_cases(reports / "junit" / "24.10-python-cpu-py3.11.xml")
    assert first == {"area/test_area.py::test_1_quick": "passed", "area/test_area.py::test_2_hangs_on_312": "passed"}
    wait_for(lambda: (reports / "compat.json").exists(), 10, "the partial report")
    data = json.loads((reports / "compat.json").read_text())
    assert data["partial"] is True, "the report says it is partial"
    cells = {c["id"]: c for c in data["cells"]}
    assert cells["24.10-python-cpu-py3.11"]["state"] == "passed"
    assert cells["24.10-python-cpu-py3.12"]["interrupted"], json.dumps(cells["24.10-python-cpu-py3.12"]) + out[-2000:]
    rows = {(r["case"], r["cell"]): r for r in data["results"]}
    in_flight = rows[("area/test_area.py::test_2_hangs_on_312", "24.10-python-cpu-py3.12")]
    assert in_flight["state"] == "error" and in_flight["message"].startswith("interrupted"), in_flight
    assert "Partial report" in (reports / "compat.html").read_text()


def cancel_like_github(script: str, env: dict[str, str], started: Callable[[], bool]) -> tuple[str, str]:
    """Run ``script`` as GitHub's runner runs a step (bash -eo pipefail, the step's process alone is
    signalled) and cancel it as the runner does once ``started()``: SIGINT to that process, SIGTERM 7.5 s
    later, then SIGKILL to its whole tree 2.5 s after that. Returns (the signal that ended it, its output)."""
    proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    ended_by = "SIGKILL"
    try:
        wait_for(started, 240, "the cell to reach its hanging case")
        time.sleep(0.5)  # let the request reach the model
        for signum, grace in ((signal.SIGINT, 7.5), (signal.SIGTERM, 2.5)):
            proc.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
                ended_by = signum.name
                break
    finally:
        processes.signal_group(proc.pid, signal.SIGKILL)  # the runner kills the step's tree
        proc.wait(30)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return ended_by, out


def test_a_cancelled_github_cell_step_keeps_what_finished(tmp_path: Path, marker: str) -> None:
    """The workflow's own cell step, cancelled as GitHub's runner cancels it: the JUnit file holds the case
    that passed and the one in flight as interrupted, and no server is left. (With bash running nox, as
    before, the SIGINT reached neither, and the runner's kill left no JUnit file.)"""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "matrix.yml").read_text())
    step = next(s for s in workflow["jobs"]["cell"]["steps"] if s.get("name") == "Run the cell")
    lib = quick_then_hanging(tmp_path / "lib")
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    reports = tmp_path / "reports"
    cell = "24.10-python-cpu-py3.11"
    assert step["run"].count('"$CELL"') == 1
    script = step["run"].replace('"$CELL"', f'"$CELL" --matrix={matrix} --reports={reports} --cases={lib} --workers=1')
    env = {**os.environ, **{k: v for k, v in step["env"].items() if "${{" not in v}, "CELL": cell,
           "TRITON_MATRIX_TEST": marker,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def hang_loaded() -> bool:
        return any("successfully loaded 'e2e_hang'" in log.read_text() for log in cell_logs(reports, cell))

    ended_by, out = cancel_like_github(script, env, hang_loaded)
    assert not triton_processes(marker), "no server or stub is left"
    junit = reports / "junit" / f"{cell}.xml"
    assert junit.exists(), f"no JUnit file (the step ended by {ended_by}):\n{out[-3000:]}"
    assert junit_cases(junit) == {"area/test_area.py::test_1_quick": "passed"}, (ended_by, out[-3000:])
    assert ended_by == "SIGINT", f"the cell runner outlived its stop budget:\n{out[-3000:]}"
    run_harness("report", f"--reports={reports}", f"--matrix={matrix}")
    data = json.loads((reports / "compat.json").read_text())
    assert data["cells"][0]["interrupted"].startswith("interrupted by"), data["cells"]
    rows = {r["case"]: r for r in data["results"]}
    in_flight = rows["area/test_area.py::test_2_hangs"]
    assert in_flight["state"] == "error" and in_flight["message"].startswith("interrupted"), in_flight


def test_two_runs_at_once_do_not_collide(tmp_path: Path, marker: str) -> None:
    runs = []
    for n in range(2):
        reports = tmp_path / f"reports{n}"
        runs.append((reports, subprocess.Popen(
            [sys.executable, "-m", "harness", "cell", "24.10-python-cpu-py3.11", f"--reports={reports}", "--",
             "cases/basics"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "TRITON_MATRIX_TEST": marker})))
    for reports, proc in runs:
        assert proc.wait(300) == 0
        cases = junit_cases(reports / "junit" / "24.10-python-cpu-py3.11.xml")
        assert len(cases) == 5 and set(cases.values()) == {"passed"}
    assert not triton_processes(marker)


def test_rerun_of_one_cell_replaces_only_its_results(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for cell in ("24.10-python-cpu-py3.11", "24.10-python-cpu-py3.12"):
        assert run_harness("cell", cell, f"--reports={reports}", "--", "cases/basics").returncode == 0
    other = (reports / "junit" / "24.10-python-cpu-py3.12.xml").read_bytes()
    before = (reports / "junit" / "24.10-python-cpu-py3.11.xml").read_bytes()
    assert run_harness("cell", "24.10-python-cpu-py3.11", f"--reports={reports}", "--", "cases/basics",
                       "-k", "exact").returncode == 0
    assert (reports / "junit" / "24.10-python-cpu-py3.12.xml").read_bytes() == other
    after = (reports / "junit" / "24.10-python-cpu-py3.11.xml").read_bytes()
    assert after != before and len(junit_cases(reports / "junit" / "24.10-python-cpu-py3.11.xml")) == 2


def test_secrets_and_home_stay_out_of_the_report(tmp_path: Path) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    lib = write_case_library(tmp_path / "lib", '''
        def test_fails_naming_home():
            import os
            raise AssertionError("model dir " + os.path.expanduser("~/models/x"))
        ''')
    reports = tmp_path / "reports"
    run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={reports}",
                env={"HF_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret})
    assert run_harness("report", f"--reports={reports}").returncode == 1
    home = str(Path.home())
    for name in ("compat.html", "compat.md", "compat.json", "junit.xml"):
        text = (reports / name).read_text()
        assert secret not in text, name
        assert f"{home}/models/x" not in text and "~/models/x" in text, name


def test_a_cell_stopped_before_any_case_ran_has_its_cases_not_run_not_errors(tmp_path: Path, marker: str) -> None:
    """SIGTERM to a cell whose worker is still collecting (a module that takes long to import): nothing
    ran, so its cases are missing ("interrupted before this case"), never an error that blames pytest
    (a SIGKILL of the top nox gave 262 errors "pytest exited with code 2 without running a case")."""
    lib = write_case_library(tmp_path / "lib", '''
        import time

        time.sleep(120)  # the worker is still collecting when the cell is stopped

        def test_never_reached():
            pass
        ''')
    reports = tmp_path / "reports"
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
         f"--reports={reports}"], cwd=ROOT, env={**os.environ, "TRITON_MATRIX_TEST": marker},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with killed_at_the_end(proc):
        wait_for(lambda: any(name == "python" and pid != proc.pid for pid, name in
                             ((p, (processes.proc_stat(p) or [""])[0]) for p in run_processes(marker))),
                 120, "the cell's pytest worker to start")
        time.sleep(3)  # the worker imports the module that sleeps
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    wait_for(lambda: not run_processes(marker), 15, "every process of the cell to go")
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 1
    data = json.loads((reports / "compat.json").read_text())
    assert all(r["state"] == "missing" for r in data["results"]), data["results"]
    [cell] = data["cells"]
    assert cell["state"] == "missing" and "interrupted" in (cell["interrupted"] or cell["problem"] or ""), cell
    assert data["partial"] is True


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_cell_signalled_again_while_it_stops_still_says_it_was_interrupted(
        tmp_path: Path, marker: str, first: signal.Signals) -> None:
    """Ctrl-C reaches a cell runner twice, from the terminal and from the scheduler, and under load the
    second comes while it stops: the cell's JUnit file still keeps what ran and says it was interrupted
    (CI saw a cell whose wrap-up a second KeyboardInterrupt broke off: no mark, a report without it)."""
    lib = quick_then_hanging(tmp_path / "lib")
    reports = tmp_path / "reports"
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--cases={lib}",
         f"--reports={reports}", "--workers=1"], cwd=ROOT, env={**os.environ, "TRITON_MATRIX_TEST": marker},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    with killed_at_the_end(proc):
        wait_for(lambda: any("successfully loaded 'e2e_hang'" in log.read_text()
                             for log in cell_logs(reports, "24.10-python-cpu-py3.11")), 240, "the hanging case")
        time.sleep(0.5)
        proc.send_signal(first)
        while proc.poll() is None:  # the scheduler's SIGINT, again and again, all through the wrap-up
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
    wait_for(lambda: not run_processes(marker), 15, "every process of the cell to go")
    junit = reports / "junit" / "24.10-python-cpu-py3.11.xml"
    assert junit_cases(junit)["area/test_area.py::test_1_quick"] == "passed"
    said = [p.get("value") for suite in ET.parse(junit).getroot().iter("testsuite")
            for p in suite.findall("properties/property") if p.get("name") == "interrupted"]
    assert said and all("interrupted by SIG" in why for why in said), said  # which one: whichever Python ran first
