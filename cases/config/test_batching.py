"""Batching config is honoured: dynamic batching forms batches within max_queue_delay, and the
sequence batcher keeps each sequence's requests together with their own state."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from cfg_support import metric, metric_reaching, model_stats, stats_reaching
from tritonclient.utils import InferenceServerException

from harness.client import Client

BATCHING = "cfg_batching"
DELAY_NS = 1_500_000_000  # max_queue_delay_microseconds of cfg_batching
CONCURRENT = 8  # = its max_batch_size
ROUNDS = 3  # of CONCURRENT requests, until one reaches the batcher within the delay (see the case)
SEQUENCE = "cfg_sequence"

pytestmark = pytest.mark.backend("python")


def new_client(triton: Any, protocol: str) -> Client:
    return Client(protocol, triton.http_client() if protocol == "http" else triton.grpc_client())


def infer_concurrently(triton: Any, protocol: str, values: list[float], timeout: float = 30.0) -> list[dict]:
    """One request per value, each from its own thread and client, released together."""
    results: list[Any] = [None] * len(values)
    barrier = threading.Barrier(len(values))

    def send(i: int) -> None:
        client = new_client(triton, protocol)
        try:
            barrier.wait(timeout)
            results[i] = client.infer(BATCHING, {"INPUT0": np.array([[values[i]]], dtype=np.float32)})
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"requests did not finish within {timeout} s"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"requests failed: {errors}"
    return results


@pytest.mark.models(BATCHING)
def test_dynamic_batching_forms_a_full_batch(client: Any, triton: Any) -> None:
    """8 concurrent requests run as one batch of 8 (the model saw it; statistics and metrics count one
    execution of 8 inferences), without waiting the delay.

    Up to ROUNDS rounds: 8 requests released together reach the batcher within its delay on an idle
    machine, but a busy one can spread them wider (then the batch is split, not wrong). A release
    whose batcher never forms the full batch, or waits the delay with it, fails every round."""
    rounds: list[str] = []
    for _ in range(ROUNDS):
        before = model_stats(client, BATCHING)
        executions = metric(triton.metrics_url, "nv_inference_exec_count", BATCHING)
        inferences = metric(triton.metrics_url, "nv_inference_count", BATCHING)
        values = [float(i) for i in range(CONCURRENT)]
        results = infer_concurrently(triton, client.protocol, values)
        for value, out in zip(values, results):
            assert out["OUTPUT0"].tolist() == [[value]], "a response carries another request's data"
        seen = sorted(int(out["BATCH_SIZE"][0, 0]) for out in results)
        after = stats_reaching(client, BATCHING, lambda s: s.inference_count >= before.inference_count + CONCURRENT)
        queued = (after.queue_ns - before.queue_ns) / CONCURRENT
        rounds.append(f"batch sizes {seen}, {queued / 1e9:.2f} s queued on average")
        if seen == [CONCURRENT] * CONCURRENT and queued < DELAY_NS / 2:
            break
    assert seen == [CONCURRENT] * CONCURRENT, f"no full batch in {len(rounds)} rounds: {'; '.join(rounds)}"
    assert queued < DELAY_NS / 2, (f"a full batch waited the delay ({DELAY_NS / 1e9} s) in each of "
                                   f"{len(rounds)} rounds: {'; '.join(rounds)}")
    assert after.execution_count - before.execution_count == 1
    assert after.inference_count - before.inference_count == CONCURRENT
    assert metric_reaching(triton.metrics_url, "nv_inference_exec_count", BATCHING, executions + 1) - executions == 1
    assert metric_reaching(triton.metrics_url, "nv_inference_count", BATCHING,
                           inferences + CONCURRENT) - inferences == CONCURRENT


@pytest.mark.models(BATCHING)
def test_lone_request_waits_max_queue_delay(client: Any) -> None:
    """A lone request is held up to max_queue_delay for company, then runs as a batch of 1."""
    before = model_stats(client, BATCHING)
    out = client.infer(BATCHING, {"INPUT0": np.array([[7.0]], dtype=np.float32)})
    assert int(out["BATCH_SIZE"][0, 0]) == 1
    after = stats_reaching(client, BATCHING, lambda s: s.queue_count >= before.queue_count + 1)
    queued = after.queue_ns - before.queue_ns
    assert after.queue_count - before.queue_count == 1
    assert queued >= DELAY_NS * 0.95, f"queued {queued / 1e9:.3f} s, less than max_queue_delay {DELAY_NS / 1e9} s"
    assert queued < DELAY_NS + 5e9, f"queued {queued / 1e9:.3f} s, far beyond max_queue_delay"


SEQUENCE_TIMEOUT = 10.0  # each request of the sequences answers within this (a broken stub hangs)


def test_sequences_keep_their_own_state(client: Any, triton_factory: Any) -> None:
    """Two interleaved sequences each see only their own running sum; a restart resets one.

    On a spare server, each request bounded by SEQUENCE_TIMEOUT: a release whose stub never answers
    the second concurrent sequence (a batch with the empty slot of the other) leaves requests stuck,
    and those must not hold the cell's server.
    """
    a, b = 1001, 2002
    steps = [(a, 1.0, True, 1.0), (b, 10.0, True, 10.0), (a, 2.0, False, 3.0), (b, 20.0, False, 30.0),
             (a, 3.0, False, 6.0), (b, 30.0, False, 60.0), (a, 5.0, True, 5.0), (b, 1.0, False, 61.0)]
    with triton_factory() as spare:
        assert spare.load(SEQUENCE).error is None
        if client.protocol == "http":
            own, kwargs = Client("http", spare.http_client(network_timeout=SEQUENCE_TIMEOUT)), {}
        else:
            own, kwargs = Client("grpc", spare.grpc_client()), {"client_timeout": SEQUENCE_TIMEOUT}
        try:
            for seq, value, start, expected in steps:
                try:
                    out = own.infer(SEQUENCE, {"INPUT0": np.array([[value]], dtype=np.float32)},
                                    sequence_id=seq, sequence_start=start, **kwargs)
                except (InferenceServerException, OSError) as exc:
                    pytest.fail(f"sequence {seq}: sent {value}, start={start}: {exc}", pytrace=False)
                assert out["OUTPUT0"].tolist() == [[expected]], f"sequence {seq}: sent {value}, start={start}"
        finally:
            own.close()
