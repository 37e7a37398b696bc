"""One set of failing outcomes (``core.events.FAILING_OUTCOMES``): every SQL list, the
partial index and the JUnit export are generated from it, not spelled again."""

import sqlite3

from supervisor.core.events import FAILING_OUTCOMES, GREEN_OUTCOMES, OUTCOMES
from supervisor.store import canned, schema


def test_the_sets_split_every_outcome():
    assert FAILING_OUTCOMES | GREEN_OUTCOMES == set(OUTCOMES)
    assert not FAILING_OUTCOMES & GREEN_OUTCOMES


def test_the_sql_list_is_the_set_in_a_stable_order():
    """The partial index is stored as this text in every database: changing the set
    changes it, which needs a migration (and this test updated on purpose)."""
    assert set(schema.FAILING_ORDER) == FAILING_OUTCOMES
    assert schema.FAILING_SQL == "('failed', 'error', 'hung', 'crashed')"
    assert schema.sql_list(["it's"]) == "('it''s')"


def test_the_failures_queries_can_use_the_partial_index():
    """``INDEXED BY`` fails ("no query solution") unless the WHERE implies the index's."""
    conn = sqlite3.connect(":memory:")
    schema.m0001_initial(conn)
    schema.m0002_history_indexes(conn)
    conn.execute(
        "SELECT test_id FROM results INDEXED BY idx_results_failing"
        f" WHERE outcome IN {schema.FAILING_SQL}"
    ).fetchall()
    assert schema.FAILING_SQL in canned.FLAKY_SQL
    assert schema.FAILING_SQL in canned.FAILURES_BY_SIGNATURE_SQL
