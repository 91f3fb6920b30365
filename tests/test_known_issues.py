"""harness.matrix.known_issues: loading (and refusing) known_issues.toml and a matrix's known_failures, where
an issue applies, what it explains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import matrix
from harness.errors import HarnessError
from harness.matrix import known_issues as ki

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FakeCell:
    id: str = "24.07-python-cpu-py3.12-numpy1"
    triton: str = "24.07"
    backend: str = "python"
    instance_kind: str = "cpu"
    python: str = "3.12"
    env: str | None = "numpy1"
    runner: str = "local"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / ki.FILENAME).write_text(text)
    return tmp_path


GOOD = """
[[issue]]
id = "hang-2407"
cases = ["area/test_x.py::test_y[*]"]
min_triton = "24.07"
max_triton = "24.07"
pythons = ["3.12"]
outcome = "hang"
reason = "never answers"
link = "https://example.invalid/1"

[[issue]]
id = "words"
cases = "area/test_x.py::test_z"
message = ["fragment one", "fragment two"]
reason = "wrong words"
"""


def test_the_built_in_library_loads() -> None:
    issues = ki.load(ROOT / "cases")
    assert issues and all(i.reason and i.cases and (i.outcome or i.messages) for i in issues)
    assert len({i.id for i in issues}) == len(issues)


def test_a_library_without_the_file_has_no_issues(tmp_path: Path) -> None:
    assert ki.load(tmp_path) == ()


def test_fields_are_read(tmp_path: Path) -> None:
    hang, words = ki.load(write(tmp_path, GOOD))
    assert hang.id == "hang-2407" and hang.outcome == "hang" and hang.pythons == ("3.12",)
    assert hang.link == "https://example.invalid/1" and hang.source.endswith(ki.FILENAME)
    assert words.cases == ("area/test_x.py::test_z",) and words.messages == ("fragment one", "fragment two")
    assert hang.flag_absent and words.flag_absent  # a declared issue that does not occur is flagged...
    (sometimes,) = ki.load(write(tmp_path, GOOD.split("[[issue]]")[1].join(["[[issue]]", "intermittent = true\n"])))
    assert not sometimes.flag_absent  # ...unless it is seen in some runs only


def test_where_filters(tmp_path: Path) -> None:
    hang, words = ki.load(write(tmp_path, GOOD))
    cell = FakeCell()
    assert hang.applies_to(cell)
    assert not hang.applies_to(FakeCell(triton="24.10", id="24.10-python-cpu-py3.12-numpy1"))
    assert not hang.applies_to(FakeCell(triton="24.03"))
    assert not hang.applies_to(FakeCell(python="3.11"))
    assert words.applies_to(FakeCell(triton="23.10", python="3.9", runner="docker"))
    only_docker = ki.KnownIssue(id="d", cases=("*",), reason="r", outcome="error", runners=("docker",),
                                cells=("24.07-*",))
    assert not only_docker.applies_to(cell)
    assert only_docker.applies_to(FakeCell(runner="docker"))
    assert not only_docker.applies_to(FakeCell(runner="docker", id="24.10-python-cpu-py3.12-numpy1"))


def test_case_globs_take_brackets_literally(tmp_path: Path) -> None:
    hang, _ = ki.load(write(tmp_path, GOOD))
    assert hang.names("area/test_x.py::test_y[http]")
    assert not hang.names("area/test_x.py::test_y")
    assert ki.declared((hang,), FakeCell(), "area/test_x.py::test_y[grpc]") == (hang,)
    assert ki.declared((hang,), FakeCell(python="3.11"), "area/test_x.py::test_y[grpc]") == ()


@pytest.mark.parametrize(("outcome", "text", "explained"), [
    ("hang", "Failed: Timeout >120.0s", True),
    ("hang", "Failed: no answer within 10 s to a request", True),
    ("hang", "grpc: StatusCode.DEADLINE_EXCEEDED Deadline Exceeded", True),
    ("hang", "AssertionError: assert 1 == 2", False),
    ("stub-crash", "[500] Failed to process the request(s) for model 'm', message: Stub process 'm_0_0' is not healthy.",
     True),
    ("stub-crash", "Failed: no answer within 10 s to a BF16 request (the model's stub died)", True),
    ("server-crash", "Failed: the server ended (killed by SIGABRT) during unload", True),
    ("server-crash", "AssertionError: assert 1 == 2", False),
    ("wrong-value", "E       AssertionError: counted (0, 4)\nassert (0, 4) == (1, 3)", True),
    ("wrong-value", "assert '400' == '500'", True),
    ("wrong-value", "Failed: the server ended (killed by SIGABRT)", False),
    ("error", "anything at all", True),
])
def test_outcomes(outcome: str, text: str, explained: bool) -> None:
    issue = ki.KnownIssue(id="x", cases=("*",), reason="r", outcome=outcome)
    assert ki.explains(issue, text) is explained


def test_message_and_outcome_must_both_hold() -> None:
    issue = ki.KnownIssue(id="x", cases=("*",), reason="r", outcome="wrong-value", messages=("grew by (0, 4)", "zz"))
    assert ki.explains(issue, "AssertionError: (failure, success) grew by (0, 4)")
    assert not ki.explains(issue, "AssertionError: (failure, success) grew by (1, 4)")
    assert not ki.explains(issue, "Failed: Timeout >120.0s grew by (0, 4)")


MATRIX = """
[axes]
triton = ["24.10"]
backend = ["python"]
instance_kind = ["cpu"]
python = ["3.12"]
env = ["numpy2"]
[releases."24.10"]
server_version = "2.51.0"
[envs.numpy2]
packages = ["numpy>=2"]
"""


def parse_matrix(text: str) -> matrix.Matrix:
    import tomllib

    return matrix.parse(tomllib.loads(text + MATRIX), Path("m.toml"))  # text first: a bare key stays top-level


def test_matrix_known_failures_are_known_issues() -> None:
    """matrix.toml's [[known_failures]] parse straight into KnownIssue: one mechanism, one matching."""
    a, b = parse_matrix("""
[[known_failures]]
cells = "24.10-python-*-numpy2"
reason = "numpy 2"
message = "cannot reshape"

[[known_failures]]
cells = ["*"]
cases = ["basics/*"]
reason = "named"
""").known_failures
    assert isinstance(a, ki.KnownIssue) and isinstance(b, ki.KnownIssue)
    assert a.id == "matrix.known_failures[0]" and a.flag_absent is False and a.outcome is None
    assert a.cases == ("*",) and a.cells == ("24.10-python-*-numpy2",) and a.messages == ("cannot reshape",)
    assert a.source == "m.toml"
    assert a.applies_to(FakeCell(triton="24.10", id="24.10-python-cpu-py3.12-numpy2", env="numpy2"))
    assert not a.applies_to(FakeCell())
    assert ki.explains(a, "ValueError: cannot reshape array of size 0") and not ki.explains(a, "other")
    assert b.id == "matrix.known_failures[1]" and b.flag_absent is True
    assert b.names("basics/test_add_sub.py::test_add_sub_exact[http]") and not b.names("other/test_x.py::test_y")
    assert ki.explains(b, "any failure")
    assert ki.load_all([], (a, b)) == (a, b)


