"""The built-in plugins, installed under the import name ``netra_supervisor_plugins``.

Not ``plugins``: that is what a team calls its own package. Run from a project with a
``plugins/`` package of its own (``python -m supervisor.cli``: the project's folder
comes first on ``sys.path``), the project's package hid ours and every built-in failed
to import; and the wheel put a top-level ``plugins`` into site-packages, to be shared
with any other distribution that ships one. The wheel maps this folder to
``netra_supervisor_plugins`` (pyproject.toml, ``force-include``). An editable install
gets a copy there too (hatch cannot rename a folder in dev mode), so the copy hands
its submodules over to the working tree that ``supervisor`` is imported from: edits
show without reinstalling.
"""

from __future__ import annotations

import os

import supervisor

_here = os.path.dirname(os.path.realpath(__file__))
_tree = os.path.dirname(os.path.dirname(os.path.realpath(supervisor.__file__)))
_source = os.path.join(_tree, "plugins")
if (
    _source != _here
    and os.path.isfile(os.path.join(_tree, "pyproject.toml"))
    and os.path.isfile(os.path.join(_source, "builtin_pytest.py"))
):
    __path__ = [_source]  # an editable install: the working tree's files
