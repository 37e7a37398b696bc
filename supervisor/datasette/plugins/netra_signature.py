"""Datasette plugin: ``netra_signature(outcome, message)`` for the canned queries.

Load it with ``datasette .netra/history.db -m supervisor/datasette/metadata.json
--plugins-dir supervisor/datasette/plugins``. It uses the exact function of
``netra-supervisor history failures`` (``supervisor/store/signature.py``), imported
from the installed package, or by path from this checkout when Datasette runs in
another environment.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

try:
    from datasette import hookimpl
except ImportError:  # imported without Datasette (the project's own tests)

    def hookimpl(fn):  # type: ignore[no-redef]
        return fn


def _signature():
    try:
        from supervisor.store.signature import signature
    except ImportError:
        path = Path(__file__).resolve().parents[2] / "store" / "signature.py"
        spec = importlib.util.spec_from_file_location("netra_signature_module", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        signature = module.signature
    return signature


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.create_function("netra_signature", 2, _signature(), deterministic=True)