@pytest.mark.parametrize(("text", "where", "says"), [
    ("[[known_failures]]\nreason = 'r'\n", "known_failures[0]", "missing cells"),
    ("[[known_failures]]\ncells = ['*']\n", "known_failures[0]", "missing reason"),
    ("[[known_failures]]\ncells = []\nreason = 'r'\n", "known_failures[0].cells", "empty list"),
    ("[[known_failures]]\ncells = [1]\nreason = 'r'\n", "known_failures[0].cells",
     "expected a string or a list of strings, got a list holding an integer"),
    ("[[known_failures]]\ncells = ['*']\nreason = ''\n", "known_failures[0].reason",
     "expected a non-empty string, got an empty string"),
    ("[[known_failures]]\ncells = ['*']\nreason = 'r'\noutcome = 'hang'\n", "known_failures[0].outcome",
     "unknown key 'outcome'"),
    ("known_failures = 'x'\n", "known_failures", "expected an array of tables, got a string"),
])
def test_bad_known_failures_name_the_matrix_and_the_key(text: str, where: str, says: str) -> None:
    with pytest.raises(HarnessError) as raised:
        parse_matrix(text)
    message = str(raised.value)
    assert not isinstance(raised.value, ki.KnownIssuesError), "a matrix's mistake is the matrix's error"
    assert message.startswith(f"m.toml: {where}: {says}"), message
    assert "; " in message and "\n" not in message


