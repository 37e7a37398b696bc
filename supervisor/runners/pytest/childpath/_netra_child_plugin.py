"""Shim: makes ``child_plugin.py`` importable as the top-level ``_netra_child_plugin``.

The parent puts this folder (and nothing else of ours) on the child's ``PYTHONPATH``
and passes ``-p _netra_child_plugin``; this file runs the real plugin's code in its
own namespace, so the supervised interpreter needs neither our package nor a copy.
The source loader keeps the compiled code in ``__pycache__`` like any import does
(compiling the plugin on every pytest start cost about 3 ms).
"""

import os as _os
from importlib.machinery import SourceFileLoader as _SourceFileLoader

_PATH = _os.path.join(
    _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "child_plugin.py"
)
exec(_SourceFileLoader(__name__, _PATH).get_code(__name__))  # type: ignore[arg-type]
