"""The pytest worker processes of one cell: started (the first ones and follow-ups), watched, stopped.

A follow-up worker is started the same way as the first ones: what differs is its share (its targets)
and its claims folder, where the cell runner may have claimed cases in its name beforehand
(``harness.claims``): a dead worker's unfinished cases (``harness.run.requeue``) or the cases to run
again alone (``harness.run.retry``). Standard library only (the cell runner).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import claims, layout, options, processes
from harness.spec import CellSpec
from harness.run import workers
from harness.models import cli as models_cli
from harness.incell.supervise import NOT_RERUN

POLL_S = 0.1  # how often the cell runner looks whether a worker ended
REAP_EVERY = 10  # polls: about once a second, the ended orphans handed to the cell runner are reaped
READER_DRAIN_S = 5.0  # at most this long for an ended worker's output to be read to its end


@dataclass(frozen=True)
class Launch:
    """Everything a worker's command needs but its share: how this cell's workers are started. What the
    workers run on is the cell spec at ``spec_path`` (``harness.spec``), written before the first starts."""

    python: Path
    spec: CellSpec
    spec_path: Path
    options: tuple[str, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def cell_id(self) -> str:
        return self.spec.cell.id

    @property
    def reports(self) -> Path:
        return self.spec.reports

    @property
    def rootdir(self) -> str:
        return rootdir(list(self.spec.case_roots), self.cwd)

    def command(self, share: workers.Share, claims: Path, extra: tuple[str, ...] = ()) -> list[str]:
        """One worker's pytest: the cell's plugin on the cell spec, its share of the case files, its own
        JUnit file."""
        return [
            str(self.python), "-m", "pytest",
            "-p", "harness.incell.plugin",
            "-p", "no:cacheprovider",
            # A misspelled marker (``modles``) would silently do nothing: a case that loads nothing, a
            # ``min_triton`` never applied. The plugin registers the case library's markers.
            "--strict-markers",
            *options.to_args(options.PLUGIN, {"spec": self.spec_path.resolve(), "worker": share.worker,
                                              "claims": claims}),
            f"--junitxml={layout.worker_junit_path(self.reports, self.cell_id, share.worker)}",
            "-o", f"junit_suite_name={self.cell_id}",
            "-o", "junit_family=xunit1",
            "-o", "junit_logging=all",
            "-o", "junit_log_passing_tests=false",
            # The plugin's watchdog keeps each case's deadline (harness.deadlines); no pytest-timeout alarm
            # fires inside pytest's hooks. Re-running a timeout or a crash only costs time.
            "--reruns=1",
            f"--rerun-except=^({'|'.join(kind.__name__ for kind in NOT_RERUN)}):",
            f"--rootdir={self.rootdir}",
            "-q", "-rfEs",
            *self.options,
            *extra,
            # models mode: the team's repositories (harness/models/), in the worker that runs their checks
            *(models_cli.pytest_options(list(self.spec.models)) if str(models_cli.CHECKS_MODULE) in share.targets
              else []),
            *share.targets,
        ]


def rootdir(roots: list[Path], default: Path) -> str:
    return os.path.commonpath([str(r) for r in roots] or [str(default)])


class Worker:
    """One running pytest worker of the cell, its output copied through with a prefix."""

    def __init__(self, share: workers.Share, claims: Path, proc: subprocess.Popen[bytes], prefix: str,
                 *, followup: str = "") -> None:
        self.share = share
        self.claims = claims
        self.proc = proc
        self.followup = followup  # what this worker was started for ("" for the cell's first ones)
        self.errors: list[str] = []
        self.reader = threading.Thread(target=_copy_output, args=(proc, self.errors, prefix), daemon=True)
        self.reader.start()

    @property
    def index(self) -> int:
        return self.share.worker

    @property
    def code(self) -> int | None:
        return self.proc.poll()

    @property
    def last_error(self) -> str:
        return self.errors[-1] if self.errors else ""

    def junit(self, reports: Path, cell_id: str) -> Path:
        return layout.worker_junit_path(reports, cell_id, self.index)

    def missing_junit(self, reports: Path, cell_id: str) -> str | None:
        """Why this worker's JUnit file is missing (then its cases are an error), or None."""
        if self.junit(reports, cell_id).exists():
            return None
        why = f"worker {self.index} ended with code {code_name(self.code)} before writing its JUnit file"
        return f"{why}: {self.last_error}" if self.last_error else why


