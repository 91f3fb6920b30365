"""Models mode: a team's own Triton model repository, loaded, asked and compared on every cell.

``repo`` finds and checks the repository (standard library: the command line refuses bad input
before anything starts), ``pbtxt`` reads its configs, ``samples`` reads ``samples.json``, ``tensors``
turns samples into arrays and answers into digests (numpy, in the cell), ``plugin`` + ``checks`` run
the checks in the cell's pytest, ``answers`` is the per-cell answers file, ``compare`` compares the
cells with their reference cell in the report step and ``section`` writes the report's "Your models".

The strings below are written by one module and read by another.
"""

from __future__ import annotations

CASE_PREFIX = "models/"  # case ids: models/<model>::<check>[<protocol>]
CHECKS = ("loads", "answers", "conforms", "repeatable", "valid", "matches-reference", "config-drift")
CELL_CHECKS = CHECKS[:5]  # run in the cell; the last two are made in the report step
ANSWERS_DIR = "answers"  # reports/answers/<cell>.json
SAMPLES_FILE = "samples.json"
DERIVED_SUFFIX = ".models-reference"  # reports/junit/<cell>.models-reference.xml, written by the report step
REFERENCE_OPTION = "--reference"
REPEATS = 3  # each sample is sent this many times per protocol


def case_id(model: str, check: str, protocol: str | None = None) -> str:
    return f"{CASE_PREFIX}{model}::{check}" + (f"[{protocol}]" if protocol else "")


def split_case(case: str) -> tuple[str, str] | None:
    """(model, check with its protocol) of a models-mode case id, else None."""
    if not case.startswith(CASE_PREFIX) or "::" not in case:
        return None
    model, check = case[len(CASE_PREFIX):].split("::", 1)
    return model, check
