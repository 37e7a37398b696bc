"""SQL shared by ``netra-supervisor history`` and the shipped Datasette canned queries.

``supervisor/datasette/metadata.json`` is generated from :data:`CANNED` (run
``python -m supervisor.store.canned --write``); a test checks that the shipped file is
current and that every query runs against a database built by a real run.

A **revision** groups iterations that ran against the same code: the iteration's
``deploy_revision``, else the run's ``git_sha`` (``git:SHA``), else the run itself
(``run N``) -- without either, a run is the only thing known to be one build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from supervisor.store.schema import FAILING_ORDER, FAILING_SQL, sql_list

#: Where the Datasette metadata lives (inside the package, so it ships in the wheel).
DATASETTE_DIR = Path(__file__).resolve().parent.parent / "datasette"
METADATA_PATH = DATASETTE_DIR / "metadata.json"

#: The database name Datasette gives ``.netra/history.db`` (the file's stem).
DATABASE = "history"

#: An iteration's revision (``i`` an iteration, ``ru`` its run), as ``history`` names it.
REVISION_SQL = "COALESCE(i.deploy_revision, 'git:' || ru.git_sha, 'run ' || i.run_id)"

#: ``:since`` is UTC ISO-8601 text: only iterations started then or later count (blank:
#: every iteration). ``history flaky --since 7d`` passes now minus 7 days.
FLAKY_SQL = f"""\
WITH win AS (
  SELECT COALESCE(MIN(id), (SELECT COALESCE(MAX(id), 0) + 1 FROM iterations)) AS first_id
  FROM iterations WHERE COALESCE(started_at, '') >= COALESCE(:since, '')
),
revs AS (
  SELECT i.id AS iteration_id, i.run_id, i.seq, {REVISION_SQL} AS revision
  FROM iterations i JOIN runs ru ON ru.id = i.run_id
  WHERE i.id >= (SELECT first_id FROM win)
),
candidates AS (
  SELECT DISTINCT f.test_id, v.revision
  FROM results f JOIN revs v ON v.iteration_id = f.iteration_id
  WHERE f.outcome IN {FAILING_SQL} AND f.iteration_id >= (SELECT first_id FROM win)
),
evidence AS (
  SELECT c.test_id, c.revision, r.id, r.iteration_id, r.outcome, r.attempt, r.started_at,
         CASE WHEN r.outcome = 'passed' THEN 0 ELSE 1 END AS bad
  FROM candidates c
  JOIN results r ON r.test_id = c.test_id AND r.iteration_id >= (SELECT first_id FROM win)
  JOIN revs v ON v.iteration_id = r.iteration_id AND v.revision = c.revision
  WHERE r.outcome IN {sql_list(("passed", *FAILING_ORDER))}
),
flips AS (
  SELECT e.*, e.bad <> LAG(e.bad) OVER (
           PARTITION BY e.test_id, e.revision ORDER BY e.iteration_id, e.id) AS flip
  FROM evidence e
),
first_passes AS (
  SELECT e.test_id, e.revision, e.iteration_id, MIN(e.attempt) AS attempt
  FROM evidence e WHERE e.bad = 0
  GROUP BY e.test_id, e.revision, e.iteration_id
),
tries AS (
  SELECT test_id, revision, ROUND(AVG(attempt), 2) AS attempts_to_pass
  FROM first_passes GROUP BY test_id, revision
),
per_test AS (
  SELECT f.test_id, f.revision,
         SUM(f.bad = 0) AS passed,
         SUM(f.bad) AS failed,
         SUM(f.outcome = 'hung') AS hung,
         COUNT(*) AS executions,
         COALESCE(SUM(f.flip), 0) AS flips,
         MAX(f.id) AS last_result_id,
         MAX(f.iteration_id) AS last_iteration_id,
         MAX(f.started_at) AS last_seen
  FROM flips f
  GROUP BY f.test_id, f.revision
  HAVING SUM(f.bad = 0) > 0
)
SELECT t.suite, t.nodeid, p.revision, p.passed, p.failed, p.hung, p.executions, p.flips,
       ROUND(1.0 * p.flips / (p.executions - 1), 3) AS flip_rate,
       tr.attempts_to_pass,
       ROUND(1.0 * p.failed / p.executions, 3) AS fail_rate,
       ROUND((p.failed + 1.0) / (p.executions + 2), 3) AS fail_rate_est,
       lr.outcome AS last_outcome,
       li.run_id || '.' || li.seq AS last_iteration,
       p.last_seen
