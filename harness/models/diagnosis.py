"""Why a model's check failed, by condition: each condition its own exception type, chosen from
evidence (a stub seen to end, Triton's log, whether the server answered), never from our own wording.

``dead stub`` is said only when a python backend stub of the model was seen to end abnormally (its
pid and exit status); a model whose ``initialize`` raises fails to load with its own error and no
stub died. A config.pbtxt Triton cannot read is named with Triton's parse error and the line where
the harness's own reader stops. Generated inputs the model refused get a hint: write samples.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from harness.compat import KW_ONLY
from harness.models import SAMPLES_FILE, samples

# Triton's words, read from its log: it could not read a config, and protobuf's reason why.
UNREADABLE_CONFIG = re.compile(r"failed to read text proto from (?P<path>\S+?config\.pbtxt)")
PARSE_ERROR = re.compile(r"Error parsing text-format inference\.ModelConfig: (?P<reason>.*)")


class CheckFailure(AssertionError):
    """A models-mode check failed; the subclass says why, ``str()`` is the whole message."""


class DeadStub(CheckFailure):
    """A python backend stub of the model was seen to end abnormally (a pid and an exit status)."""


class ConfigUnreadable(CheckFailure):
    """Triton could not read the model's config.pbtxt."""


class ModelRefused(CheckFailure):
    """The server answered with an error: the model's own, or the server's on its behalf (a load that
    failed, a request whose input it rejects)."""


class NoAnswer(CheckFailure):
    """No answer came: the deadline passed, the connection was lost, the server ended."""


@dataclass(frozen=True, **KW_ONLY)
class Evidence:
    """What was seen around a failure, gathered by the check."""

    refused: bool  # the server answered with an error (a load's error message, a request's error response)
    stub_ends: tuple[str, ...] = ()  # the model's stubs seen to end abnormally, as sentences (pid, exit)
    log: str = ""  # the server log written during the check
    log_errors: tuple[str, ...] = ()  # its error lines
    config_file: str = ""  # the team's config.pbtxt
    reader_error: str | None = None  # where the harness's pbtxt reader stops in it
    no_stub_runs: str | None = None  # an observation: no stub of the model runs under the server
    server_ended: str | None = None  # the server ended during the check


def diagnose(what: str, message: str, evidence: Evidence, hint: str | None = None) -> CheckFailure:
    """The failure of ``what`` (e.g. ``'m1' did not load``) with the server's ``message``, by condition.
    ``hint`` is added where the model itself refused generated inputs."""
    failure: CheckFailure
    unreadable = UNREADABLE_CONFIG.search(evidence.log)
    if evidence.stub_ends:
        failure = DeadStub(f"dead stub: {what}: {message} ({'; '.join(evidence.stub_ends)})")
    elif unreadable or (evidence.refused and evidence.reader_error):
        parse = PARSE_ERROR.search(evidence.log)
        triton = (f"Triton: {parse.group('reason').strip().rstrip('.')}" if parse else
                  "Triton: failed to read text proto" if unreadable else f"Triton: {message}")
        reader = (f"the harness's pbtxt reader stops at {evidence.reader_error}" if evidence.reader_error
                  else "the harness's pbtxt reader reads it")
        failure = ConfigUnreadable(f"{what}: {evidence.config_file or 'config.pbtxt'} does not parse: {triton}; "
                                   f"{reader} (the server said: {message})")
    elif evidence.refused:
        failure = ModelRefused(f"{what}: {message}" + (f"\n{hint}" if hint else ""))
    else:
        seen = f" ({evidence.no_stub_runs})" if evidence.no_stub_runs else ""
        failure = NoAnswer(f"{what}: {message}{seen}")
    text = str(failure)
    if evidence.server_ended:
        first, _, rest = text.partition("\n")
        text = f"{first}; the server ended: {evidence.server_ended}" + (f"\n{rest}" if rest else "")
    if evidence.log_errors:
        text += "\nserver log errors during the check:\n" + "\n".join(evidence.log_errors)
    return type(failure)(text)


def needs_samples(model: str, config: dict[str, Any], samples_path: str) -> str:
    """The hint for a model that refused generated inputs: it likely needs samples.json, and the entry."""
    entry = json.dumps(samples.template(config))
    return (f"hint: {model}'s inputs were generated from its config and the model refused them; it likely "
            f"needs a {SAMPLES_FILE} with inputs it accepts (a BYTES input that names a model, a shape it "
            f"wants). Write {samples_path}, e.g.: {entry} (replace the placeholders with real values)")
