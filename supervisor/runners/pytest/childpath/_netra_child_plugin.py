"""Shim: makes ``child_plugin.py`` importable as the top-level ``_netra_child_plugin``.

The parent puts this folder (and nothing else of ours) on the child's ``PYTHONPATH``
and passes ``-p _netra_child_plugin``; this file runs the real plugin's code in its
own namespace, so the supervised interpreter needs neither our package nor a copy.
"""

import os as _os

_PATH = _os.path.join(
    _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "child_plugin.py"
)
with open(_PATH, encoding="utf-8") as _fh:
    exec(compile(_fh.read(), _PATH, "exec"))
