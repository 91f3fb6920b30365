"""A timeout under load gets one quiet retry: run again alone, at the end of the cell.

A case whose deadline expired while the machine was saturated (the plugin says so with the testcase
property ``retry_alone``, its value the evidence) says more about the machine than about the release.
Once every worker of the cell has ended, the cell runner runs those cases once more in one fresh worker
that has the machine to itself, without reruns, and patches the cell's JUnit file: a case that passes
then is ``flaky`` (``passed_alone`` holds the first attempt's evidence, the report words it); one that
fails again keeps the second attempt's failure. A case explained by a known issue is never run again.
Standard library only.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import claims
from harness.layout import Element, Prop
from harness.progress import CellProgress, write_json
from harness.states import State, case_state
from harness.requeue import case_of, did_fail, props_of

RERUNS = ("--reruns=0",)  # the retry is the second attempt: no third


def candidates(junit: Path) -> dict[str, str]:
    """Case id -> evidence of the cell's failed cases that ask to be run again alone."""
    try:
        root = ET.parse(junit).getroot()
    except (ET.ParseError, OSError):
        return {}
    found = {}
    for element in root.iter(Element.TESTCASE):
        props = props_of(element)
        case = props.get(Prop.CASE)
        if case and did_fail(element) and Prop.RETRY_ALONE in props and Prop.KNOWN_ISSUE not in props:
            found[case] = props[Prop.RETRY_ALONE]
    return found


def claims_for(wanted: dict[str, str], known: list[claims.Claim]) -> list[claims.Claim]:
    """The wanted cases by module, their node ids from the claims the cell's workers made."""
    modules: dict[str, dict[str, claims.Case]] = {}
    for claim in known:
        for case in claim.cases:
            if case.case in wanted:
                modules.setdefault(claim.module, {})[case.nodeid] = case
    return [claims.Claim(module=m, worker=0, cases=tuple(cases.values())) for m, cases in modules.items()]


def apply(junit: Path, retried: Path, evidence: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Put the second attempts of ``retried`` (the retry worker's JUnit file) in place of the first
    ones in the cell's ``junit``; a passed one gets ``passed_alone``. Returns case id -> (first state,
    second state) of the cases replaced (a case the retry has no result for keeps its first attempt)."""
    try:
        root = ET.parse(junit).getroot()
        second = {case_of(e): e for e in ET.parse(retried).getroot().iter(Element.TESTCASE) if case_of(e) in evidence}
    except (ET.ParseError, OSError):
        return {}
    changed = {}
    for suite in root.iter(Element.TESTSUITE):
        for index, first in enumerate(list(suite)):
            case = case_of(first) if first.tag == Element.TESTCASE else None
            if case not in second or case in changed:
                continue
            again = second[case]
            passed = not any(again.find(tag) is not None for tag in (Element.FAILURE, Element.ERROR, Element.SKIPPED))
            if passed:
                props = again.find(Element.PROPERTIES)
                if props is None:
                    props = ET.Element(Element.PROPERTIES)
                    again.insert(0, props)
                ET.SubElement(props, Element.PROPERTY, name=Prop.PASSED_ALONE, value=evidence[case])
            suite.remove(first)
            suite.insert(index, again)
            changed[case] = (_state(first), State.FLAKY.value if passed else _state(again))
    tmp = junit.with_name(f".{junit.name}.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, junit)
    return changed


def amend_progress(path: Path, cell_id: str, changed: dict[str, tuple[str, str]]) -> None:
    """The retry worker's progress file as a correction: its cases were counted by the worker that ran
    them first, so it counts no case of its own, only each one's move from the first state to the last."""
    counts: dict[str, int] = {}
    for first, last in changed.values():
        counts[first] = counts.get(first, 0) - 1
        counts[last] = counts.get(last, 0) + 1
    before = CellProgress.read(path) or CellProgress(cell=cell_id)
    write_json(path, CellProgress(cell=cell_id, total=0, done=0, counts={k: v for k, v in counts.items() if v},
                                  started=before.started, finished=True).as_dict())


def _state(element: ET.Element) -> str:
    """The progress state of a testcase, by the one classifier the recorder and the report share."""
    found = next((child for child in element if child.tag in (Element.FAILURE, Element.ERROR, Element.SKIPPED)), None)
    message = (found.get("message") or "") if found is not None else ""
    return case_state(found.tag if found is not None else None, message, props_of(element)).value
