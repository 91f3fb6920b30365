"""The cell spec (harness.spec): what the cell runner resolves once and every worker reads, and nothing
else. Round trips in process; workers through pytester on a spec whose matrix file and known_issues.toml
are gone or changed: no server is started."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, TEST_MATRIX
from harness import layout, spec
from harness import matrix as matrix_mod
from harness.layout import Prop
from harness.matrix import known_issues as ki
from harness.run import pool

pytestmark = pytest.mark.fast
pytest_plugins = ["pytester"]
CELL = "24.10-python-cpu-py3.11"
KNOWN_ISSUES_LIB = FIXTURES / "known_issues_lib"


def matrix_with(tmp_path: Path, extra: str = "", settings: str = "") -> Path:
    """The tests' matrix with ``settings`` lines added to its [settings] and ``extra`` TOML appended."""
    path = tmp_path / "matrix.toml"
    text = TEST_MATRIX.read_text(encoding="utf-8")
    assert "\ncase_timeout = 30\n" in text
    path.write_text(text.replace("\ncase_timeout = 30\n", f"\n{settings or 'case_timeout = 30'}\n") + "\n" + extra,
                    encoding="utf-8")
    return path


def resolved(matrix: Path, reports: Path, roots: list[Path], **kwargs: object) -> spec.CellSpec:
    loaded = matrix_mod.load(matrix)
    return spec.resolve(loaded, loaded.cell(CELL), reports=reports, case_roots=roots, **kwargs)  # type: ignore[arg-type]


def test_a_spec_round_trips_through_json(tmp_path: Path) -> None:
    matrix = matrix_with(tmp_path, '[[known_failures]]\ncells = ["24.10-*"]\ncases = ["a/*"]\nreason = "r"\n'
                                   'message = "boom"\n\n[tolerance]\nadd = 0.5\n')
    shares = (spec.Share(worker=0, targets=("/x/a.py", "/x/b.py::t[1]")), spec.Share(worker=1, targets=("/x/c.py",)))
    original = resolved(matrix, tmp_path / "reports", [KNOWN_ISSUES_LIB], shares=shares, models=[tmp_path],
                        serial_loads=True)
    assert original.known_issues and original.tolerance == {"add": 0.5} and original.workers == 2
    assert "matrix.known_failures[0]" in {i.id for i in original.known_issues}, "the matrix's known_failures too"
    path = original.write(tmp_path / "spec.json")
    assert spec.CellSpec.from_dict(json.loads(json.dumps(original.to_dict()))) == original
    assert spec.read(path) == original
    for issue in original.known_issues:  # tuples stay tuples (a glob list, not a string)
        assert ki.KnownIssue.from_dict(issue.to_dict()) == issue and isinstance(issue.cases, tuple)


def test_only_the_known_issues_that_apply_to_the_cell(tmp_path: Path) -> None:
    everything = ki.load(KNOWN_ISSUES_LIB)
    given = resolved(TEST_MATRIX, tmp_path, [KNOWN_ISSUES_LIB])
    assert "elsewhere" in {i.id for i in everything}, "the fixture declares one for Python 3.8 cells"
    assert {i.id for i in given.known_issues} == {i.id for i in everything if i.applies_to(given.cell)}
    assert "elsewhere" not in {i.id for i in given.known_issues}


def test_the_worker_command_names_the_spec_and_no_matrix(tmp_path: Path) -> None:
    given = resolved(TEST_MATRIX, tmp_path / "reports", [KNOWN_ISSUES_LIB])
    path = given.write(layout.spec_path(given.reports, CELL))
    launch = pool.Launch(python=Path(sys.executable), spec=given, spec_path=path, options=(), cwd=ROOT)
    command = launch.command(spec.Share(worker=2, targets=("t.py",)), tmp_path / "claims")
    assert f"--spec={path}" in command and "--worker=2" in command and f"--claims={tmp_path / 'claims'}" in command
    assert not [a for a in command if a.startswith(("--matrix", "--cell", "--case-root", "--reports"))], command


@pytest.fixture
def _harness_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_worker(pytester: pytest.Pytester, spec_path: Path, *targets: Path) -> tuple[pytest.RunResult, ET.Element]:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "harness.incell.plugin", f"--spec={spec_path}", f"--rootdir={pytester.path}", f"--junitxml={junit}",
        "-o", "junit_family=xunit1", "-p", "no:cacheprovider", *map(str, targets))
    return result, (ET.parse(junit).getroot() if junit.exists() else ET.Element("none"))


