"""The data-driven invalid-config cases (cases/config/test_invalid_configs.py) can fail.

A temporary case library holds a copy of that module, the healthy control model it needs, and a few
``invalid/models`` folders: one whose expectation is right (it must pass, so that the failures below
come from the mismatches and not from the setup), one whose config loads although expect.toml
expects an error, one whose expected fragment is not the server's message, and one that expects in
the load response a message the server only writes to its log. The cell runs against a real server,
as a user runs it; its JUnit file must show the three broken expectations failed, each naming the
mismatch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from conftest import ROOT, run_harness

CELL = "24.10-python-cpu-py3.11"
AREA = ROOT / "cases" / "config"
TEST = "test_broken_config_is_refused"
WRONG_FRAGMENT = "this fragment is in no message of the server"


def add_case(area: Path, name: str, source: Path, expect: str) -> None:
    """A folder of invalid/models: the model files of ``source`` and the given expect.toml."""
    target = area / "invalid" / "models" / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "expect.toml"))
    config = target / "config.pbtxt"
    config.write_text(config.read_text().replace(f'"{source.name}"', f'"{name}"'))
    (target / "expect.toml").write_text(expect)


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """``{testcase name: (state, message)}``; a case run twice (a rerun) keeps its last outcome."""
    found: dict[str, tuple[str, str]] = {}
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            state, message = "passed", ""
            for result in case.result:
                if isinstance(result, (Failure, Error)):
                    state, message = "failed", f"{result.message or ''}\n{result.text or ''}"
                elif isinstance(result, Skipped):
                    state, message = "skipped", result.message or ""
            found[case.name] = (state, message)
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("config-cases")
    area = root / "lib" / "config"
    (area / "invalid" / "models").mkdir(parents=True)
    shutil.copy(AREA / "test_invalid_configs.py", area / "test_invalid_configs.py")
    shutil.copytree(AREA / "models" / "cfg_echo", area / "models" / "cfg_echo",
                    ignore=shutil.ignore_patterns("__pycache__"))
    invalid = AREA / "invalid" / "models"
    add_case(area, "cfg_bad_right", invalid / "cfg_bad_zero_dimension",
             (invalid / "cfg_bad_zero_dimension" / "expect.toml").read_text())
    add_case(area, "cfg_bad_but_loads", AREA / "models" / "cfg_echo",
             'why = "nothing is broken here"\nfragment = "must specify \'dims\'"\n')
    add_case(area, "cfg_bad_wrong_fragment", invalid / "cfg_bad_reshape_size",
             f'why = "the fragment is not the server\'s message"\nfragment = "{WRONG_FRAGMENT}"\n')
    add_case(area, "cfg_bad_wrong_place", invalid / "cfg_bad_unknown_field",
             'why = "the message is only in the log"\nwhere = "response"\nfragment = \'has no field named "foo_bar"\'\n')
    reports = root / "reports"
    done = run_harness("cell", CELL, "--cases", str(root / "lib"), "--reports", str(reports), timeout=900)
    junit = reports / "junit" / f"{CELL}.xml"
    assert junit.is_file(), f"no JUnit file (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 1, f"the cell must fail (exit {done.returncode}):\n{done.stdout[-3000:]}"
    return outcomes(junit)


def outcome(results: dict[str, tuple[str, str]], folder: str) -> tuple[str, str]:
    name = f"{TEST}[{folder}]"
    assert name in results, f"{name} did not run; cases: {sorted(results)}"
    return results[name]


def test_a_right_expectation_passes(results: dict[str, tuple[str, str]]) -> None:
    state, message = outcome(results, "cfg_bad_right")
    assert state == "passed", message


def test_a_config_that_loads_fails_the_case(results: dict[str, tuple[str, str]]) -> None:
    state, message = outcome(results, "cfg_bad_but_loads")
    assert state == "failed", f"a broken-config case whose model loads was {state}"
    assert "cfg_bad_but_loads LOADED" in message, message
    assert "must specify 'dims'" in message, "the failure does not name the expected fragment"


def test_a_wrong_fragment_fails_the_case(results: dict[str, tuple[str, str]]) -> None:
    state, message = outcome(results, "cfg_bad_wrong_fragment")
    assert state == "failed", f"a case whose fragment is not the server's message was {state}"
    assert f"the expected fragment {WRONG_FRAGMENT!r} is not in the response" in message, message
    assert "has different size for dims and reshape" in message, "the failure does not show the server's message"


def test_a_message_expected_in_the_wrong_place_fails_the_case(results: dict[str, tuple[str, str]]) -> None:
    state, message = outcome(results, "cfg_bad_wrong_place")
    assert state == "failed", f"a case expecting a log-only message in the response was {state}"
    assert "is not in the response" in message, message
    assert "failed to poll from model repository" in message, "the failure does not show the load response"
    assert 'has no field named "foo_bar"' in message, "the failure does not show the log line"
