"""Models mode's ``conforms`` rules (harness/models/conform.py), the samples.json hint and the
diagnosis by condition (harness/models/diagnosis.py): pure, no server."""

from __future__ import annotations

import json

import pytest

from harness.models import conform, diagnosis, pbtxt, samples

pytestmark = pytest.mark.fast

# The official python_backend bls_decoupled_sync example's config, as the server serves it (JSON).
BLS_DECOUPLED = {"name": "bls_decoupled_sync", "max_batch_size": 0,
                 "input": [{"name": "IN", "data_type": "TYPE_INT32", "dims": ["1"]}],
                 "output": [{"name": "SUM", "data_type": "TYPE_INT32", "dims": ["1"]}]}
BATCHING = pbtxt.parse("""
max_batch_size: 8
output [ { name: "IDS", data_type: TYPE_INT32, dims: [ -1, 4 ] },
         { name: "FLAT", data_type: TYPE_FP32, dims: [ 6 ], reshape: { shape: [ 2, 3 ] } },
         { name: "TEXT", data_type: TYPE_STRING, dims: [ 1 ] },
         { name: "EXTRA", data_type: TYPE_FP32, dims: [ 1 ], optional: true } ]
""")


def _record(datatype: str, *shape: int) -> dict:
    return {"datatype": datatype, "shape": list(shape), "digest": "x"}


def _good() -> dict:
    return {"IDS": _record("INT32", 1, 3, 4), "FLAT": _record("FP32", 1, 6), "TEXT": _record("BYTES", 1, 1)}


def test_an_int64_answer_for_an_int32_output_is_named_with_both_forms() -> None:
    found = conform.mismatches(BLS_DECOUPLED, {"SUM": _record("INT64", 1)})
    assert [(m.output, m.problem) for m in found] == [("SUM", conform.Problem.DATATYPE)]
    assert found[0].sentence() == "output 'SUM' is declared TYPE_INT32 [1], served INT64 [1] (its datatype differs)"
    assert conform.mismatches(BLS_DECOUPLED, {"SUM": _record("INT32", 1)}) == []


def test_dims_allow_any_size_for_minus_one_a_batch_up_to_max_batch_size_and_the_reshape() -> None:
    assert conform.mismatches(BATCHING, _good()) == []
    assert conform.mismatches(BATCHING, {**_good(), "IDS": _record("INT32", 8, 1, 4),
                                         "FLAT": _record("FP32", 2, 2, 3)}) == []


@pytest.mark.parametrize(("output", "record", "served"), [
    ("IDS", _record("INT32", 1, 3, 5), "INT32 [1, 3, 5]"),  # 5 where the dims say 4
    ("IDS", _record("INT32", 9, 3, 4), "INT32 [9, 3, 4]"),  # a batch over max_batch_size
    ("IDS", _record("INT32", 3, 4), "INT32 [3, 4]"),  # no batch dimension
    ("TEXT", _record("BYTES", 1, 2), "BYTES [1, 2]"),
    ("FLAT", _record("FP32", 1, 3, 2), "FP32 [1, 3, 2]"),  # neither the dims nor the reshape
])
def test_a_shape_the_dims_do_not_allow_is_named(output: str, record: dict, served: str) -> None:
    found = conform.mismatches(BATCHING, {**_good(), output: record})
    assert [(m.output, m.problem, m.served) for m in found] == [(output, conform.Problem.SHAPE, served)]
    assert "declared TYPE_" in found[0].sentence() and "batch <= 8" in found[0].declared


def test_a_missing_output_and_an_undeclared_one_are_named_an_optional_one_may_be_absent() -> None:
    answer = _good()
    del answer["TEXT"]
    answer["DEBUG"] = _record("FP32", 1)
    found = {m.output: m for m in conform.mismatches(BATCHING, answer)}
    assert set(found) == {"TEXT", "DEBUG"}  # EXTRA is optional
    assert found["TEXT"].sentence() == "output 'TEXT' (declared TYPE_STRING [batch <= 8, 1]) is missing from the answer"
    assert found["DEBUG"].sentence() == "output 'DEBUG' is not declared in the served config (served FP32 [1])"


