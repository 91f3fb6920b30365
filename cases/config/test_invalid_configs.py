"""A broken config is refused at load with a clear message, and the server stays up (data-driven).

Every folder under ``invalid/models/`` next to this file is one case: a model whose ``config.pbtxt``
is broken in one way, and an ``expect.toml`` saying where the server's message must be and what it
must contain::

    why = "what is broken, in words"          # shown when the case fails
    where = "response"                        # the load response (default), or "log": the server log
                                              # lines written during the load, for messages the
                                              # server only logs (text-format parse errors answer
                                              # "failed to poll from model repository")
    fragment = "must specify 'dims'"          # a piece of the server's message, matched verbatim

``where`` and ``fragment`` may instead be tables keyed by Triton release where the server changed::

    [fragment]
    default = "model input must specify 'dims'"          # releases older than every key below
    "24.07" = "model input 'INPUT0' must specify 'dims'"   # this release and newer ones

Optional: ``spare = true``: the load is tried on a spare server that already serves the healthy
model, bounded by SPARE_LOAD_TIMEOUT (for configs a release may never answer the load of: a load that
never answers fails the case as a hang, and cases/known_issues.toml says where that is known).
Optional: ``instance_kind = "cpu"``, ``min_triton = "24.03"``, ``max_triton = "24.07"`` (the case is
not applicable elsewhere, with that reason). The case fails when the model loads, or when the load
fails without the fragment; the failure names the expected fragment, the response and the log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.client import Client
from harness.servers import LoadTimeout

HERE = Path(__file__).resolve().parent
CASES = HERE / "invalid" / "models"
CONTROL = "cfg_echo"  # a healthy model that must keep serving after every refused load
KEYS = {"why", "where", "fragment", "instance_kind", "min_triton", "max_triton", "spare"}
WHERE = ("response", "log")
# Seconds without progress a load on the spare server is given before it counts as never answered. The
# load's deadline nests inside the case's: its 3x cap (12 s) ends before a declared hang's 15 s
# deadline, so a load that never answers is reported as that, not as the case's timeout.
SPARE_LOAD_TIMEOUT = 4.0

pytestmark = [pytest.mark.backend("python"), pytest.mark.models(CONTROL)]


# -- expect.toml ---------------------------------------------------------------------------------------
def _load_toml(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 cells: the small subset expect.toml files use
        return _parse_simple_toml(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def _parse_simple_toml(text: str, path: Path) -> dict[str, Any]:
    """``key = "string"`` / ``key = true`` lines and ``[table]`` headers; enough for expect.toml without tomllib."""
    data: dict[str, Any] = {}
    table = data
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[\s*([A-Za-z_]+)\s*\]\s*(#.*)?$", line)
        if header:
            table = data.setdefault(header.group(1), {})
            continue
        pair = re.match(r"""^("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|true|false)\s*(#.*)?$""", line)
        if not pair:
            raise ValueError(f"{path}:{n}: cannot read {raw!r} (write key = \"string\" or [table])")
        key, value = pair.group(1).strip("\"'"), pair.group(2)
        if value in ("true", "false"):
            table[key] = value == "true"
            continue
        table[key] = value[1:-1] if value.startswith("'") else bytes(value[1:-1], "utf-8").decode("unicode_escape")
    return data


