"""The checks of models mode, run in the cell for each of the team's models (``plugin`` parametrizes them).

They run in order on one server: ``loads`` (with the cell's instance kind), ``answers`` over HTTP then
gRPC (each sample three times; a decoupled model over the gRPC stream), ``conforms`` per protocol
(the answers against the served config), ``repeatable`` and ``valid``. A failure says why by
condition (``diagnosis``).
A later check of a model that did not load or answer is skipped, saying why; a model that cannot run
on the cell is not applicable in every check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.layout import NOT_APPLICABLE_PREFIX as NOT_APPLICABLE
from harness.models import REPEATS, SAMPLES_FILE, conform, diagnosis, differ, infer, repo, samples, tensors
from harness.models.answers import ModelAnswers, SampleAnswers
from harness.models.plugin import ModelsRun
from harness.incell.plugin import plugin_of
from harness.servers import ERROR_LINE, NOISE, Server
from harness.servers.inside import InsideError

def _skip_unless_applicable(run: ModelsRun, model: str) -> ModelAnswers:
    result = run.results[model]
    if result.not_applicable:
        pytest.skip(NOT_APPLICABLE + result.not_applicable)
    return result


def _log_errors(server: Server, offset: int, limit: int = 12) -> list[str]:
    lines = server.log_since(offset).splitlines()
    return [ln for ln in lines if ERROR_LINE.search(ln) and not NOISE.search(ln)][-limit:]


def _model_stubs(server: Server, model: str) -> list[int] | None:
    """The model's python stub processes under the server, where it runs (None where they cannot be seen)."""
    try:
        return [p.pid for p in server.inside.stubs(model)]
    except (NotImplementedError, InsideError):
        return None


def _diagnose(what: str, message: str, server: Server, offset: int, model: str, models_run: ModelsRun, *,
              refused: bool, hint: str | None = None) -> diagnosis.CheckFailure:
    """The failure, by condition, from what was seen: a stub of the model that ended (since this server
    started), the server log of the check, whether the server answered, the harness's reading of the config."""
    deadline = time.monotonic() + 1.5  # a stub's death can take the server down a moment later (24.03)
    while server.exit_status() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    team = models_run.models[model]
    no_stub = None
    if not refused and _model_stubs(server, model) == []:  # 24.07 logs nothing and lets the request hang
        no_stub = f"no stub process of model {model!r} runs under the server (pid {server.inside.server_pid()})"
    ended = None
    try:
        server.check_alive()
    except Exception as exc:  # noqa: BLE001 - a server that died during the check: say so
        ended = str(exc).splitlines()[0].split("; log ")[0]
    evidence = diagnosis.Evidence(
        refused=refused, stub_ends=tuple(server.ended_stubs(0.0, model)), log=server.log_since(offset),
        log_errors=tuple(_log_errors(server, offset)), config_file=str(team.config_path),
        reader_error=team.config_error, no_stub_runs=no_stub, server_ended=ended)
    return diagnosis.diagnose(what, message, evidence, hint)


def test_loads(model: str, models_run: ModelsRun, server: Server, cell: Any) -> None:
    """The model loads on the cell (its instance kind the cell's); the server's config is kept."""
    team = models_run.models[model]
    result = models_run.results[model]
    result.not_applicable = repo.not_applicable(team, cell)
    _skip_unless_applicable(models_run, model)
    config, result.note = repo.override(team, cell)
    offset = server.log_offset()
    loaded = server.load(model, config=config)
    if loaded.error is not None:
        result.load_error = loaded.error
        failure = _diagnose(f"{model!r} did not load", loaded.error, server, offset, model, models_run, refused=True)
        pytest.fail(str(failure), pytrace=False)
    client = server.http_client()
    try:
        result.config = client.get_model_config(model)
    finally:
        client.close()
    result.inputs = SAMPLES_FILE if team.samples_path.is_file() else "generated"


