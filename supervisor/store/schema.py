"""The history database schema and its migrations.

The table and column names are a public contract (see the README / DESIGN "History
database contract"): ``netra-supervisor history``, ``sqlite-utils``, ``sqlite3`` and
Datasette users query them directly. Timestamps are UTC ISO-8601 text, durations REAL
seconds. A few extra columns beyond the contract are present where they are useful
(``runs.exit_code``, ``phases.hung`` …); the contract columns are never renamed.

Migrations run through sqlite-utils' ``Migrations`` (recorded in ``_sqlite_migrations``
under the set ``netra_supervisor``). sqlite-utils costs ~100 ms to import, so it is
imported only when a migration is actually pending: opening an up-to-date database
costs one query. With a sqlite-utils that has no ``Migrations`` helper (3.x) a minimal
equivalent records applied migrations in ``_netra_migrations``.

Every migration is idempotent (``IF NOT EXISTS``, or a look at the columns first) so a database migrated by either
bookkeeping table can be opened by the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from supervisor.core.events import FAILING_OUTCOMES, OUTCOMES


def sql_list(values: Iterable[str]) -> str:
    """``('a', 'b')``: literal SQL for ``IN``, for lists the code already holds (never
    for user input, which goes through ``?`` parameters)."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


#: ``core.events.FAILING_OUTCOMES`` in ``OUTCOMES`` order (a set has none; SQL text
#: must not change from one process to the next).
FAILING_ORDER = tuple(o for o in OUTCOMES if o in FAILING_OUTCOMES)
#: The same as SQL. The partial index ``idx_results_failing`` is built on exactly this
#: text, and SQLite uses a partial index only for a query whose ``WHERE`` repeats its
#: term: the queries use it too.
FAILING_SQL = sql_list(FAILING_ORDER)

#: Name of the migration set in sqlite-utils' ``_sqlite_migrations`` table.
MIGRATION_SET = "netra_supervisor"
#: Bookkeeping table of the fallback used without ``sqlite_utils.migrations``.
FALLBACK_TABLE = "_netra_migrations"