@pytest.mark.parametrize(("text", "where", "says"), [
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\n", "issue[0]", "says nothing of what is seen"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\noutcome = 'hang'\n", "issue[0]", "missing reason"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'slow'\n", "issue[0].outcome",
     "unknown outcome 'slow'"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\nmax_triton = '24.7'\n",
     "issue[0].max_triton", "'24.7' is not a Triton release"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\npython = ['3.12']\n", "issue[0].python",
     "unknown key 'python'"),
    ("[[issue]]\nid = 'a'\ncases = []\nreason = 'r'\noutcome = 'hang'\n", "issue[0].cases", "empty list"),
    ("[[issue]]\nid = 'a'\ncases = [1]\nreason = 'r'\noutcome = 'hang'\n", "issue[0].cases",
     "expected a string or a list of strings, got a list holding an integer"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\n" * 2, "issue[1].id", "duplicate id 'a'"),
    ("[issue]\nid = 'a'\n", "issue", "expected an array of tables, got a table"),
    ("[[issues]]\nid = 'a'\n", "issues", "unknown key 'issues'"),
    ("[[issue]]\nid = ''\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\n", "issue[0].id",
     "expected a non-empty string, got an empty string"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\nmessage = 'm'\npythons = '3.12'\nlink = 3\n",
     "issue[0].link", "expected a non-empty string, got an integer"),
    ("[[issue]\n", "", "not valid TOML"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\nintermittent = 'yes'\n",
     "issue[0].intermittent", "expected true or false, got a string"),
])
def test_bad_input_names_the_file_and_the_key(tmp_path: Path, text: str, where: str, says: str) -> None:
    with pytest.raises(ki.KnownIssuesError) as raised:
        ki.load(write(tmp_path, text))
    message = str(raised.value)
    assert isinstance(raised.value, HarnessError)
    assert message.startswith(str(tmp_path / ki.FILENAME)), message
    assert f"{ki.FILENAME}: {where}: {says}" in message if where else f"{ki.FILENAME}: {says}" in message, message
    assert "; " in message, "the error says what to do"
    assert "\n" not in message


def test_a_broken_file_stops_the_cell_before_anything_starts(tmp_path: Path) -> None:
    """python -m harness cell with a library whose known_issues.toml is broken: exit 2, one line naming
    the file and the key, no JUnit file and no server."""
    import subprocess
    import sys

    lib = tmp_path / "lib"
    (lib / "area").mkdir(parents=True)
    (lib / "area" / "test_a.py").write_text("def test_a():\n    pass\n")
    write(lib, "[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'slow'\n")
    done = subprocess.run([sys.executable, "-m", "harness", "cell", "24.10-python-cpu-py3.11", f"--cases={lib}",
                           f"--reports={tmp_path / 'reports'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert f"{lib / ki.FILENAME}: issue[0].outcome: unknown outcome 'slow'" in line, line
    assert not (tmp_path / "reports" / "junit").exists() or not any((tmp_path / "reports" / "junit").iterdir())