def _inputs(models_run: ModelsRun, model: str) -> list[tuple[tensors.Arrays, samples.Sample | None]]:
    """(arrays, the samples.json entry or a generated sequence's step, else None) per request."""
    team = models_run.models[model]
    config = models_run.results[model].config or {}
    if not team.samples_path.is_file():
        if samples.is_sequence(config):  # a generated sequence: each step other bytes
            last = tensors.GENERATED_STEPS - 1
            return [(tensors.generate(model, config, step=j),
                     samples.Sample(inputs=(), stream=0, start=j == 0, end=j == last, entry=f"generated step {j}"))
                    for j in range(tensors.GENERATED_STEPS)]
        return [(tensors.generate(model, config), None)]
    return [(tensors.sample_arrays(s, config), s) for s in samples.load(team.samples_path)]


def _sequence_step(sample: samples.Sample | None, config: dict[str, Any], attempt: int) -> infer.SequenceStep | None:
    """A sequence model's request: each stream, each repeat its own sequence id (a sample that is no
    stream's step is a sequence of one)."""
    if not samples.is_sequence(config):
        return None
    if sample is None or sample.stream is None:
        return infer.SequenceStep(sequence_id=attempt * 100_000 + 99_999, start=True, end=True)
    return infer.SequenceStep(sequence_id=attempt * 100_000 + sample.stream + 1, start=sample.start, end=sample.end)


def _decoupled(config: dict[str, Any]) -> bool:
    return bool((config.get("model_transaction_policy") or {}).get("decoupled"))


def test_answers(model: str, protocol: str, models_run: ModelsRun, server: Server, request: Any) -> None:
    """Each sample, sent three times, gets an answer (a decoupled model: every response to the final)."""
    result = _skip_unless_applicable(models_run, model)
    if not result.loaded:
        pytest.skip("the model did not load (see its loads check)")
    config = result.config or {}
    decoupled = _decoupled(config)
    if decoupled and protocol == "http":
        pytest.skip(NOT_APPLICABLE + "a decoupled model answers over the gRPC stream, not HTTP")
    try:
        inputs = _inputs(models_run, model)
    except tensors.InputMismatch as exc:
        pytest.fail(f"{model}: {exc}", pytrace=False)
    if not result.samples:
        result.samples = [SampleAnswers() for _ in inputs]
    timeout = min(30.0, plugin_of(request.config).settings.case_timeout)
    grpc = protocol == "grpc"
    client = server.grpc_client() if grpc else server.http_client(network_timeout=timeout,
                                                                   connection_timeout=timeout)
    module = _module(protocol)
    team = models_run.models[model]
    served = models_run.served[f"{model}/{protocol}"] = []  # afresh: a re-run does not add twice
    for sample in result.samples:
        sample.digests[protocol] = []  # afresh: a re-run does not add twice
    try:
        # Each repeat sends every sample in turn: a sequence model's stream is sent whole, in order.
        for attempt in range(1, REPEATS + 1):
            for i, (arrays, entry) in enumerate(inputs):
                digests = result.samples[i].digests[protocol]
                offset = server.log_offset()
                step = _sequence_step(entry, config, attempt)
                try:
                    if decoupled:
                        answer = infer.stream(client, module, model, arrays, timeout, step)
                    else:
                        answer = infer.unary(client, module, model, arrays, timeout, grpc, step)
                except Exception as exc:  # noqa: BLE001 - the server's message is the finding
                    failed, refused = _message(exc), infer.refused(exc)
                else:
                    failed = None
                    served.append(answer)
                if failed is not None:
                    result.samples[i].error = result.samples[i].error or failed
                    hint = (diagnosis.needs_samples(model, config, str(team.samples_path))
                            if not team.samples_path.is_file() else None)
                    text = str(_diagnose(f"{model} over {protocol}, sample {i}, request {attempt} of {REPEATS}",
                                         failed, server, offset, model, models_run, refused=refused, hint=hint))
                    first = models_run.first_failures.setdefault(f"{model}/{protocol}", text.splitlines()[0])
                    if first != text.splitlines()[0]:  # a re-run: the first attempt is the finding
                        text = f"{first} [re-run: {text}]"
                    pytest.fail(text, pytrace=False)
                if result.samples[i].answer is None:
                    result.samples[i].answer = answer
                digests.append(infer.digest(answer))
    finally:
        client.close()


