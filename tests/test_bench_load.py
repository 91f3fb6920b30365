"""bench.load: the busy loops of the under-load run are one process group, and none outlives its block."""

from __future__ import annotations

import os

import pytest

from bench.load import busy_loops
from harness import processes

pytestmark = pytest.mark.fast  # no server, no venv, no container


def test_busy_loops_share_a_group_and_all_end_with_the_block() -> None:
    with busy_loops(2) as pids:
        assert len(pids) == 2
        groups = {processes.proc_stat(pid)[3] for pid in pids}
        assert groups == {str(pids[0])} and os.getpgid(0) != pids[0], "a group of their own"
    assert not processes.group_alive(pids[0])


def test_busy_loops_end_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), busy_loops(1) as pids:
        raise RuntimeError("the measured run failed")
    assert not processes.group_alive(pids[0])