@pytest.mark.usefixtures("_harness_importable")
def test_a_worker_reads_its_spec_and_no_matrix_or_known_issues_file(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec is written from a matrix with case_timeout 77 and a library with a known issue; then the
    matrix file is deleted and the library's known_issues.toml broken: the worker runs on the spec."""
    lib = pytester.mkdir("lib")
    (lib / "area").mkdir()
    (lib / "area" / "test_s.py").write_text(
        "from harness.incell.plugin import plugin_of\n\n"
        "def test_settings(request, release):\n"
        "    plugin = plugin_of(request.config)\n"
        "    assert plugin.settings.case_timeout == 77 and plugin.settings.workers == 3\n"
        "    assert release.server_version == '2.51.0'\n\n"
        "def test_known():\n"
        "    assert False, 'the known wording'\n")
    (lib / ki.FILENAME).write_text("[[issue]]\nid = 'kn'\ncases = ['area/test_s.py::test_known']\n"
                                   "reason = 'declared'\nmessage = 'the known wording'\n")
    matrix = matrix_with(pytester.path, settings="case_timeout = 77\nworkers = 3")
    path = resolved(matrix, pytester.path / "reports", [lib]).write(pytester.path / "spec.json")
    matrix.unlink()
    (lib / ki.FILENAME).write_text("[[issue]\nnot TOML at all\n")
    monkeypatch.setenv(matrix_mod.MATRIX_ENV, str(pytester.path / "no-such-matrix.toml"))
    result, junit = run_worker(pytester, path, lib / "area" / "test_s.py")
    result.assert_outcomes(passed=1, failed=1)
    known = [p.get("value") for p in junit.iter("property") if p.get("name") == Prop.KNOWN_ISSUE]
    assert known == ["kn"], "the failure is the spec's known issue"
    assert result.ret == 0, "every failure a declared issue: the worker exits 0"


@pytest.mark.usefixtures("_harness_importable")
@pytest.mark.parametrize(("content", "says"), [
    (None, "cell spec not found"),
    ("{not json", "not a cell spec (not JSON"),
    ("{}", "not a cell spec (no 'cell')"),
    ("[1, 2]", "not a cell spec"),
])
def test_a_missing_or_bad_spec_is_one_line(pytester: pytest.Pytester, content: str | None, says: str) -> None:
    path = pytester.path / "spec.json"
    if content is not None:
        path.write_text(content)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = run_worker(pytester, path, pytester.path / "test_x.py")[0]
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.lines
    assert errors[0].startswith(f"ERROR: {path}: {says}"), errors[0]
    assert "python -m harness cell <id>" in errors[0]
    with pytest.raises(spec.SpecError):  # the same condition in process: its own type, a HarnessError
        spec.read(path)


def test_a_docker_cells_server_is_made_from_the_spec(tmp_path: Path) -> None:
    """The docker runner gets the release, image kind, shm size and deadlines the spec carries (the
    server is made, not started: no engine is needed)."""
    from harness.servers.docker import DockerServer
    from harness.servers.factory import CellServers

    matrix = matrix_with(tmp_path, '[docker]\nimage = "release"\nshm_size = "1g"\n', settings="case_timeout = 44")
    matrix.write_text(matrix.read_text().replace('[docker]\nimage = "offline"\nshm_size = "256m"\n', ""))
    loaded = matrix_mod.load(matrix)
    cell = loaded.cell("24.10-python-cpu-py3.11-docker")
    given = spec.read(spec.resolve(loaded, cell, reports=tmp_path / "reports").write(tmp_path / "spec.json"))
    matrix.unlink()
    servers = CellServers.prepare(given.cell, given.release, given.settings, given.docker, [], tmp_path / "w")
    server = servers.create(log_path=tmp_path / "log", workdir=tmp_path / "w")
    assert isinstance(server, DockerServer)
    assert (server.release, server.image_kind, server.settings.shm_size) == (loaded.release("24.10"), "release", "1g")
    assert server.settings == given.docker  # the hardened profile's limits too
    assert server.release.image == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert server.load_timeout == loaded.settings.load_timeout and given.settings.case_timeout == 44
