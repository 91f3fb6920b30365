"""The plugin's markers, applicability and JUnit vocabulary through pytester with a cell of the tests'
matrix: nothing here uses the server, so none is started."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, write_spec
from harness.layout import NOT_APPLICABLE_PREFIX, Prop

pytestmark = pytest.mark.fast
pytest_plugins = ["pytester"]
CELL = "24.10-python-cpu-py3.11"


def run_cell(pytester: pytest.Pytester, source: str) -> tuple[pytest.RunResult, ET.Element]:
    pytester.makepyfile(test_area=source)
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "harness.incell.plugin", f"--spec={write_spec(pytester.path, CELL, [pytester.path], pytester.path)}",
        f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider",
        "-rs", str(pytester.path))
    return result, (ET.parse(junit).getroot() if junit.exists() else ET.Element("none"))


@pytest.fixture(autouse=True)
def _harness_importable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_cases_that_do_not_apply_are_not_applicable_with_the_reason(pytester: pytest.Pytester) -> None:
    result, junit = run_cell(pytester, """
        import pytest

        @pytest.mark.backend("onnxruntime")
        def test_onnx_only():
            pass

        @pytest.mark.instance_kind("gpu")
        def test_gpu_only():
            pass

        @pytest.mark.min_triton("25.01")
        def test_newer():
            pass

        @pytest.mark.max_triton("24.03")
        def test_older():
            pass

        @pytest.mark.runner("docker", reason="it inspects the container")
        def test_in_a_container():
            pass

        @pytest.mark.backend("python")
        @pytest.mark.min_triton("24.10")
        def test_applies():
            pass
        """)
    result.assert_outcomes(passed=1, skipped=5)
    reasons = {tc.get("name"): tc.find("skipped").get("message") for tc in junit.iter("testcase")
               if tc.find("skipped") is not None}
    assert reasons == {
        "test_onnx_only": NOT_APPLICABLE_PREFIX + "case needs backend onnxruntime; cell has python",
        "test_gpu_only": NOT_APPLICABLE_PREFIX + "case needs instance_kind gpu; cell has cpu",
        "test_newer": NOT_APPLICABLE_PREFIX + "case needs Triton 25.01 or newer; cell runs 24.10",
        "test_older": NOT_APPLICABLE_PREFIX + "case applies up to Triton 24.03; cell runs 24.10",
        "test_in_a_container": NOT_APPLICABLE_PREFIX + "case needs runner docker (it inspects the container); "
                               "cell has local",
    }


@pytest.mark.parametrize(("marker", "said"), [
    ('backend("pyhton")', "*test_area.py::test_x: marker backend has unknown value 'pyhton'; use one of:*"),
    ('case_timeout("long")', "*test_area.py::test_x: marker case_timeout needs a positive number of seconds*"),
], ids=["unknown-backend", "case-timeout-not-a-number"])
def test_a_bad_marker_stops_the_cell_naming_the_case(pytester: pytest.Pytester, marker: str, said: str) -> None:
    result, _ = run_cell(pytester, f"""
        import pytest

        @pytest.mark.{marker}
        def test_x():
            pass
        """)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])


def test_junit_names_the_cell_its_plan_and_each_case(pytester: pytest.Pytester) -> None:
    result, junit = run_cell(pytester, """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_param(n):
            pass

        def test_fails():
            assert False, "deliberately"
        """)
    result.assert_outcomes(passed=2, failed=1)
    props = {p.get("name"): p.get("value") for p in junit.find("testsuite/properties")}
    assert props[Prop.CELL] == CELL and props["triton"] == "24.10" and props["python"] == "3.11"
    assert props[Prop.COLLECTED].splitlines() == [
        "test_area.py::test_param[1]", "test_area.py::test_param[2]", "test_area.py::test_fails"]
    cases = [next(p.get("value") for p in tc.iter("property") if p.get("name") == Prop.CASE)
             for tc in junit.iter("testcase")]
    assert cases == ["test_area.py::test_param[1]", "test_area.py::test_param[2]", "test_area.py::test_fails"]


def test_the_triton_fixtures_need_a_cell(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(triton):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "harness.incell.plugin", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*the triton fixtures need --spec <the cell spec>*"])
