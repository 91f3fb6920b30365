"""Backend config and model parameters reach the model; optimization settings come back intact."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from cfg_support import config_differences, config_from_dict, parse_pbtxt

from harness.client import Client
from harness.repository import render_config

PROBE = "cfg_bc_probe"
SHM_BYTES = 5 * 1024 * 1024  # not the python backend's default (1 MiB), so the option is what shows

pytestmark = pytest.mark.backend("python")


def probe_info(client: Any) -> dict[str, Any]:
    out = client.infer(PROBE, {"DUMMY": np.array([0], dtype=np.int32)})
    return json.loads(out["INFO"][0])


@pytest.mark.models(PROBE)
def test_model_parameters_reach_initialize(client: Any) -> None:
    """``parameters { key ... }`` of config.pbtxt are in the config the model gets in ``initialize``."""
    info = probe_info(client)
    assert info["parameters"] == {"greeting": "hello from config.pbtxt", "threshold": "0.25"}, info


@pytest.mark.models(PROBE)
def test_initialize_args_name_the_instance(client: Any, cell: Any) -> None:
    """``initialize`` gets the model's name, version, repository and the cell's instance kind."""
    args = probe_info(client)["args"]
    assert args["model_name"] == PROBE, args
    assert args["model_version"] == "1", args
    assert args["model_repository"].rstrip("/").endswith(f"/{PROBE}"), args
    assert args["model_instance_kind"] == ("GPU" if cell.instance_kind == "gpu" else "CPU"), args
    assert args["model_instance_name"].startswith(PROBE), args


@pytest.mark.models(PROBE)
def test_execution_accelerators_returned_intact(client: Any, cell: Any, request: Any) -> None:
    """An ``optimization { execution_accelerators }`` block is accepted and returned as written."""
    folder = request.path.parent / "models" / PROBE
    written = parse_pbtxt(render_config(folder / "config.pbtxt", cell)).optimization
    served = config_from_dict(client.model_config(PROBE)).optimization
    assert written.HasField("execution_accelerators")
    problems = config_differences(written, served)
    assert not problems, "optimization differs from config.pbtxt:\n" + "\n".join(problems)


@pytest.mark.models(PROBE)
def test_python_backend_config_reaches_the_stub(triton_factory: Any, http_client: Any) -> None:
    """``--backend-config=python,shm-default-byte-size=N`` sizes the shared memory of the model's stub."""
    default_sizes = probe_info(http_client)["shm_sizes"]
    assert default_sizes, "the probe found no /dev/shm region mapped into its stub"
    assert SHM_BYTES not in default_sizes, f"the default server already uses {SHM_BYTES} bytes: {default_sizes}"
    with triton_factory(f"--backend-config=python,shm-default-byte-size={SHM_BYTES}") as spare:
        result = spare.load(PROBE)
        assert result.error is None, result.error
        spare_client = Client("http", spare.http_client())
        try:
            sizes = probe_info(spare_client)["shm_sizes"]
        finally:
            spare_client.close()
    assert SHM_BYTES in sizes, f"no {SHM_BYTES}-byte region in the stub of the configured server: {sizes}"
