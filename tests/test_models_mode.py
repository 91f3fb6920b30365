"""Models mode (harness/models/): samples.json, generated inputs, bad input, the comparison with the
reference cell, and one real cell over the example repository and the faulty fixture models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, require, run_harness

from harness.errors import HarnessError
from harness.models import answers, compare, differ, pbtxt, repo, samples
from harness.states import State

EXAMPLES = ROOT / "examples" / "models"
FAULTY = ROOT / "tests" / "fixtures" / "models" / "faulty"
CELL = "24.10-python-cpu-py3.11"

ALL_TYPES_CONFIG = """
name: "every_type"
backend: "python"
max_batch_size: 2
input [
  { name: "B", data_type: TYPE_BOOL, dims: [ 3 ] },
  { name: "U8", data_type: TYPE_UINT8, dims: [ -1, 2 ] },
  { name: "I32", data_type: TYPE_INT32, dims: [ 4 ] },
  { name: "I64", data_type: TYPE_INT64, dims: [ 2 ] },
  { name: "F16", data_type: TYPE_FP16, dims: [ 5 ] },
  { name: "BF", data_type: TYPE_BF16, dims: [ 2 ] },
  { name: "F32", data_type: TYPE_FP32, dims: [ 2, -1 ] },
  { name: "F64", data_type: TYPE_FP64, dims: [ 3 ] },
  { name: "S", data_type: TYPE_STRING, dims: [ 2 ] }
]
output [ { name: "O", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""
# sha256 of every generated input's wire bytes for ALL_TYPES_CONFIG: pinned, so a change of the
# generator (or of numpy under it) fails here rather than silently moving every cell's answers.
GENERATED_DIGEST = "4f2ae907d19c577ebe8ea5325a54368278d19fcb2bd48159868549d7998e6e77"


def _generated_digest() -> str:
    from harness.models import tensors

    config = pbtxt.parse(ALL_TYPES_CONFIG)
    arrays = tensors.generate("every_type", config)
    digest = hashlib.sha256()
    for name, (array, datatype) in sorted(arrays.items()):
        digest.update(f"{name}:{datatype}:{list(array.shape)}:".encode() + tensors.payload(array, datatype))
    return digest.hexdigest()


@pytest.mark.fast
def test_generated_inputs_cover_every_type_with_dims_of_one_and_a_batch_of_one() -> None:
    from harness.models import tensors

    arrays = tensors.generate("every_type", pbtxt.parse(ALL_TYPES_CONFIG))
    shapes = {name: (list(a.shape), dt) for name, (a, dt) in arrays.items()}
    assert shapes == {"B": ([1, 3], "BOOL"), "U8": ([1, 1, 2], "UINT8"), "I32": ([1, 4], "INT32"),
                      "I64": ([1, 2], "INT64"), "F16": ([1, 5], "FP16"), "BF": ([1, 2], "BF16"),
                      "F32": ([1, 2, 1], "FP32"), "F64": ([1, 3], "FP64"), "S": ([1, 2], "BYTES")}
    assert all(isinstance(v, bytes) and v for v in arrays["S"][0].reshape(-1))
    assert arrays["B"][0].dtype == bool


@pytest.mark.fast
def test_generated_inputs_are_the_same_bytes_every_time() -> None:
    first = _generated_digest()
    assert first == _generated_digest()
    assert first == GENERATED_DIGEST, f"the generator changed: {first}"


def test_generated_inputs_are_the_same_bytes_in_a_cell_venv(cell_env) -> None:
    """The cell's own Python and numpy (another interpreter, another numpy) make the same bytes."""
    code = ("import sys; sys.path.insert(0, 'tests'); sys.path.insert(0, '.');"
            "from test_models_mode import _generated_digest; print(_generated_digest())")
    out = subprocess.run([str(cell_env.python), "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == GENERATED_DIGEST


@pytest.mark.fast
def test_samples_json_in_perf_analyzer_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "samples.json"
    path.write_text(json.dumps({
        "data": [{"TEXT": ["a b"], "X": {"content": [1, 2, 3, 4], "shape": [2, 2]}},
                 {"TEXT": {"content": ["c"], "shape": [1]}, "X": {"content": {"b64": "AAAAAA=="}, "shape": [1]}}],
        "validation_data": [{"Y": [1.5]}, {"Y": {"content": [2.5], "shape": [1]}}]}))
    loaded = samples.load(path)
    assert [t.name for t in loaded[0].inputs] == ["TEXT", "X"]
    assert loaded[0].inputs[1].shape == (2, 2)
    assert loaded[1].inputs[1].b64
    assert loaded[1].expected[0].content == [2.5]


@pytest.mark.fast
@pytest.mark.parametrize(("content", "key"), [
    ("{not json", "not JSON"),
    ('{"inputs": []}', "no 'data' key"),
    ('{"data": [], "x": 1}', ": x: unknown key"),
    ('{"data": []}', ": data: 'data' is not a non-empty list"),
    ('{"data": [{"X": 3}]}', ": data[0].X: a tensor is a list"),
    ('{"data": [{"X": {"content": [1, 2], "shape": [3]}}]}', ": data[0].X.content: 2 values do not fill shape [3]"),
    ('{"data": [{"X": {"content": [1], "shape": "1"}}]}', ": data[0].X.shape: shape '1'"),
    ('{"data": [{"X": [1]}], "validation_data": []}', ": validation_data: 'validation_data' is not a list"),
    ('{"data": [[]]}', ": data[0]: an empty stream"),
    ('{"data": [[{"X": [1]}, {"X": [2]}]], "validation_data": [[{"Y": [1]}]]}',
     ": validation_data[0]: a stream's validation_data is a list with one entry per step"),
    ('{"data": [[{"X": [1]}, {"X": 2}]]}', ": data[0][1].X: a tensor is a list"),
])
def test_a_broken_samples_json_names_the_file_and_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "samples.json"
    path.write_text(content)
    with pytest.raises(samples.SamplesError) as info:
        samples.load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and key in message and "\n" not in message


@pytest.mark.fast
def test_a_stream_of_steps_is_a_sequence_of_requests_from_start_to_end(tmp_path: Path) -> None:
    path = tmp_path / "samples.json"
    path.write_text(json.dumps({"data": [[{"X": [1]}, {"X": [2]}, {"X": [3]}], {"X": [4]}],
                                "validation_data": [[{"S": [1]}, {"S": [3]}, {"S": [6]}], {"S": [4]}]}))
    loaded = samples.load(path)
    assert [(s.entry, s.stream, s.start, s.end) for s in loaded] == [
        ("data[0][0]", 0, True, False), ("data[0][1]", 0, False, False), ("data[0][2]", 0, False, True),
        ("data[1]", None, False, False)]
    assert [s.expected[0].content for s in loaded] == [[1], [3], [6], [4]]
    sequence = repo.discover([EXAMPLES])["accumulator"].config
    samples.check_against(loaded, sequence, str(path))
    with pytest.raises(samples.SamplesConfigMismatch, match=r"data\[0\]: a stream of steps is for a sequence model"):
        samples.check_against(loaded, {k: v for k, v in sequence.items() if k != "sequence_batching"}, str(path))
    assert samples.template(sequence) == {"data": [[{"X": [0]}, {"X": [0]}]]}


def _repository(tmp_path: Path, samples_json: str | None = None, config: str | None = None) -> Path:
    repository = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "scorer", repository / "scorer")
    if config is not None:
        (repository / "scorer" / "config.pbtxt").write_text(config)
    if samples_json is not None:
        (repository / "scorer" / "samples.json").write_text(samples_json)
    return repository


def _bls_repository(tmp_path: Path, sources: dict[str, str]) -> Path:
    """python models whose model.py holds the given line inside ``execute``."""
    repository = tmp_path / "bls"
    for name, line in sources.items():
        (repository / name / "1").mkdir(parents=True)
        (repository / name / "config.pbtxt").write_text(f'name: "{name}"\nbackend: "python"\n')
        (repository / name / "1" / "model.py").write_text(
            f"class TritonPythonModel:\n    def execute(self, requests):\n        {line}\n")
    return repository


@pytest.mark.fast
@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: tmp / "nowhere", "nowhere: not a folder"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "empty: holds no model folder"),
    (lambda tmp: (tmp / "r" / "notes").mkdir(parents=True) or tmp / "r",
     "notes: folder 'notes' has neither config.pbtxt nor a version folder"),
    (lambda tmp: _repository(tmp, '{"data": [{"FEATURES": [1, 2, 3, 4]}], "validation": 1}'),
     "samples.json: validation: unknown key 'validation'"),
    (lambda tmp: _repository(tmp, '{"data": [{"INPUT0": [1, 2, 3, 4]}]}'),
     "samples.json: data[0].INPUT0: the config has no input 'INPUT0'; use the config's inputs: FEATURES"),
    (lambda tmp: _repository(tmp, '{"data": [{"FEATURES": {"content": [1, 2, 3], "shape": [3]}}]}'),
     "samples.json: data[0].FEATURES: shape [3] does not fit the config's dims [4]"),
    (lambda tmp: _repository(tmp, '{"data": [{"FEATURES": [1, 2]}]}'),
     "samples.json: data[0].FEATURES: 2 values do not fill dims [4]"),
    (lambda tmp: shutil.copytree(EXAMPLES / "add_double", tmp / "r" / "add_double") and tmp / "r",
     "add_double/config.pbtxt: ensemble 'add_double' runs model 'adder', which is in none of the --models "
     "repositories; add 'adder''s folder to a --models repository"),
    (lambda tmp: _bls_repository(tmp, {"caller": 'pb_utils.InferenceRequest(model_name="ranker", inputs=[])'}),
     "caller/1/model.py:3: model 'caller' asks model 'ranker' through BLS, which is in none of the --models "
     "repositories; add 'ranker''s folder to a --models repository"),
])
def test_bad_models_input_is_one_line_and_exit_2(tmp_path: Path, make, fragment: str) -> None:
    target = make(tmp_path)
    done = run_harness("cell", CELL, "--reports", str(tmp_path / "reports"), "--models", str(target))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr
    assert not (tmp_path / "reports" / "junit").exists()  # nothing started


