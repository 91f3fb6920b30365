"""Helpers of the config area: one face over HTTP and gRPC for the structured APIs the cases read.

tritonclient answers the repository index, the statistics and the model config differently per
protocol (dicts with ints over HTTP, protobuf or JSON with int64 as strings over gRPC); these
helpers turn both into the same plain values, so each case asserts once for both protocols.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from harness import deadlines


# -- model config as protobuf ------------------------------------------------------------------------
def parse_pbtxt(text: str) -> model_config_pb2.ModelConfig:
    """A config.pbtxt (already rendered for the cell) as the server's own message type."""
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def config_from_dict(config: dict[str, Any]) -> model_config_pb2.ModelConfig:
    """The config the server returned (HTTP ints or gRPC JSON strings) as a ModelConfig message.

    Fields newer than the client's proto are ignored: the cases compare what they wrote.
    """
    return json_format.ParseDict(config, model_config_pb2.ModelConfig(), ignore_unknown_fields=True)


def config_differences(written: Any, served: Any, path: str = "") -> list[str]:
    """Every field set in ``written`` that ``served`` does not hold with the same value.

    Repeated messages compare element by element (same count); maps compare key by key; fields the
    server adds (defaults, instance names) are not differences.
    """
    problems: list[str] = []
    for field, value in written.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        got = getattr(served, field.name)
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            for key in value:
                if key not in got:
                    problems.append(f"{where}[{key!r}]: missing")
                elif value_field.message_type is not None:
                    problems += config_differences(value[key], got[key], f"{where}[{key!r}]")
                elif value[key] != got[key]:
                    problems.append(f"{where}[{key!r}]: wrote {value[key]!r}, server has {got[key]!r}")
        elif field.label == field.LABEL_REPEATED:
            if field.message_type is not None:
                if len(value) != len(got):
                    problems.append(f"{where}: wrote {len(value)} entries, server has {len(got)}")
                    continue
                for i, (w, s) in enumerate(zip(value, got)):
                    problems += config_differences(w, s, f"{where}[{i}]")
            elif list(value) != list(got):
                problems.append(f"{where}: wrote {list(value)}, server has {list(got)}")
        elif field.message_type is not None:
            if not served.HasField(field.name):
                problems.append(f"{where}: missing")
            else:
                problems += config_differences(value, got, where)
        elif value != got:
            problems.append(f"{where}: wrote {value!r}, server has {got!r}")
    return problems


# -- repository index ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str


def repository_index(client: Any) -> list[IndexEntry]:
    """The repository index (``POST /v2/repository/index``) as entries, for both protocols."""
    if client.protocol == "http":
        models = client.raw.get_model_repository_index()
    else:
        models = client.raw.get_model_repository_index(as_json=True).get("models", [])
    return [IndexEntry(m["name"], str(m.get("version", "")), m.get("state", ""), m.get("reason", ""))
            for m in models]


def index_states(client: Any, model: str) -> dict[str, tuple[str, str]]:
    """``{version: (state, reason)}`` of one model in the index (version '' when none was tried)."""
    return {e.version: (e.state, e.reason) for e in repository_index(client) if e.name == model}


# -- statistics ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """Cumulative statistics of one model version (``GET /v2/models/<m>/stats``)."""

    inference_count: int
    execution_count: int
    success_count: int
    fail_count: int
    queue_ns: int
    queue_count: int


def model_stats(client: Any, model: str, version: str = "") -> Stats:
    if client.protocol == "http":
        data = client.raw.get_inference_statistics(model, version)
    else:
        data = client.raw.get_inference_statistics(model, version, as_json=True)
    entries = data.get("model_stats", [])
    if not entries:
        raise AssertionError(f"no statistics for {model!r}: {data}")
    stats = entries[0]
    infer = stats.get("inference_stats", {})

    def count(key: str, field: str = "count") -> int:
        return int(infer.get(key, {}).get(field, 0))

    return Stats(
        inference_count=int(stats.get("inference_count", 0)),
        execution_count=int(stats.get("execution_count", 0)),
        success_count=count("success"),
        fail_count=count("fail"),
        queue_ns=count("queue", "ns"),
        queue_count=count("queue"),
    )


def stats_reaching(client: Any, model: str, done: Any, timeout: float = 10.0) -> Stats:
    """Statistics are recorded after the response is sent: poll (bounded) until ``done(stats)``."""
    deadline = deadlines.for_wait(timeout)
    while True:
        stats = model_stats(client, model)
        if done(stats):
            return stats
        if deadline.poll() is None:
            raise AssertionError(f"statistics of {model!r} did not get there within {timeout:g} s "
                                 f"({deadline.evidence()}): {stats}")
        time.sleep(0.02)


# -- errors -------------------------------------------------------------------------------------------
INVALID_ARGUMENT = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}  # exc.status() per protocol


def rejected(call: Any) -> InferenceServerException:
    """Run ``call()`` and return the server's rejection; fail when the call succeeded."""
    try:
        call()
    except InferenceServerException as exc:
        return exc
    raise AssertionError("the server accepted a request it must reject")


def error_lines(log: str) -> str:
    """The error and warning lines of a server log excerpt (what a failure message should show)."""
    keep = [line for line in log.splitlines() if re.match(r"^[EW]\d{4} ", line) or "libprotobuf" in line]
    return "\n".join(keep[-20:])


# -- bounded waits ------------------------------------------------------------------------------------
def wait_until_unloaded(client: Any, model: str, timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """Unloading is asynchronous: poll the index (bounded) until no version of ``model`` is UNLOADING."""
    deadline = deadlines.for_wait(timeout)
    while True:
        states = index_states(client, model)
        if not any(state == "UNLOADING" for state, _ in states.values()):
            return states
        if deadline.poll() is None:
            raise AssertionError(f"{model} still UNLOADING after {timeout:g} s ({deadline.evidence()}): {states}")
        time.sleep(0.05)


# -- metrics ------------------------------------------------------------------------------------------
def metric(metrics_url: str, name: str, model: str) -> float:
    """The sum over versions of one Prometheus metric of ``model`` (``GET /metrics``)."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode("utf-8")
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{model}"' in line:
            total += float(line.rsplit(" ", 1)[1])
            found = True
    if not found:
        raise AssertionError(f"no {name} for model {model!r} at {metrics_url}")
    return total


def metric_reaching(metrics_url: str, name: str, model: str, at_least: float, timeout: float = 10.0) -> float:
    """Like :func:`stats_reaching` for a Prometheus counter: it counts once the response is sent, so a
    read straight after the answer may see the count before it (bounded poll until ``at_least``)."""
    deadline = deadlines.for_wait(timeout)
    while True:
        value = metric(metrics_url, name, model)
        if value >= at_least or deadline.poll() is None:
            return value
        time.sleep(0.02)
