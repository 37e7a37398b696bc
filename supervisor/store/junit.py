"""JUnit XML of one iteration, in the shape pytest's ``--junitxml`` writes.

``<testsuites>`` holds one ``<testsuite>`` per supervisor suite; each test is a
``<testcase classname=... name=... time=...>`` (classname from the node id the way
pytest builds it: ``tests/test_a.py::TestX::test_y`` -> ``tests.test_a.TestX`` and
``test_y``). ``failed`` gets ``<failure>``, ``error`` gets ``<error>``, ``hung`` and
``crashed`` get ``<error type="hung|crashed">`` with the dump, ``skipped`` and
``xfailed`` get ``<skipped>``. A test with several results in the iteration (its
retries) is written once, with its last result; a flaky one (passed on a retry) passes
with a ``<flakyFailure>`` saying what its first attempt was, as Maven Surefire writes
reruns. Characters XML 1.0 cannot carry
(control characters from terminal output) are dropped.
"""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from supervisor.core.events import FAILING_OUTCOMES
from supervisor.store.queries import Iteration, iteration_results

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _clean(text: Any) -> str:
    return _ILLEGAL.sub("", _ANSI.sub("", "" if text is None else str(text)))


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml derives them from a node id."""
    parts = nodeid.split("::")
    module = parts[0]
    if module.endswith(".py"):
        module = module[: -len(".py")]
    module = module.replace("/", ".").replace("\\", ".")
    if len(parts) == 1:
        return module, nodeid
    return ".".join([module, *parts[1:-1]]), parts[-1]


def build(conn: sqlite3.Connection, it: Iteration) -> tuple[ET.ElementTree, dict[str, Any]]:
    """The XML tree of iteration ``it`` and its totals."""
    row = conn.execute(
        "SELECT i.started_at, i.deploy_revision, i.status, ru.host FROM iterations i"
        " JOIN runs ru ON ru.id = i.run_id WHERE i.id = ?",
        (it.id,),
    ).fetchone()
    started_at, revision, status, host = row
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for result in iteration_results(conn, it).values():
        by_suite.setdefault(result["suite"], []).append(result)

    root = ET.Element("testsuites", name=f"netra-supervisor iteration {it.label}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for suite, results in by_suite.items():
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        elem = ET.SubElement(root, "testsuite", name=suite)
        props = ET.SubElement(elem, "properties")
        for name, value in (
            ("iteration", it.label),
            ("deploy_revision", revision),
            ("iteration_status", status),
        ):
            if value:
                ET.SubElement(props, "property", name=name, value=_clean(value))
        suite_time = 0.0
        for result in results:
            suite_time += result["duration"] or 0.0
            kind = _add_case(elem, result)
            if kind:
                counts[kind] += 1
        elem.set("tests", str(counts["tests"]))
        elem.set("failures", str(counts["failures"]))
        elem.set("errors", str(counts["errors"]))
        elem.set("skipped", str(counts["skipped"]))
        elem.set("time", f"{suite_time:.3f}")
        if started_at:
            elem.set("timestamp", _clean(started_at))
        if host:
            elem.set("hostname", _clean(host))
        for key in counts:
            totals[key] += counts[key]
        totals["time"] += suite_time
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", f"{totals['time']:.3f}")
    ET.indent(root)
    return ET.ElementTree(root), {"iteration": it.label, **totals}


def _add_case(parent: ET.Element, result: dict[str, Any]) -> str | None:
    """Append one ``<testcase>``; returns the counter it adds to (or None)."""
    classname, name = split_nodeid(result["nodeid"])
    case = ET.SubElement(
        parent,
        "testcase",
        classname=_clean(classname),
        name=_clean(name),
        time=f"{result['duration'] or 0.0:.3f}",
    )
    if result.get("file"):
        case.set("file", _clean(result["file"]))
    outcome = result["outcome"]
    message = _clean(result["message"])
    detail = _clean(result["longrepr"] or result["message"])
    if outcome == "failed":
        failure = ET.SubElement(case, "failure", message=message, type=_type(message, outcome))
        failure.text = detail
        return "failures"
    if outcome in FAILING_OUTCOMES:  # error, hung, crashed (failed is handled above)
        kind = _type(message, outcome) if outcome == "error" else outcome
        error = ET.SubElement(case, "error", message=message, type=kind)
        error.text = "\n\n".join(p for p in (detail, _clean(result["dump"])) if p)
        return "errors"
    if outcome in ("skipped", "xfailed"):
        skipped = ET.SubElement(case, "skipped", message=message)
        if outcome == "xfailed":
            skipped.set("type", "pytest.xfail")
        return "skipped"
    if result.get("flaky"):
        ET.SubElement(case, "flakyFailure", message=message, type="flaky")
    return None  # passed, xpassed


def _type(message: str, outcome: str) -> str:
    from supervisor.store.signature import error_type

    return error_type(outcome, message)


def write_junit(conn: sqlite3.Connection, it: Iteration, path: Path) -> dict[str, Any]:
    """Write iteration ``it`` to ``path`` (parent folders created); returns the totals."""
    tree, totals = build(conn, it)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    totals["time"] = round(totals["time"], 3)
    return {"file": str(path), **totals}