@pytest.mark.parametrize(("args", "fragment"), [
    (["--models=/nowhere/repo"], "/nowhere/repo: not a folder"),
    ([f"--models={EXAMPLES}", "--reference=25.01-python-cpu-py3.11"], "no cell '25.01-python-cpu-py3.11'"),
], ids=["not-a-repository", "unknown-reference"])
def test_nox_matrix_refuses_bad_models_options(tmp_path: Path, args: list[str], fragment: str) -> None:
    from test_bad_input import nox_matrix, one_line_error

    one_line_error(nox_matrix(*args, f"--reports={tmp_path / 'r'}"), fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.fast
@pytest.mark.parametrize(("toml", "fragment"), [
    ('models = "repo"', "models: expected a list"),
    ("[tolerance]\nscorer = -1", "tolerance.scorer: expected a non-negative number"),
    ('[tolerance]\nscorer = "small"', "tolerance.scorer: expected a non-negative number"),
])
def test_matrix_models_keys_are_checked(tmp_path: Path, toml: str, fragment: str) -> None:
    from conftest import TEST_MATRIX

    from harness import matrix as matrix_mod

    path = tmp_path / "matrix.toml"
    path.write_text(toml + "\n" + TEST_MATRIX.read_text())
    with pytest.raises(HarnessError, match=fragment.replace("[", r"\[")):
        matrix_mod.load(path)


@pytest.mark.fast
def test_matrix_models_are_relative_to_the_matrix_file(tmp_path: Path) -> None:
    from conftest import TEST_MATRIX

    from harness import matrix as matrix_mod

    path = tmp_path / "matrix.toml"
    path.write_text('models = ["team/repo"]\n' + TEST_MATRIX.read_text() + "\n[tolerance]\nscorer = 1e-3\n")
    loaded = matrix_mod.load(path)
    assert loaded.models == (tmp_path / "team" / "repo",) and loaded.tolerance == {"scorer": 1e-3}


@pytest.mark.fast
def test_config_pbtxt_is_read_with_repeated_and_map_fields() -> None:
    config = pbtxt.parse((EXAMPLES / "scorer" / "config.pbtxt").read_text())
    assert config["input"] == [{"name": "FEATURES", "data_type": "TYPE_FP32", "dims": [4]}]
    assert config["parameters"] == {"scale": {"string_value": "0.25"}, "bias": {"string_value": "-1.5"}}
    assert config["instance_group"] == [{"kind": "KIND_GPU"}]


@pytest.mark.fast
@pytest.mark.parametrize(("text", "reason"), [
    ((FAULTY / "broken_config" / "config.pbtxt").read_text(),
     "line 5: expected ',' or ']' in the list opened at line 4, found 'output'"),
    ('name: "m"\ninput [ { name: "X" }\n', "line 2: missing ']' for the list opened at line 2"),
    ('name: "m"\ninput [ { name: "X"\n', "line 2: missing '}' for the block opened at line 2"),
    ("dims: [ 1 2 ]", "line 1: expected ',' or ']' in the list opened at line 1, found '2'"),
])
def test_a_config_the_reader_cannot_read_says_the_line_and_the_model_still_goes_to_the_server(
        text: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(pbtxt.ConfigSyntaxError) as info:
        pbtxt.parse(text, "m/config.pbtxt")
    assert info.value.reason == reason and str(info.value).startswith(f"m/config.pbtxt: {reason}; ")
    (tmp_path / "repo" / "m" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "m" / "config.pbtxt").write_text(text)
    found = repo.discover([tmp_path / "repo"])["m"]  # its loads check names Triton's error beside this one
    assert found.config == {} and found.config_error == reason


@pytest.mark.fast
def test_an_ensemble_loads_after_the_models_it_runs() -> None:
    from harness.matrix import Cell

    models = repo.discover([EXAMPLES])
    assert models["add_double"].dependencies == ("adder", "doubler")
    order = repo.load_order(models)
    assert order.index("adder") < order.index("add_double") and order.index("doubler") < order.index("add_double")
    # pipeline's BLS code asks tokenizer and scorer through a helper (_call("tokenizer", …)): they load first.
    assert models["pipeline"].dependencies == ("tokenizer", "scorer")
    assert order == ["accumulator", "adder", "doubler", "add_double", "tokenizer", "scorer", "pipeline", "streamer"]
    gpu = Cell(triton="24.10", backend="python", instance_kind="gpu", python="3.11")
    assert repo.override(models["add_double"], gpu) == (None, "")  # an ensemble has no instances of its own


@pytest.mark.fast
def test_a_bls_model_loads_after_the_models_its_code_asks(tmp_path: Path) -> None:
    repository = _bls_repository(tmp_path, {
        "a_router": 'pb_utils.InferenceRequest(model_name="z_ranker", inputs=[]); log("a_router")',
        "m_variable": 'pb_utils.InferenceRequest(model_name=self.target, inputs=[]); help("unknown")',
        "z_ranker": "return []",
    })
    models = repo.discover([repository])
    assert models["a_router"].dependencies == ("z_ranker",)  # its own name is no dependency
    assert models["m_variable"].dependencies == ()  # a name it computes, or one no model has, orders nothing
    assert repo.load_order(models) == ["z_ranker", "a_router", "m_variable"]


@pytest.mark.fast
def test_the_instance_kind_follows_the_cell() -> None:
    from harness.matrix import Cell

    models = repo.discover([EXAMPLES])
    cpu = Cell(triton="24.10", backend="python", instance_kind="cpu", python="3.11")
    override, note = repo.override(models["scorer"], cpu)
    assert json.loads(override)["instance_group"] == [{"kind": "KIND_CPU"}] and "KIND_GPU" in note
    assert repo.override(models["tokenizer"], cpu) == (None, "")  # already KIND_CPU
    onnx = repo.TeamModel(name="m", source=EXAMPLES, config={"platform": "onnxruntime_onnx"})
    assert "backend is onnxruntime" in repo.not_applicable(onnx, cpu)
    trt = repo.TeamModel(name="t", source=EXAMPLES, config={"backend": "tensorrt"})
    assert "GPUs only" in repo.not_applicable(trt, cpu)


@pytest.mark.fast
def test_differences_say_how_much_and_where() -> None:
    got = {"datatype": "FP32", "shape": [2, 2], "digest": "a", "values": [1.0, 2.0, 3.001, 4.0]}
    want = {"datatype": "FP32", "shape": [2, 2], "digest": "b", "values": [1.0, 2.0, 3.0, 4.0]}
    text = differ.difference(got, want)
    assert "max absolute difference 0.001" in text and "first differing index [1, 0]" in text
    assert differ.difference(got, want, 0.01) is None
    assert differ.difference({**got, "shape": [4]}, want) == "shape changed: [2, 2] -> [4]"
    assert differ.difference({**got, "datatype": "FP16"}, want) == "dtype changed: FP32 -> FP16"


def _answers(value: float, config: dict, *, loaded: bool = True) -> answers.ModelAnswers:
    record = {"datatype": "FP32", "shape": [1], "digest": str(value), "values": [value]}
    return answers.ModelAnswers(config=config if loaded else None, inputs="generated",
                                samples=[answers.SampleAnswers(answer=[{"Y": record}], digests={})])


@pytest.mark.fast
def test_the_report_step_compares_each_cell_with_the_oldest_release(tmp_path: Path) -> None:
    from harness.report import model

    axes = {"backend": "python", "instance_kind": "cpu", "python": "3.11", "env": None, "runner": "local"}
    base = {"max_batch_size": 0, "backend": "python"}
    answers.write(tmp_path, "23.10-x", {**axes, "triton": "23.10"},
                  {"same": _answers(1.0, base), "moved": _answers(1.0, base), "drifted": _answers(1.0, base)})
    answers.write(tmp_path, "24.10-x", {**axes, "triton": "24.10"},
                  {"same": _answers(1.0, base), "moved": _answers(1.5, {**base, "max_batch_size": 4}),
                   "drifted": _answers(1.0, {**base, "runtime": "", "response_cache": {"enable": True}})})
    for cell in ("23.10-x", "24.10-x"):  # the cells' own JUnit files, as a cell leaves them
        (tmp_path / "junit").mkdir(exist_ok=True)
        (tmp_path / "junit" / f"{cell}.xml").write_text(
            f'<testsuites><testsuite name="{cell}"><properties><property name="cell" value="{cell}"/></properties>'
            '</testsuite></testsuites>')
    compare.write(tmp_path)
    results = model.read(tmp_path)
    state = {(r.case, r.cell): r for r in results.results.values()}
    assert state[("models/same::matches-reference", "24.10-x")].state == State.PASSED
    moved = state[("models/moved::matches-reference", "24.10-x")]
    assert moved.state == State.FAILED and "differs from 23.10-x" in moved.message
    assert "max absolute difference 0.5" in moved.message and "first differing index [0]" in moved.message
    assert state[("models/moved::config-drift", "24.10-x")].state == State.FAILED  # drift + other answers
    drifted = state[("models/drifted::config-drift", "24.10-x")]
    assert drifted.state == State.PASSED and drifted.details.endswith("response_cache.enable: absent -> true")  # "" = absent
    assert state[("models/moved::matches-reference", "23.10-x")].state == State.PASSED  # the reference
    with pytest.raises(HarnessError, match="--reference: cell 'nope' left no answers"):
        compare.write(tmp_path, reference="nope")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def runner_cell(runner: str) -> str:
    """The cell of ``runner``; a docker one needs an engine."""
    if runner == "docker":
        from harness.servers import ServerError
        from harness.servers import docker as docker_runner

        try:
            docker_runner.engine().close()
        except ServerError as exc:
            require(False, f"no Docker engine: {exc}")
        return f"{CELL}-docker"
    return CELL


@pytest.mark.parametrize("runner", ["local", "docker"])
def test_a_real_cell_over_the_example_and_faulty_models(tmp_path: Path, cell_env, runner: str) -> None:
    """24.10 python cpu, with the same results on each runner (local, docker): the four good models
    green on every check, off_by red on validity saying by how much, dying red naming its dead stub,
    wrong_type red on conforms naming SUM's declared and served datatype, broken_config red on loads naming the file, Triton's parse error and the line the
    harness's reader stops at, failing_init red on loads with its RuntimeError and no "dead stub",
    names_a_model red on answers with the samples.json hint, accumulator (a sequence model) green over
    its samples.json streams and over a generated sequence; the repositories are never written."""
    team = tmp_path / "team"
    shutil.copytree(EXAMPLES, team / "good")
    shutil.copytree(FAULTY, team / "faulty")
    shutil.copytree(EXAMPLES / "accumulator", team / "generated" / "generated_sequence")  # no samples.json:
    (team / "generated" / "generated_sequence" / "samples.json").unlink()  # a generated stream of 3 steps
    for path in [*team.rglob("*"), team]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(team)
    reports = tmp_path / "reports"
    cell = runner_cell(runner)
    try:
        done = run_harness("cell", cell, "--reports", str(reports), "--models", str(team / "good"),
                           "--models", str(team / "faulty"), "--models", str(team / "generated"),
                           env={"TRITON_MATRIX_TEST": "models-mode"})
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        report = run_harness("report", "--reports", str(reports))
        assert report.returncode == 1, report.stderr
    finally:
        for path in [team, *team.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert _snapshot(team) == before
    data = json.loads((reports / "compat.json").read_text())
    states = {r["case"]: (r["state"], r["message"]) for r in data["results"] if r["cell"] == cell}
    for name in ("tokenizer", "scorer", "pipeline", "streamer", "adder", "doubler", "add_double", "accumulator"):
        checks = {c: s for c, s in states.items() if c.startswith(f"models/{name}::")}
        assert len(checks) == 9, checks
        expected_na = {"models/streamer::answers[http]", "models/streamer::conforms[http]"}
        assert all(s[0] == ("not-applicable" if c in expected_na else "passed") for c, s in checks.items()), checks
    generated = {c: s[0] for c, s in states.items() if c.startswith("models/generated_sequence::")}
    assert generated["models/generated_sequence::valid"] == "not-applicable", generated
    assert all(s == "passed" for c, s in generated.items() if not c.endswith("::valid")), generated
    assert len(json.loads((reports / "answers" / f"{cell}.json").read_text())
               ["models"]["generated_sequence"]["samples"]) == 3  # its three steps, each answered
    assert states["models/off_by::valid"][0] == "failed"
    assert "max absolute difference 0.001" in states["models/off_by::valid"][1]
    assert states["models/off_by::answers[http]"][0] == "passed"
    for protocol in ("http", "grpc"):
        state, message = states[f"models/dying::answers[{protocol}]"]
        assert state in ("failed", "error"), (state, message)  # error: the harness saw the stub exit
        assert "dead stub: dying" in message and "Stub process 'dying_0' is not healthy" in message, message
    for protocol in ("http", "grpc"):
        state, message = states[f"models/wrong_type::conforms[{protocol}]"]
        assert state == "failed" and "output 'SUM' is declared TYPE_INT32 [1], served INT64 [1]" in message, message
        assert states[f"models/wrong_type::answers[{protocol}]"][0] == "passed"
        state, message = states[f"models/names_a_model::answers[{protocol}]"]
        assert state == "failed" and "model 'knis' is not known" in message, message
        assert "likely needs a samples.json" in message and '{"data": [{"MODEL_NAME": ["<text>"]}]}' in message
    state, message = states["models/broken_config::loads"]
    assert state == "failed" and "dead stub" not in message, message
    assert f"{team / 'faulty' / 'broken_config' / 'config.pbtxt'} does not parse" in message, message
    assert 'Triton: 5:1: Expected ",", found "output"' in message, message
    assert "the harness's pbtxt reader stops at line 5: expected ',' or ']'" in message, message
    state, message = states["models/failing_init::loads"]
    assert state == "failed" and "dead stub" not in message, message
    assert "'failing_init' did not load" in message and "RuntimeError: tokenizer vocabulary missing" in message
    assert "## Your models" in (reports / "compat.md").read_text()
    assert 'id="models"' in (reports / "compat.html").read_text()
    stored = json.loads((reports / "answers" / f"{cell}.json").read_text())
    assert stored["models"]["scorer"]["note"].startswith("instance_group kind KIND_GPU overridden to KIND_CPU")
    assert stored["models"]["scorer"]["config"]["instance_group"][0]["kind"] == "KIND_CPU"


ENV_MODEL_CONFIG = """backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 1 ] } ]
output [ { name: "WHERE", data_type: TYPE_STRING, dims: [ 1 ] } ]
parameters { key: "EXECUTION_ENV_PATH", value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }
"""
ENV_MODEL = """import numpy as np
import teamlib
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = np.array([teamlib.GREETING.encode()], dtype=np.object_)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("WHERE", out)]) for _ in requests]
"""


def test_a_python_model_with_its_own_environment(tmp_path: Path, cell_env) -> None:
    """EXECUTION_ENV_PATH with $$TRITON_MODEL_DIRECTORY, packed as the README says (a venv of the cell's
    Python with a relocatable activate); numpy comes through a .pth to keep the test's archive small."""
    build = tmp_path / "build" / "env"
    subprocess.run([str(cell_env.interpreter.executable), "-m", "venv", "--without-pip", str(build)], check=True)
    site = build / "lib" / f"python{cell_env.interpreter.version}" / "site-packages"
    (site / "teamlib.py").write_text('GREETING = "from the model environment"\n')
    cell_site = next(cell_env.path.glob("lib/python*/site-packages"))
    (site / "cell-numpy.pth").write_text(f"{cell_site}\n")
    activate = build / "bin" / "activate"
    activate.write_text("\n".join('VIRTUAL_ENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"'
                                  if line.startswith("VIRTUAL_ENV=") else line
                                  for line in activate.read_text().splitlines()) + "\n")
    model = tmp_path / "repo" / "envmodel"
    (model / "1").mkdir(parents=True)
    subprocess.run(["tar", "-C", str(build), "-czf", str(model / "env.tar.gz"), "."], check=True)
    shutil.rmtree(tmp_path / "build")  # the archive must not lean on where it was built
    (model / "config.pbtxt").write_text(ENV_MODEL_CONFIG)
    (model / "1" / "model.py").write_text(ENV_MODEL)
    (model / "samples.json").write_text(json.dumps({"data": [{"X": [1.0]}],
                                                    "validation_data": [{"WHERE": ["from the model environment"]}]}))
    reports = tmp_path / "reports"
    done = run_harness("cell", CELL, "--reports", str(reports), "--models", str(tmp_path / "repo"),
                       env={"TRITON_MATRIX_TEST": "models-mode"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "7 passed" in done.stdout  # loads, answers and conforms per protocol, repeatable, valid