FROM per_test p
JOIN tests t ON t.id = p.test_id
JOIN tries tr ON tr.test_id = p.test_id AND tr.revision = p.revision
JOIN results lr ON lr.id = p.last_result_id
JOIN iterations li ON li.id = p.last_iteration_id
ORDER BY p.last_iteration_id DESC, flip_rate DESC, t.suite, t.nodeid"""

FAILURES_BY_SIGNATURE_SQL = f"""\
SELECT netra_signature(r.outcome, r.message) AS signature,
       COUNT(*) AS results,
       COUNT(DISTINCT r.test_id) AS tests,
       group_concat(DISTINCT r.outcome) AS outcomes,
       MIN(t.suite || ': ' || t.nodeid) AS example_test,
       MIN(r.message) AS example_message
FROM results r JOIN tests t ON t.id = r.test_id
WHERE r.iteration_id = COALESCE(NULLIF(:iteration_id, ''), (SELECT MAX(id) FROM iterations))
  AND r.outcome IN {FAILING_SQL}
GROUP BY signature
ORDER BY results DESC, signature"""

PASS_COUNT_SQL = """\
SELECT i.run_id || '.' || i.seq AS iteration, i.id AS iteration_id, i.started_at,
       i.deploy_revision AS revision, i.status,
       i.passed, i.failed, i.errors, i.hung, i.crashed, i.skipped,
       ROUND(100.0 * i.passed
             / NULLIF(i.passed + i.failed + i.errors + i.hung + i.crashed, 0), 1)
         AS pass_percent
FROM iterations i
ORDER BY i.id DESC"""

TEST_HISTORY_SQL = """\
SELECT i.run_id || '.' || i.seq AS iteration, t.suite, t.nodeid, r.outcome,
       ROUND(r.duration, 3) AS duration, r.started_at, i.deploy_revision AS revision,
       r.message
FROM results r
JOIN tests t ON t.id = r.test_id
JOIN iterations i ON i.id = r.iteration_id
WHERE instr(t.nodeid, :nodeid) > 0
ORDER BY r.id DESC
LIMIT 500"""

CANNED: dict[str, dict[str, Any]] = {
    "flaky_tests": {
        "title": "Flaky tests",
        "description": "Tests that both passed and failed (or hung) under one revision, "
        "among the iterations started since :since (UTC ISO-8601, e.g. 2026-11-01; blank: "
        "all), newest evidence first (same as `netra-supervisor history flaky`).",
        "sql": FLAKY_SQL,
    },
    "failures_by_signature": {
        "title": "Failures by signature",
        "description": "Non-passing results of one iteration (iteration_id; blank for the "
        "latest) grouped by normalised error type and message, largest group first. "
        "Needs the netra_signature() function: start Datasette with "
        "--plugins-dir supervisor/datasette/plugins.",
        "sql": FAILURES_BY_SIGNATURE_SQL,
    },
    "pass_count_per_iteration": {
        "title": "Pass count per iteration",
        "description": "Each iteration's counts (written when it finishes), newest first.",
        "sql": PASS_COUNT_SQL,
    },
    "test_history": {
        "title": "One test across iterations",
        "description": "Every result of the tests whose node id contains :nodeid.",
        "sql": TEST_HISTORY_SQL,
    },
}


def metadata() -> dict[str, Any]:
    """The Datasette metadata (0.6x ``metadata.json`` layout) with the canned queries."""
    return {
        "title": "netra-supervisor history",
        "description": "Results of netra-supervisor test-deploy loops. Tables and columns "
        "are documented in the README (History database).",
        "databases": {
            DATABASE: {
                "queries": {
                    name: {k: query[k] for k in ("title", "description", "sql")}
                    for name, query in CANNED.items()
                }
            }
        },
    }


def metadata_text() -> str:
    return json.dumps(metadata(), indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if sys.argv[1:] == ["--write"]:
        METADATA_PATH.write_text(metadata_text())
        print(f"wrote {METADATA_PATH}")
    else:
        sys.stdout.write(metadata_text())