def test_conforms(model: str, protocol: str, models_run: ModelsRun) -> None:
    """Every answer over the protocol is what the served config declares: each output's datatype, a
    shape its dims allow, every declared output there and nothing undeclared."""
    result = _skip_unless_applicable(models_run, model)
    if not result.loaded:
        pytest.skip("the model did not load (see its loads check)")
    config = result.config or {}
    if _decoupled(config) and protocol == "http":
        pytest.skip(NOT_APPLICABLE + "a decoupled model answers over the gRPC stream, not HTTP")
    served = models_run.served.get(f"{model}/{protocol}") or []
    if not served:
        pytest.skip(f"the model gave no answer over {protocol} (see its answers[{protocol}] check)")
    found = conform.answer_mismatches(config, served)
    if found:
        pytest.fail(f"{model} over {protocol}: the answers do not match the served config: "
                    + "; ".join(m.sentence() for m in found[:5]), pytrace=False)


def test_repeatable(model: str, models_run: ModelsRun) -> None:
    """Every answer to a sample is the same: each repeat, over each protocol."""
    result = _answered(models_run, model)
    for i, sample in enumerate(result.samples):
        seen = {(p, n): d for p, ds in sample.digests.items() for n, d in enumerate(ds, 1)}
        if len(set(seen.values())) > 1:
            first = next(iter(seen.values()))
            other = next(k for k, d in seen.items() if d != first)
            pytest.fail(f"{model}: sample {i} answered differently: {other[0]} request {other[1]} differs from "
                        f"the first answer (digests {sorted(set(seen.values()))})", pytrace=False)


def test_valid(model: str, models_run: ModelsRun) -> None:
    """Answers equal samples.json's validation_data (exact, or within matrix.toml's tolerance)."""
    result = _answered(models_run, model)
    team = models_run.models[model]
    if not team.samples_path.is_file():
        pytest.skip(NOT_APPLICABLE + f"no {SAMPLES_FILE} with validation_data (inputs were generated)")
    loaded = samples.load(team.samples_path)
    if all(s.expected is None for s in loaded):
        pytest.skip(NOT_APPLICABLE + f"{SAMPLES_FILE} has no validation_data")
    tolerance = models_run.tolerance.get(model, 0.0)
    config = result.config or {}
    outputs = {s.name: s for s in samples.specs(config, "output")}
    problems = []
    for i, (sample, answered) in enumerate(zip(loaded, result.samples)):
        if sample.expected is None or not answered.answer:
            continue
        last = answered.answer[-1]  # a decoupled model: the last response that carried outputs
        for tensor in sample.expected:
            if tensor.name not in last:
                problems.append(f"sample {i}: no output {tensor.name!r} in the answer (it has {', '.join(last)})")
                continue
            want = tensors.expected_record(tensor, outputs.get(tensor.name), tensors.batched(config))
            got = last[tensor.name]
            diff = differ.difference(got, want, tolerance, check_type=False)
            if diff:
                problems.append(f"sample {i} output {tensor.name}: {diff}")
    if problems:
        pytest.fail(f"{model}: not equal to validation_data: " + "; ".join(problems[:5]), pytrace=False)


def _answered(models_run: ModelsRun, model: str) -> ModelAnswers:
    result = _skip_unless_applicable(models_run, model)
    if not result.loaded:
        pytest.skip("the model did not load (see its loads check)")
    if not result.samples or any(s.error or s.answer is None for s in result.samples):
        pytest.skip("the model did not answer every sample (see its answers checks)")
    return result


def _module(protocol: str) -> Any:
    if protocol == "grpc":
        import tritonclient.grpc as module
    else:
        import tritonclient.http as module
    return module


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
