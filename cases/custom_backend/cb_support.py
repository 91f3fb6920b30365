"""Helpers of the custom-backend cases: model configs, the backends' lifecycle events, INFO.

The cbidentity backend writes one server-log line per entry-point call,
``cb-event <tag> <event> key=value ... [refused]``; a case gives its model a fresh tag (the config
parameter ``event_tag``) and reads back exactly its own events, in the order the server made the
calls. This goes through the server log, so it works wherever the server runs.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import deadlines

# TRITONBACKEND API version each release's server reports to a backend (TRITONBACKEND_ApiVersion),
# found by running cbidentity on each release of the matrix.
API_VERSIONS = {
    "23.10": (1, 16),
    "23.12": (1, 17),
    "24.03": (1, 19),
    "24.07": (1, 19),
    "24.10": (1, 19),
}

MEMORY_CPU = 0  # TRITONSERVER_MEMORY_CPU
INFO_FIELDS = ("requests", "call_rows", "index", "ordinal", "executes", "input_memory", "input_buffers",
               "info_memory")

_EVENT = re.compile(r'cb-event (\S+) (\w+)([^"\n]*)')


def info(row: Any) -> dict[str, int]:
    """One row of the INFO output as a dict (see INFO_FIELDS and the backend's header comment)."""
    return dict(zip(INFO_FIELDS, (int(v) for v in row), strict=True))


def new_tag() -> str:
    return "t" + uuid.uuid4().hex[:12]


def model_config(name: str, *, kind: str, backend: str = "cbidentity", max_batch_size: int = 0,
                 groups: tuple[int, ...] = (1,), tag: str | None = None, dims: tuple[int, ...] = (-1,),
                 parameters: dict[str, str] | None = None, dynamic_batching: dict[str, Any] | None = None) -> str:
    """A complete model config (JSON) for ``triton.load(name, config=...)``: INPUT0 -> OUTPUT0 + INFO."""
    params = dict(parameters or {})
    if tag is not None:
        params["event_tag"] = tag
    config: dict[str, Any] = {
        "name": name,
        "backend": backend,
        "max_batch_size": max_batch_size,
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": list(dims)}],
        "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": list(dims)},
                   {"name": "INFO", "data_type": "TYPE_INT64", "dims": [8]}],
        # KIND_GPU groups are pinned to GPU 0, so that a group of count n is n instances anywhere.
        "instance_group": [{"kind": kind, "count": count, **({"gpus": [0]} if kind == "KIND_GPU" else {})}
                           for count in groups],
        "parameters": {key: {"string_value": value} for key, value in params.items()},
    }
    if dynamic_batching is not None:
        config["dynamic_batching"] = dynamic_batching
    return json.dumps(config)


@dataclass(frozen=True)
class Event:
    tag: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    def __repr__(self) -> str:  # short, for assertion messages
        words = [f"{k}={v}" for k, v in self.fields.items()] + list(self.flags)
        return f"{self.name}({' '.join(words)})"


def events(log: str, *tags: str) -> list[Event]:
    """The backends' events in ``log`` whose tag is one of ``tags``, in log order."""
    found = []
    for match in _EVENT.finditer(log):
        tag, name, rest = match.groups()
        if tag not in tags:
            continue
        words = rest.split()
        fields = dict(w.split("=", 1) for w in words if "=" in w)
        flags = tuple(w for w in words if "=" not in w)
        found.append(Event(tag, name, fields, flags))
    return found


def names(found: list[Event]) -> list[str]:
    return [e.name for e in found]


def brief(e: Event) -> str:
    """'<event>[ <instance>][ <flags>][ state=none]': what order assertions compare."""
    words = [e.name]
    if "instance" in e.fields:
        words.append(e.fields["instance"])
    words.extend(e.flags)
    if "state" in e.fields:
        words.append(f"state={e.fields['state']}")
    return " ".join(words)


def wait_for_events(read_log: Callable[[], str], tags: tuple[str, ...], until: Callable[[list[Event]], bool],
                    what: str, timeout: float = 30.0) -> list[Event]:
    """Poll the server log until the events of ``tags`` satisfy ``until`` (bounded), and return them.

    Unload and a failed load answer before the server has necessarily finished the finalize calls
    they start, so a case waits for the call it expects last instead of sleeping.
    """
    deadline = deadlines.for_wait(timeout)
    while True:
        found = events(read_log(), *tags)
        if until(found):
            return found
        if deadline.poll() is None:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} ({deadline.evidence()}); "
                                 f"events: {found}")
        time.sleep(0.01)


def ends_with(name: str) -> Callable[[list[Event]], bool]:
    return lambda found: bool(found) and found[-1].name == name


def stats_when(read: Callable[[], dict[str, Any]], ready: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
               what: str = "the statistics") -> dict[str, Any]:
    """Statistics are updated after the response is sent: poll until ``ready`` holds (bounded); the last
    read is returned either way, so the case asserts on what the server really counted."""
    deadline = deadlines.for_wait(timeout)
    while True:
        stats = read()
        if ready(stats) or deadline.poll() is None:
            return stats
        time.sleep(0.05)