class Pool:
    """The cell's workers, in the order they were started (a follow-up gets the next index)."""

    def __init__(self, launch: Launch, *, prefixed: bool) -> None:
        self.launch = launch
        self.prefixed = prefixed
        self.workers: list[Worker] = []
        self._seen: set[int] = set()  # workers whose end the runner has handled

    def start(self, targets: tuple[str, ...], claims: Path, extra: tuple[str, ...] = (),
              followup: str = "") -> Worker:
        share = workers.Share(worker=len(self.workers), targets=targets)
        cmd = self.launch.command(share, claims, extra)
        proc = processes.spawn(cmd, env=self.launch.env, cwd=self.launch.cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        prefix = f"[w{share.worker}] " if self.prefixed or followup else ""
        if followup:
            print(f"{self.launch.cell_id}: worker {share.worker} {followup}", file=sys.stderr, flush=True)
        worker = Worker(share, claims, proc, prefix, followup=followup)
        self.workers.append(worker)
        return worker

    def follow_up(self, handed: list[claims.Claim], folder: Path, targets: tuple[str, ...], why: str,
                  extra: tuple[str, ...] = ()) -> Worker:
        """A follow-up worker that runs the cases of ``handed`` first (claimed in its name in ``folder``
        before it starts), then whatever else its ``targets`` and ``folder`` leave it to take."""
        index = len(self.workers)
        for claim in handed:
            claims.hand_on(folder, dataclasses.replace(claim, worker=index, pid=0))
        return self.start(targets, folder, extra, followup=why)

    def next_ended(self, deadline: float) -> Worker | None:
        """The next worker to end (in the order they end, its output read to the end), or None once
        every worker has ended and been handed out; ``subprocess.TimeoutExpired`` at the deadline."""
        for polls in itertools.count():
            if polls % REAP_EVERY == 0:
                processes.reap_adopted(w.proc.pid for w in self.workers)
            for worker in self.workers:
                if worker.index not in self._seen and worker.code is not None:
                    self._seen.add(worker.index)
                    worker.reader.join(READER_DRAIN_S)  # its last lines: the error it died with
                    return worker
            if all(w.index in self._seen for w in self.workers):
                return None
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("pytest workers", 0)
            time.sleep(POLL_S)

    def running(self) -> list[Worker]:
        return [w for w in self.workers if w.code is None]

    def signal(self, signum: int) -> None:
        for w in self.running():
            w.proc.send_signal(signum)

    def stop(self, grace: float = processes.PYTEST_STOP_GRACE) -> None:
        """Every worker at once, bounded: each stops its server and writes the JUnit file of what ran."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for w in self.workers:
            processes.shutdown(w.proc, grace=max(0.1, deadline - time.monotonic()), first=signal.SIGTERM)

    def end_orphans(self) -> list[int]:
        """Kill and reap what dead workers left (their servers' stubs, handed to the cell runner)."""
        return processes.end_orphans(w.proc.pid for w in self.workers)

    def join_readers(self, within: float = 5.0) -> None:
        """Let the output copiers finish, ``within`` seconds in all (an orphan may hold a pipe open)."""
        deadline = time.monotonic() + within
        for w in self.workers:
            w.reader.join(max(0.0, deadline - time.monotonic()))


def _copy_output(proc: subprocess.Popen[bytes], errors: list[str], prefix: str = "") -> None:
    """Copy a worker's output through (each line with its prefix), keeping its error lines for the
    cell's error message."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(prefix.encode() + raw)
        sys.stdout.flush()
        line = raw.decode("utf-8", "replace").strip()
        if line.startswith(("ERROR:", "INTERNALERROR>", "E   ")):
            errors.append(line)


def code_name(code: int | None) -> str:
    return str(code) if code is not None and code >= 0 else f"{code} ({processes.describe_exit(code)})"
