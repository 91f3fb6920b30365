"""How two answer tensors differ, in one line: the message of a red valid or matches-reference check.

Standard library only: the report step compares cells without numpy. Records are the ones
``tensors.record`` writes (datatype, shape, digest, and ``values`` when small).
"""

from __future__ import annotations

import base64
import math
from typing import Any

STORED_ELEMENTS = 4096  # answers up to this many elements keep their values (tensors.record)


def difference(got: dict[str, Any], want: dict[str, Any], tolerance: float = 0.0, *,
               check_type: bool = True) -> str | None:
    """None when equal (within ``tolerance``, absolute), else what differs. ``check_type`` False: the
    expected side is validation_data, whose datatype and exact shape are not given."""
    if check_type and got["datatype"] != want["datatype"]:
        return f"dtype changed: {want['datatype']} -> {got['datatype']}"
    same_count = "values" in got and "values" in want and len(got["values"]) == len(want["values"])
    if got["shape"] != want["shape"] and (check_type or not same_count):
        return f"shape changed: {want['shape']} -> {got['shape']}"
    if got["digest"] == want["digest"]:
        return None
    if "values" not in got or "values" not in want:
        return (f"digest differs ({want['digest']} -> {got['digest']}); arrays over {STORED_ELEMENTS} "
                "elements are not stored, so the values are not shown")
    a, b = got["values"], want["values"]
    if got["datatype"] == "BYTES" or want["datatype"] == "BYTES":
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return (f"first differing index {_index(i, got['shape'], len(a))}: "
                        f"{base64.b64decode(y)!r} expected, {base64.b64decode(x)!r} answered")
        return None
    diffs = [0.0 if _nan(x) and _nan(y) else abs(float(x) - float(y)) for x, y in zip(a, b)]
    bad = [i for i, d in enumerate(diffs) if not d <= tolerance]
    if not bad:
        return None
    worst = max((d for d in diffs if not math.isnan(d)), default=math.nan)
    rel = max((d / abs(float(y)) for d, y in zip(diffs, b) if float(y) != 0 and not math.isnan(d)), default=math.inf)
    first = bad[0]
    return (f"max absolute difference {worst:.3g}, max relative difference {rel:.3g}; {len(bad)} of {len(a)} "
            f"values differ{f' beyond tolerance {tolerance:g}' if tolerance else ''}; first differing index "
            f"{_index(first, got['shape'], len(a))}: {b[first]!r} expected, {a[first]!r} answered")


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _index(flat: int, shape: list[int], count: int) -> list[int]:
    if not shape or math.prod(shape) != count:
        return [flat]
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return index[::-1]
