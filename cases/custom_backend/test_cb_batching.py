"""The dynamic batcher in front of the C backend: requests reach ModelInstanceExecute in the batch
sizes the config asks for, each response carries its own request's data, and the model statistics
count the same batches."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as httpclient
from cb_support import events, info, model_config, new_tag, stats_when

pytestmark = pytest.mark.backend("custom")

MODEL = "cb_batching"
QUEUE_DELAY_US = 30_000_000  # 30 s: no batch in these cases may be sent because the delay ran out
DEADLINE_S = 10.0  # every response must arrive well before that delay


@pytest.mark.parametrize(
    ("max_batch_size", "preferred", "rows", "requests", "calls"),
    [
        (4, None, 1, 8, [(4, 4), (4, 4)]),   # full batches of max_batch_size requests
        (6, None, 2, 6, [(3, 6), (3, 6)]),   # batch size counts rows: 3 requests of 2 rows
        (8, [4], 1, 4, [(4, 4)]),            # a preferred size is sent at once, below max_batch_size
    ],
    ids=["max_batch_size", "rows_per_request", "preferred_batch_size"],
)
def test_batches_arrive_as_configured(triton, triton_log, loader, kind, max_batch_size, preferred, rows, requests,
                                      calls):
    """``calls`` lists each execute call as (requests, batch rows); nothing else may reach the backend."""
    tag = new_tag()
    batching = {"max_queue_delay_microseconds": QUEUE_DELAY_US}
    if preferred:
        batching["preferred_batch_size"] = preferred
    loader.require(MODEL, config=model_config(MODEL, kind=kind, max_batch_size=max_batch_size, dims=(2,), tag=tag,
                                              dynamic_batching=batching))
    client = triton.http_client(concurrency=requests)
    try:
        sent = []
        for k in range(requests):
            x = np.full((rows, 2), k, np.float32)
            tensor = httpclient.InferInput("INPUT0", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            sent.append((x, client.async_infer(MODEL, [tensor])))
        results = [(x, handle.get_result(block=True, timeout=DEADLINE_S)) for x, handle in sent]
        stats = stats_when(lambda: client.get_inference_statistics(MODEL)["model_stats"][0],
                           lambda s: s["execution_count"] >= len(calls) and s["inference_count"] >= requests * rows)
    finally:
        client.close()

    executes = [e for e in events(triton_log(), tag) if e.name == "execute"]
    assert [(int(e.fields["requests"]), int(e.fields["batch"])) for e in executes] == calls, executes
    by_call: dict[int, list[int]] = {}
    for x, result in results:
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x)  # its own data, not a neighbour's
        rows_info = [info(r) for r in result.as_numpy("INFO")]
        assert len(rows_info) == rows and all(r == rows_info[0] for r in rows_info)
        got = rows_info[0]
        assert (got["requests"], got["call_rows"]) == calls[got["executes"] - 1], got
        by_call.setdefault(got["executes"], []).append(got["index"])
    assert {n: sorted(ix) for n, ix in by_call.items()} == {
        n + 1: list(range(call[0])) for n, call in enumerate(calls)}
    assert stats["execution_count"] == len(calls)
    assert stats["inference_count"] == requests * rows
    assert [(b["batch_size"], b["compute_infer"]["count"]) for b in stats["batch_stats"]] == \
        [(calls[0][1], len(calls))]