def for_release(value: Any, release: Any, what: str, path: Path) -> str | None:
    """A plain value, or from a ``{default, "YY.MM": ...}`` table the newest key <= ``release``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{path}: {what} must be a string or a table of releases")
    try:
        return release.pick(value)
    except ValueError as exc:
        raise ValueError(f"{path}: {what}: {exc}") from None


def read_expectation(folder: Path) -> dict[str, Any]:
    path = folder / "expect.toml"
    if not path.is_file():
        raise ValueError(f"{folder}: no expect.toml; add one naming the expected message fragment")
    data = _load_toml(path)
    unknown = set(data) - KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; use {sorted(KEYS)}")
    if "fragment" not in data:
        raise ValueError(f"{path}: no 'fragment' (a piece of the server's message)")
    return data


def _params() -> list[Any]:
    params = []
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir() and p.name != "__pycache__") if CASES.is_dir() else []:
        expect = read_expectation(folder)
        marks = []
        if "instance_kind" in expect:
            marks.append(pytest.mark.instance_kind(expect["instance_kind"]))
        if "min_triton" in expect:
            marks.append(pytest.mark.min_triton(expect["min_triton"]))
        if "max_triton" in expect:
            marks.append(pytest.mark.max_triton(expect["max_triton"]))
        params.append(pytest.param(folder, expect, id=folder.name, marks=marks))
    return params


# -- the case ------------------------------------------------------------------------------------------
def _error_lines(log: str) -> str:
    lines = [line for line in log.splitlines() if re.match(r"^[EW]\d{4} ", line) or "libprotobuf" in line]
    return "\n".join(lines[-15:]) or "(no error lines)"


@pytest.mark.parametrize(("folder", "expect"), _params())
def test_broken_config_is_refused(folder: Path, expect: dict[str, Any], triton: Any, http_client: Any,
                                  release: Any, triton_factory: Any) -> None:
    """Loading the broken model fails with the expected message; the server keeps serving."""
    name = folder.name
    fragment = for_release(expect["fragment"], release, "fragment", folder / "expect.toml")
    where = for_release(expect.get("where", "response"), release, "where", folder / "expect.toml")
    if fragment is None:
        pytest.fail(f"{folder / 'expect.toml'} states no fragment for Triton {release.name}; add a 'default' "
                    "or a key for this release", pytrace=False)
    if where not in WHERE:
        pytest.fail(f"{folder / 'expect.toml'}: where = {where!r}; use one of {WHERE}", pytrace=False)
    why = expect.get("why", "")
    if expect.get("spare"):
        with triton_factory() as spare:
            control = spare.load(CONTROL)
            assert control.error is None, f"the healthy model {CONTROL} does not load on the spare server: {control.error}"
            own = Client("http", spare.http_client(network_timeout=SPARE_LOAD_TIMEOUT))
            try:
                _check_refused(spare, own, name, fragment, where, why, release.name, timeout=SPARE_LOAD_TIMEOUT)
            finally:
                own.close()
        return
    try:
        _check_refused(triton, http_client, name, fragment, where, why, release.name)
    finally:
        triton.unload(name)


def _check_refused(server: Any, http_client: Any, name: str, fragment: str, where: str, why: str, release: str,
                   timeout: float | None = None) -> None:
    offset = server.log_offset()
    try:
        result = server.load(name, timeout=timeout)
    except LoadTimeout:
        logged = "is" if fragment in server.log_since(offset) else "is not"
        pytest.fail(f"{name}: the load never answered within {timeout:g} s (Triton {release}, {why}); the "
                    f"expected fragment {fragment!r} {logged} in the server log", pytrace=False)
    if result.error is None:
        config = http_client.model_config(name)
        pytest.fail(
            f"{name} LOADED, but expect.toml expects the load to fail ({why}) with {fragment!r} in the "
            f"{where} on Triton {release}; the server accepted the config as: {config}",
            pytrace=False,
        )
    text = result.error if where == "response" else result.log
    if fragment not in text:
        pytest.fail(
            f"{name} failed to load, but the expected fragment {fragment!r} is not in the {where} "
            f"(Triton {release}, {why}).\nload response: {result.error}\n"
            f"server log lines written during the load:\n{_error_lines(result.log)}",
            pytrace=False,
        )
    assert not http_client.is_model_ready(name), f"{name} is READY although its load failed"
    _assert_still_serving(http_client)


def _assert_still_serving(http_client: Any) -> None:
    """The server is still up and still serves the healthy model."""
    assert http_client.raw.is_server_live(), "the server is not live after a refused load"
    data = np.arange(4, dtype=np.float32)
    out = http_client.infer(CONTROL, {"INPUT0": data})
    np.testing.assert_array_equal(out["OUTPUT0"], data)
