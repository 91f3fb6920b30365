"""harness.matrix.known_issues: loading (and refusing) known_issues.toml, where an issue applies, what it explains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.matrix import known_issues as ki
from harness.errors import HarnessError
from harness.matrix import KnownFailure

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


def test_matrix_known_failures_become_issues() -> None:
    cell_wide = KnownFailure(cells=("24.10-python-*-numpy2",), reason="numpy 2", messages=("cannot reshape",))
    named = KnownFailure(cells=("*",), cases=("basics/*",), reason="named")
    a, b = ki.from_matrix((cell_wide, named))
    assert a.id == "matrix.known_failures[0]" and a.flag_absent is False and a.outcome is None
    assert a.applies_to(FakeCell(triton="24.10", id="24.10-python-cpu-py3.12-numpy2", env="numpy2"))
    assert not a.applies_to(FakeCell())
    assert ki.explains(a, "ValueError: cannot reshape array of size 0") and not ki.explains(a, "other")
    assert b.flag_absent is True and b.names("basics/test_add_sub.py::test_add_sub_exact[http]")
    assert ki.explains(b, "any failure")


@pytest.mark.parametrize(("text", "where", "says"), [
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\n", "issue[0]", "says nothing of what is seen"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\noutcome = 'hang'\n", "issue[0]", "missing reason"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'slow'\n", "issue[0].outcome",
     "unknown outcome 'slow'"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\nmax_triton = '24.7'\n",
     "issue[0].max_triton", "'24.7' is not a Triton release"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\npython = ['3.12']\n", "issue[0]",
     "unknown key 'python'"),
    ("[[issue]]\nid = 'a'\ncases = []\nreason = 'r'\noutcome = 'hang'\n", "issue[0].cases", "cases is empty"),
    ("[[issue]]\nid = 'a'\ncases = [1]\nreason = 'r'\noutcome = 'hang'\n", "issue[0].cases",
     "must be a string or a list of strings"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\n" * 2, "", "duplicate id 'a'"),
    ("[issue]\nid = 'a'\n", "", "issue must be an array of tables"),
    ("[[issues]]\nid = 'a'\n", "", "unknown key 'issues'"),
    ("[[issue]\n", "", "not valid TOML"),
    ("[[issue]]\nid = 'a'\ncases = ['x']\nreason = 'r'\noutcome = 'hang'\nintermittent = 'yes'\n",
     "issue[0].intermittent", "intermittent must be true or false"),
])
def test_bad_input_names_the_file_and_the_key(tmp_path: Path, text: str, where: str, says: str) -> None:
    with pytest.raises(ki.KnownIssuesError) as raised:
        ki.load(write(tmp_path, text))
    message = str(raised.value)
    assert isinstance(raised.value, HarnessError)
    assert message.startswith(str(tmp_path / ki.FILENAME)), message
    assert f"{ki.FILENAME}: {where}" in message if where else True
    assert says in message, message
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
