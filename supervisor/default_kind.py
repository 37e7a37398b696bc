"""The suite kind a ``[[suite]]`` without ``kind = ...`` gets.

A module of its own below ``config.py`` and ``core``: ``config.py`` fills in this
default, yet names no kind itself (a test checks) and imports nothing from ``core``
(the layers contract in pyproject.toml).
"""

#: The kind of a ``[[suite]]`` without ``kind = ...``.
DEFAULT_SUITE_KIND = "pytest"