def test_every_response_of_every_answer_is_checked_each_mismatch_said_once() -> None:
    wrong = {"SUM": _record("INT64", 1)}
    answers = [[wrong, wrong], [wrong], [{"SUM": _record("INT32", 1)}]]
    assert len(conform.answer_mismatches(BLS_DECOUPLED, answers)) == 1
    assert conform.answer_mismatches(BLS_DECOUPLED, [[]]) == []  # a decoupled model that sent nothing


def test_the_hint_shows_a_samples_json_entry_for_the_inputs() -> None:
    config = pbtxt.parse("""input [ { name: "MODEL_NAME", data_type: TYPE_STRING, dims: [ 1 ] },
                                    { name: "X", data_type: TYPE_FP32, dims: [ -1, 2 ] } ]""")
    assert samples.template(config) == {"data": [{"MODEL_NAME": ["<text>"],
                                                  "X": {"content": [0, 0], "shape": [1, 2]}}]}
    hint = diagnosis.needs_samples("bls", config, "/repo/bls/samples.json")
    assert "likely needs a samples.json" in hint and "/repo/bls/samples.json" in hint
    assert json.dumps(samples.template(config)) in hint


def test_the_hint_entry_is_a_samples_json_the_harness_reads(tmp_path) -> None:
    config = pbtxt.parse('input [ { name: "X", data_type: TYPE_INT32, dims: [ -1 ] } ]')
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(samples.template(config)))
    samples.check_against(samples.load(path), config, str(path))


PARSE_LOG = ('[libprotobuf ERROR text_format.cc:337] Error parsing text-format inference.ModelConfig: 5:1: '
             'Expected ",", found "output".\n'
             'E1205 model_repository_manager.cc:1460] "Poll failed for model directory \'m1\': failed to read text '
             'proto from /tmp/x/repository/m1/config.pbtxt"\n')


def test_a_config_triton_cannot_read_is_named_with_its_error_and_where_the_reader_stops() -> None:
    evidence = diagnosis.Evidence(refused=True, log=PARSE_LOG, config_file="/team/m1/config.pbtxt",
                                  reader_error="line 5: expected ',' or ']' in the list opened at line 4")
    failure = diagnosis.diagnose("'m1' did not load", "failed to poll from model repository", evidence)
    assert isinstance(failure, diagnosis.ConfigUnreadable)
    text = str(failure)
    assert "/team/m1/config.pbtxt does not parse: Triton: 5:1: Expected \",\", found \"output\"; " in text
    assert "the harness's pbtxt reader stops at line 5" in text and "dead stub" not in text


def test_dead_stub_only_with_a_stub_seen_to_end() -> None:
    said = "load failed for model 'm3': version 1 is at UNAVAILABLE state: Internal: RuntimeError: vocabulary"
    refused = diagnosis.diagnose("'m3' did not load", said, diagnosis.Evidence(refused=True))
    assert isinstance(refused, diagnosis.ModelRefused) and str(refused) == f"'m3' did not load: {said}"
    ended = "the python backend stub of model 'm3' (pid 12) exited with code 3"
    dead = diagnosis.diagnose("m3 over grpc", "Stub process 'm3_0' is not healthy.",
                              diagnosis.Evidence(refused=True, stub_ends=(ended,)))
    assert isinstance(dead, diagnosis.DeadStub) and str(dead).startswith("dead stub: m3 over grpc") and ended in str(dead)
    silent = diagnosis.diagnose("m3 over http", "timed out", diagnosis.Evidence(
        refused=False, no_stub_runs="no stub process of model 'm3' runs under the server (pid 7)"))
    assert isinstance(silent, diagnosis.NoAnswer) and "dead stub" not in str(silent) and "no stub process" in str(silent)


def test_the_hint_goes_only_with_the_models_own_refusal() -> None:
    refused = diagnosis.diagnose("m over http", "model 'knis' is not known", diagnosis.Evidence(refused=True), "hint: x")
    assert str(refused).endswith("\nhint: x")
    assert "hint" not in str(diagnosis.diagnose("m over http", "timed out", diagnosis.Evidence(refused=False), "hint: x"))