_SCHEMA_0001 = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        config TEXT,
        host TEXT,
        git_sha TEXT,
        version TEXT,
        exit_code INTEGER
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS iterations (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        deploy_revision TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        passed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        hung INTEGER NOT NULL DEFAULT 0,
        crashed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_iterations_run_seq ON iterations (run_id, seq)",
    """
    CREATE TABLE IF NOT EXISTS deploys (
        id INTEGER PRIMARY KEY,
        iteration_id INTEGER NOT NULL REFERENCES iterations(id),
        backend TEXT,
        revision TEXT,
        started_at TEXT,
        duration REAL,
        status TEXT,
        message TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_deploys_iteration ON deploys (iteration_id)",
    """
    CREATE TABLE IF NOT EXISTS phases (
        id INTEGER PRIMARY KEY,
        iteration_id INTEGER NOT NULL REFERENCES iterations(id),
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'running',
        gate TEXT,
        passed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        started_at TEXT,
        duration REAL,
        hung INTEGER NOT NULL DEFAULT 0,
        crashed INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        gate_held INTEGER,
        impact TEXT
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_phases_iteration_seq ON phases (iteration_id, seq)",
    """
    CREATE TABLE IF NOT EXISTS tests (
        id INTEGER PRIMARY KEY,
        suite TEXT NOT NULL,
        nodeid TEXT NOT NULL,
        file TEXT,
        first_seen TEXT
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_tests_suite_nodeid ON tests (suite, nodeid)",
    """
    CREATE TABLE IF NOT EXISTS results (
        id INTEGER PRIMARY KEY,
        iteration_id INTEGER NOT NULL REFERENCES iterations(id),
        phase_id INTEGER REFERENCES phases(id),
        test_id INTEGER NOT NULL REFERENCES tests(id),
        attempt INTEGER NOT NULL DEFAULT 1,
        outcome TEXT NOT NULL,
        duration REAL,
        started_at TEXT,
        message TEXT,
        longrepr TEXT,
        dump TEXT,
        worker TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_results_test ON results (test_id)",
    "CREATE INDEX IF NOT EXISTS idx_results_iteration ON results (iteration_id)",
    """
    CREATE TABLE IF NOT EXISTS logs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        at TEXT,
        level TEXT,
        source TEXT,
        text TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_logs_run ON logs (run_id)",
    """
    CREATE TABLE IF NOT EXISTS plugin_errors (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        plugin TEXT,
        hook TEXT,
        error TEXT,
        at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_plugin_errors_run ON plugin_errors (run_id)",
)


def m0001_initial(db: Any) -> None:
    """The contract tables, their foreign keys and indexes.

    ``db`` is a ``sqlite_utils.Database`` or a ``sqlite3.Connection``: both have
    ``execute(sql)``, and neither commits implicitly here.
    """
    for statement in _SCHEMA_0001:
        db.execute(statement)


_SCHEMA_0002 = (
    # One covering index for a test's history, flaky counts and durations: the
    # per-test lookups read (iteration, outcome, duration) without touching the table.
    "CREATE INDEX IF NOT EXISTS idx_results_test_history"
    " ON results (test_id, iteration_id, outcome, duration)",
    # Non-passing results are few: ``history flaky`` starts from them (partial index).
    "CREATE INDEX IF NOT EXISTS idx_results_failing ON results (test_id, iteration_id)"
    f" WHERE outcome IN {FAILING_SQL}",
)


def m0002_history_indexes(db: Any) -> None:
    """Indexes for ``netra-supervisor history`` (no table or column changes)."""
    for statement in _SCHEMA_0002:
        db.execute(statement)


def m0003_iteration_eta(db: Any) -> None:
    """``iterations.eta_s``: the estimate made as the iteration started (nullable), so
    ``history iterations`` shows it beside the time taken. SQLite has no ``ADD COLUMN
    IF NOT EXISTS``: the column is looked for first, to stay idempotent."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(iterations)").fetchall()}
    if "eta_s" not in columns:
        db.execute("ALTER TABLE iterations ADD COLUMN eta_s REAL")


def m0004_quarantine(db: Any) -> None:
    """``results.quarantined``: 1 when the test matched an entry of the quarantine file
    (it ran and is recorded, but did not count toward gates or the exit code); earlier
    rows get 0. Idempotent like 0003: the column is looked for first."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)").fetchall()}
    if "quarantined" not in columns:
        db.execute("ALTER TABLE results ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0")


def m0005_flaky(db: Any) -> None:
    """``results.flaky``: 1 on a retry's result that passed after the test's attempt 1
    did not (``retries``); and ``iterations.flaky`` / ``phases.flaky``, the count of such
    tests (counted there, not under ``passed``). Idempotent: columns looked for first."""
    for table in ("results", "iterations", "phases"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        if "flaky" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN flaky INTEGER NOT NULL DEFAULT 0")


_SCHEMA_0007 = (
    # Tests started and not finished as of the last commit: what a watcher's running
    # pane shows. The writer deletes a test's row when its result is written (a test
    # that starts and ends within one batch never gets one).
    """
    CREATE TABLE IF NOT EXISTS running (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        iteration INTEGER NOT NULL,
        phase INTEGER NOT NULL,
        suite TEXT NOT NULL,
        nodeid TEXT NOT NULL,
        worker TEXT,
        deadline REAL,
        started_at TEXT,
        PRIMARY KEY (run_id, suite, nodeid)
    )
    """,
)


def m0007_live(db: Any) -> None:
    """What a watcher (``netra-supervisor watch``) needs beyond the results: the
    ``running`` table, ``phases.discovered`` (tests collected so far) and the run's
    stop condition on ``runs`` (``target``, ``until``, ``max_iterations``,
    ``max_duration``). Idempotent: the table is ``IF NOT EXISTS``, columns looked for."""
    for statement in _SCHEMA_0007:
        db.execute(statement)
    added = {
        "runs": (
            ("target", "INTEGER"),
            ("until", "TEXT"),
            ("max_iterations", "INTEGER"),
            ("max_duration", "REAL"),
        ),
        "phases": (("discovered", "INTEGER NOT NULL DEFAULT 0"),),
    }
    for table, columns in added.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        for name, kind in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


_SCHEMA_0006 = (
    """
    CREATE TABLE IF NOT EXISTS evidence (
        id INTEGER PRIMARY KEY,
        result_id INTEGER NOT NULL REFERENCES results(id),
        source TEXT NOT NULL,
        lines TEXT NOT NULL,
        omitted INTEGER NOT NULL DEFAULT 0,
        first_at TEXT,
        last_at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS evidence_result ON evidence (result_id)",
)


def m0006_evidence(db: Any) -> None:
    """``evidence``: what the backend said while a non-passing test ran, one row per
    result and source (``log:<path>`` or ``plugin:<name>``): the lines, redacted,
    newline-joined and bounded; ``omitted`` lines left out; the first and last kept
    line's UTC time when known."""
    for statement in _SCHEMA_0006:
        db.execute(statement)


#: Every migration, in order: (name, function taking a db with ``execute``).
MIGRATIONS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("0001_initial", m0001_initial),
    ("0002_history_indexes", m0002_history_indexes),
    ("0003_iteration_eta", m0003_iteration_eta),
    ("0004_quarantine", m0004_quarantine),
    ("0005_flaky", m0005_flaky),
    ("0006_evidence", m0006_evidence),
    ("0007_live", m0007_live),
)


def configure(conn: sqlite3.Connection) -> str:
    """Per-connection settings of the writer; returns the journal mode in effect.

    WAL lets readers (``mode=ro``) query while the single writer appends;
    ``synchronous=NORMAL`` keeps every commit safe against a killed process (only a
    power loss can drop the last commits) without an fsync per flush.
    """
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return str(mode)


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def applied(conn: sqlite3.Connection) -> set[str]:
    """Names of the migrations of this set already applied (either bookkeeping)."""
    names: set[str] = set()
    if _table_exists(conn, "_sqlite_migrations"):
        names.update(
            row[0]
            for row in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (MIGRATION_SET,)
            )
        )
    if _table_exists(conn, FALLBACK_TABLE):
        names.update(row[0] for row in conn.execute(f"SELECT name FROM {FALLBACK_TABLE}"))
    return names


def pending(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations not yet applied, in order."""
    done = applied(conn)
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Configure ``conn`` and apply pending migrations; returns the names applied.

    Safe to call on every open: when nothing is pending, sqlite-utils is not even
    imported. ``conn`` must use Python's default (legacy) transaction control, with
    or without ``isolation_level=None``.
    """
    configure(conn)
    todo = pending(conn)
    if not todo:
        return []
    try:
        from sqlite_utils import Database
        from sqlite_utils.migrations import Migrations
    except ImportError:  # sqlite-utils 3.x: no Migrations helper
        return _migrate_fallback(conn, todo)

    migrations = Migrations(MIGRATION_SET)
    for name, fn in MIGRATIONS:
        migrations(name=name)(fn)
    db = Database(conn, recursive_triggers=False, execute_plugins=False)
    migrations.apply(db)
    return todo


def _migrate_fallback(conn: sqlite3.Connection, todo: list[str]) -> list[str]:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {FALLBACK_TABLE} "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    if conn.in_transaction:
        conn.commit()
    functions = dict(MIGRATIONS)
    for name in todo:
        conn.execute("BEGIN IMMEDIATE")
        try:
            functions[name](conn)
            conn.execute(
                f"INSERT OR IGNORE INTO {FALLBACK_TABLE} (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).isoformat()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return todo
