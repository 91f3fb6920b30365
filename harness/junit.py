"""JUnit XML's one home: reading a file's suites and cases, writing the cell's status suite, adding
properties, joining worker files into the cell's one, completing a dead worker's file, putting retried
cases in place, and the report's merged ``junit.xml``. Element and property names: ``harness.layout``.

One library, ElementTree (standard library), because it is the one that is installed everywhere these
files are touched: the cell runner runs under whatever Python runs nox (``nox -s <cell>`` has no venv
of its own; CI installs nox alone with pip), where junitparser is not; the scheduler, the report and
the benchmark have it too. Pretty printing (the merged ``junit.xml``) goes through ``xml.dom.minidom``,
as junitparser's did, so that file keeps its bytes. Ground floor: imports ``layout`` and ``states`` only.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.dom.minidom import parseString

from harness.layout import CELL_CASE, NOT_APPLICABLE_PREFIX, Element, Prop, Verdict
from harness.states import State, case_state

OUTCOMES = (Element.FAILURE, Element.ERROR, Element.SKIPPED)
COUNTS = {Element.FAILURE: "failures", Element.ERROR: "errors", Element.SKIPPED: Element.SKIPPED}  # suite attributes
SUITE_COUNT_ORDER = (Element.ERROR, Element.FAILURE, Element.SKIPPED)  # as junitparser set them on a suite
STATUS_CLASSNAME = "triton-matrix"  # the classname of the cell-level testcase


class Unreadable(Exception):
    """A JUnit file that is missing, cut off, or not JUnit (its root neither testsuites nor testsuite)."""


@dataclass(frozen=True)
class Outcome:
    """A testcase's failure, error or skipped element (``type``: as pytest writes a skip)."""

    element: str
    message: str | None = None
    text: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Case:
    """One testcase as read: its attributes, properties in file order, and outcomes (none: passed)."""

    name: str | None
    classname: str | None = None
    file: str | None = None
    time: float | None = None
    properties: tuple[tuple[str, str], ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    system_out: str | None = None
    system_err: str | None = None

    @property
    def props(self) -> dict[str, str]:
        return dict(self.properties)

    @property
    def case_id(self) -> str | None:
        """The case id the plugin records (the ``case`` property)."""
        return self.props.get(Prop.CASE)

    @property
    def outcome(self) -> Outcome | None:
        """The case's result: its first outcome element, None when it passed."""
        return self.outcomes[0] if self.outcomes else None

    @property
    def failed(self) -> bool:
        """Whether its call failed, or its setup or teardown."""
        return any(o.element in (Element.FAILURE, Element.ERROR) for o in self.outcomes)

    @property
    def state(self) -> State:
        """Its state by the one classifier the recorder and the report share."""
        found = self.outcome
        return case_state(found.element if found else None, (found.message or "") if found else "", self.props)


@dataclass(frozen=True)
class Suite:
    """One testsuite as read: its name, properties in file order, time and testcases."""

    name: str | None
    properties: tuple[tuple[str, str], ...] = ()
    cases: list[Case] = field(default_factory=list)
    time: float | None = None

    @property
    def props(self) -> dict[str, str]:
        return dict(self.properties)


def _float(text: str | None) -> float | None:
    return float(text.replace(",", "")) if text else None


def _properties(element: ET.Element) -> tuple[tuple[str, str], ...]:
    props = element.find(Element.PROPERTIES)
    if props is None:
        return ()
    return tuple((p.get("name", ""), p.get("value", "")) for p in props.findall(Element.PROPERTY))


def _text_of(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    return found.text if found is not None else None


def _case(element: ET.Element) -> Case:
    outcomes = tuple(Outcome(e.tag, e.get("message"), e.text, e.get("type")) for e in element.iter() if e.tag in OUTCOMES)
    return Case(name=element.get("name"), classname=element.get("classname"), file=element.get("file"),
                time=_float(element.get("time")), properties=_properties(element), outcomes=outcomes,
                system_out=_text_of(element, Element.SYSTEM_OUT), system_err=_text_of(element, Element.SYSTEM_ERR))


def _cases(suite: ET.Element) -> list[Case]:
    """A suite's testcases, then those of suites nested in it."""
    own = [_case(e) for e in suite.findall(Element.TESTCASE)]
    return own + [case for inner in suite.findall(Element.TESTSUITE) for case in _cases(inner)]


def _parse(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise Unreadable(str(exc)) from None
    if root.tag not in (Element.TESTSUITES, Element.TESTSUITE):
        raise Unreadable(f"its root element is <{root.tag}>, not <{Element.TESTSUITES}>")
    return root


def _suites(root: ET.Element) -> list[ET.Element]:
    return [root] if root.tag == Element.TESTSUITE else root.findall(Element.TESTSUITE)


def read(path: Path) -> list[Suite]:
    """The suites of a JUnit file; :class:`Unreadable` where it cannot be read."""
    return [Suite(name=s.get("name"), properties=_properties(s), cases=_cases(s), time=_float(s.get("time")))
            for s in _suites(_parse(path))]


def cases_of(path: Path) -> list[Case]:
    """Every testcase of a JUnit file, in file order; :class:`Unreadable` where it cannot be read."""
    return [_case(e) for e in _parse(path).iter(Element.TESTCASE)]


def _save(root: ET.Element, path: Path) -> None:
    """Write atomically: a reader never sees half a file (the temporary name matches no ``*.xml``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def _add_properties(element: ET.Element, values: Iterable[tuple[str, str]]) -> ET.Element:
    props = element.find(Element.PROPERTIES)
    if props is None:
        props = ET.Element(Element.PROPERTIES)
        element.insert(0, props)
    for name, value in values:
        ET.SubElement(props, Element.PROPERTY, name=name, value=value)
    return props


def _outcome_element(parent: ET.Element, outcome: Outcome) -> None:
    attrs = {"type": outcome.type} if outcome.type else {}
    if outcome.message is not None:
        attrs["message"] = outcome.message
    ET.SubElement(parent, outcome.element, attrs).text = outcome.text


def _testcase(case: Case, time: str) -> ET.Element:
    element = ET.Element(Element.TESTCASE, classname=case.classname or "", name=case.name or "")
    if case.file is not None:
        element.set("file", case.file)
    element.set("time", time)
    if case.properties:
        _add_properties(element, case.properties)
    for outcome in case.outcomes:
        _outcome_element(element, outcome)
    if case.system_out:
        ET.SubElement(element, Element.SYSTEM_OUT).text = case.system_out
    return element


def _suite(name: str, properties: Iterable[tuple[str, str]], cases: list[Case]) -> ET.Element:
    """A suite with its counts (a case counts once, by its first outcome), properties and cases."""
    counts = {tag: sum(1 for c in cases if c.outcome and c.outcome.element == tag) for tag in OUTCOMES}
    suite = ET.Element(Element.TESTSUITE, name=name, tests=str(len(cases)))
    for tag in SUITE_COUNT_ORDER:
        suite.set(COUNTS[tag], str(counts[tag]))
    _add_properties(suite, properties)
    suite.extend(_testcase(case, "0") for case in cases)
    return suite


def write_suite(path: Path, name: str, properties: Iterable[tuple[str, str]], cases: list[Case]) -> Path:
    """A JUnit file of one suite (models mode's reference comparison); every case's time is 0."""
    root = ET.Element(Element.TESTSUITES)
    root.append(_suite(name, properties, cases))
    _save(root, path)
    return path


def status_case(state: State, message: str) -> Case:
    """The cell-level testcase: not applicable (skipped) or an error, its reason the message."""
    if state == State.ERROR:
        outcome = Outcome(Element.ERROR, message, message)
    elif state == State.NOT_APPLICABLE:
        outcome = Outcome(Element.SKIPPED, NOT_APPLICABLE_PREFIX + message, message, type="pytest.skip")
    else:
        raise ValueError(f"a cell-level outcome is not-applicable or error, not {state}")
    return Case(name=CELL_CASE, classname=STATUS_CLASSNAME, outcomes=(outcome,))


def write_status(path: Path, cell_props: dict[str, str], state: State, message: str) -> Path:
    """A JUnit file with one cell-level testcase (the report fills the cell's column with it);
    ``cell_props``: the suite properties naming the cell, its id under ``cell``."""
    return write_suite(path, cell_props[Prop.CELL], cell_props.items(), [status_case(state, message)])


def add_properties(path: Path, values: dict[str, str]) -> None:
    """Add suite properties to every suite of a JUnit file; an unreadable one is left as it is."""
    try:
        root = _parse(path)
    except Unreadable:
        return
    for suite in root.iter(Element.TESTSUITE):
        _add_properties(suite, values.items())
    _save(root, path)


def has_property(path: Path, name: str) -> bool:
    """Whether a JUnit file holds a property of that name anywhere (False where it is unreadable)."""
    try:
        return any(p.get("name") == name for p in _parse(path).iter(Element.PROPERTY))
    except Unreadable:
        return False


def join(parts: list[tuple[Path, str | None]], out: Path, cell_id: str) -> int:
    """One JUnit file for the cell: every worker's suite, in worker order. ``parts`` are (worker JUnit
    file, why it is missing or None); a worker that wrote none becomes a suite whose cell-level case is
    an error saying why, so its cases are never silently lost. Returns the number of testcases."""
    root = ET.Element(Element.TESTSUITES)
    count = 0
    for path, missing in parts:
        suites: list[ET.Element] = []
        if missing is None:
            try:
                suites = list(_parse(path).iter(Element.TESTSUITE))
            except Unreadable as exc:
                missing = f"its JUnit file {path.name} is unreadable: {exc}"
        if missing is not None:
            suites = [_suite(cell_id, [(Prop.CELL, cell_id)], [status_case(State.ERROR, missing)])]
        for suite in suites:
            count += sum(1 for _ in suite.iter(Element.TESTCASE))
            root.append(suite)
    _save(root, out)
    return count


def names_of(nodeid: str) -> tuple[str, str]:
    """The classname and name pytest's JUnit writer (xunit1) gives a node id."""
    path, _, rest = nodeid.partition("::")
    names = rest.split("::") if rest else [path]
    module = path.removesuffix(".py")
    return ".".join([module.replace("/", "."), *names[:-1]]), names[-1]


def worker_died_case(nodeid: str, case_id: str, message: str) -> Case:
    """The testcase of a case the worker running it did not finish: an error, its verdict ``worker-died``."""
    classname, name = names_of(nodeid)
    return Case(name=name, classname=classname, file=nodeid.partition("::")[0],
                properties=((Prop.CASE, case_id), (Prop.VERDICT, Verdict.WORKER_DIED)),
                outcomes=(Outcome(Element.ERROR, message, message),))


def complete(path: Path, cell_props: dict[str, str], added: list[Case], replaced: list[tuple[str, str]],
             planned: Iterable[str] = ()) -> None:
    """``path`` with the testcases of ``replaced`` (node id, case id) dropped and ``added`` appended to
    its suite; a suite of the ``cell_props`` if it has none. ``planned``: case ids its plan
    (``Prop.COLLECTED``) must list, so the report says they did not run."""
    ids = {case_id for _, case_id in replaced}
    names = {names_of(nodeid) for nodeid, _ in replaced}
    try:
        root = _parse(path)
    except Unreadable:
        root = ET.Element(Element.TESTSUITES)
        suite = ET.SubElement(root, Element.TESTSUITE, name=cell_props[Prop.CELL])
        _add_properties(suite, cell_props.items())
    suite = root if root.tag == Element.TESTSUITE else next(root.iter(Element.TESTSUITE))
    for element in list(suite.findall(Element.TESTCASE)):
        if _case(element).case_id in ids or (element.get("classname"), element.get("name")) in names:
            suite.remove(element)
    suite.extend(_testcase(case, "0") for case in added)
    planned = list(planned)
    if planned:
        _plan(suite, planned)
    _save(root, path)


def _plan(suite: ET.Element, cases: list[str]) -> None:
    props = suite.find(Element.PROPERTIES)
    if props is None:
        props = _add_properties(suite, ())
    prop = next((p for p in props.iter(Element.PROPERTY) if p.get("name") == Prop.COLLECTED), None)
    if prop is None:
        prop = ET.SubElement(props, Element.PROPERTY, name=Prop.COLLECTED, value="")
    listed = [c for c in (prop.get("value") or "").splitlines() if c]
    prop.set("value", "\n".join(listed + [c for c in cases if c not in listed]))


def replace_cases(path: Path, retried: Path, evidence: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Put the testcases of ``retried`` (the retry worker's file) whose case ids ``evidence`` names in
    place of the first attempts in ``path``; a passed one gets ``passed_alone`` (its evidence). Returns
    case id -> (first state, second state) of the cases replaced (a case ``retried`` has no result for
    keeps its first attempt); nothing where either file is unreadable."""
    try:
        root = _parse(path)
        second = {c: e for e in _parse(retried).iter(Element.TESTCASE) if (c := _case(e).case_id) in evidence}
    except Unreadable:
        return {}
    changed = {}
    for suite in root.iter(Element.TESTSUITE):
        for index, first in enumerate(list(suite)):
            case = _case(first).case_id if first.tag == Element.TESTCASE else None
            if case not in second or case in changed:
                continue
            again = second[case]
            passed = not _case(again).outcomes
            if passed:
                _add_properties(again, [(Prop.PASSED_ALONE, evidence[case])])
            suite.remove(first)
            suite.insert(index, again)
            changed[case] = (_case(first).state.value, State.FLAKY.value if passed else _case(again).state.value)
    _save(root, path)
    return changed


def write_merged(path: Path, name: str, suites: list[tuple[str, list[tuple[str, str]], list[Case]]]) -> None:
    """The report's ``junit.xml``: (name, properties, cases) per suite, pretty printed, with the counts
    and times junitparser's ``update_statistics`` wrote (a case counts each outcome; times summed)."""
    root = ET.Element(Element.TESTSUITES, name=name)
    totals = {tag: 0 for tag in OUTCOMES}
    tests, total_time = 0, 0.0
    for suite_name, properties, cases in suites:
        suite = ET.SubElement(root, Element.TESTSUITE, name=suite_name)
        if properties:
            _add_properties(suite, properties)
        for case in cases:
            element = ET.SubElement(suite, Element.TESTCASE, name=case.name or "", classname=case.classname or "",
                                    time=str(float(case.time or 0)))
            for outcome in case.outcomes:
                _outcome_element(element, outcome)
            if case.system_out:
                ET.SubElement(element, Element.SYSTEM_OUT).text = case.system_out
        counts = {tag: sum(1 for c in cases for o in c.outcomes if o.element == tag) for tag in OUTCOMES}
        time: float = round(sum((c.time for c in cases if c.time is not None), 0), 3)
        for key, value in (("tests", len(cases)), *((COUNTS[tag], counts[tag]) for tag in SUITE_COUNT_ORDER),
                           ("time", time)):
            suite.set(key, str(value))
        tests += len(cases)
        totals = {tag: totals[tag] + counts[tag] for tag in OUTCOMES}
        total_time += float(time)
    root.set("tests", str(tests))
    for tag in OUTCOMES:
        root.set(COUNTS[tag], str(totals[tag]))
    root.set("time", str(round(total_time, 3) if suites else 0))
    path.write_bytes(parseString(ET.tostring(root)).toprettyxml(encoding="utf-8"))
