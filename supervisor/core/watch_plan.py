"""What ``wait-for-change`` watches and which changes count (plain logic, no watcher).

The kernel tells us about every write under the watched folders, the supervisor's own
included (the history database, pytest's logs, caches pytest writes while it runs).
A change counts only when it is the user's: a file under a watched path outside the
ignored folders, or a move of git's HEAD (a commit, a checkout, a reset), which git
records in ``HEAD``, ``refs/**`` and ``packed-refs`` of the checkout's git folder.
The rest of ``.git`` (objects, index, logs) never counts.

To spare inotify watches (one per folder; ``.venv`` or ``node_modules`` alone can hold
tens of thousands), a watched folder is watched flat (its own entries) plus each of its
sub-folders that is not ignored, recursively; :func:`plan_watch` is re-done at each
iteration's start, so a folder created at the top later is watched from then on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Folders whose changes never count: git's (except what moves HEAD, see above), ours,
#: caches written by the tools a run starts, virtualenvs and installed packages.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".netra",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".tox",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
    }
)
#: Folders whose name starts so are tools' scratch space: pytest builds its cache in
#: ``pytest-cache-files-XXXX`` and renames it to ``.pytest_cache``.
_SCRATCH_DIR_PREFIXES = ("pytest-cache-files-",)
#: Editors' scratch files (vim's swap files and its ``4913`` probe, emacs lock files,
#: backups ending in ``~``): opening a file in an editor is not a change.
_EDITOR_SCRATCH = re.compile(r"\.sw[a-p]x?$|~$|^\.#|^4913$|^\.DS_Store$")


@dataclass(frozen=True)
class GitPlaces:
    """Where git records the HEAD of a checkout (``gitdir``: HEAD; ``common``: refs)."""

    gitdir: str
    common: str


def find_git(start: str) -> GitPlaces | None:
    """The git folders of the checkout containing ``start`` (a folder), if any.

    A worktree or submodule has a ``.git`` *file* naming its git folder, whose
    ``commondir`` file names the folder holding the shared refs.
    """
    here = os.path.abspath(start)
    while True:
        dotgit = os.path.join(here, ".git")
        if os.path.isdir(dotgit):
            return GitPlaces(dotgit, _common(dotgit))
        if os.path.isfile(dotgit):
            try:
                with open(dotgit, encoding="utf-8") as fh:
                    line = fh.readline().strip()
            except OSError:
                return None
            if not line.startswith("gitdir:"):
                return None
            gitdir = os.path.normpath(os.path.join(here, line[len("gitdir:") :].strip()))
            return GitPlaces(gitdir, _common(gitdir))
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _common(gitdir: str) -> str:
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as fh:
            return os.path.normpath(os.path.join(gitdir, fh.read().strip()))
    except OSError:
        return gitdir


@dataclass(frozen=True)
class Relevance:
    """Does a reported change count? ``watchfiles``' ``watch_filter`` signature."""

    roots: tuple[str, ...] = ()  # watched folders
    files: frozenset[str] = frozenset()  # watched files
    heads: frozenset[str] = frozenset()  # git's HEAD and packed-refs files
    ref_dirs: tuple[str, ...] = ()  # git's refs folders
    ignored: tuple[str, ...] = ()  # the supervisor's own files and folders

    def __call__(self, change: object, path: str) -> bool:
        if path in self.heads or any(_under(path, d) for d in self.ref_dirs):
            return True
        if any(_ours(path, p) for p in self.ignored):
            return False
        if path in self.files:
            return True
        for root in self.roots:
            if _under(path, root):
                parts = os.path.relpath(path, root).split(os.sep)
                return (
                    not IGNORED_DIRS.intersection(parts)
                    and not any(p.startswith(_SCRATCH_DIR_PREFIXES) for p in parts)
                    and not _EDITOR_SCRATCH.search(parts[-1])
                )
        return False


@dataclass(frozen=True)
class WatchPlan:
    """The paths to hand to the watcher, and the filter for what it reports."""

    recursive: tuple[str, ...]
    flat: tuple[str, ...]
    missing: tuple[str, ...]  # configured paths that do not exist (yet): not watched
    relevance: Relevance = field(compare=False)

    def describe(self) -> str:
        """What the announce line names: the configured paths, git, what is missing."""
        heads = sorted(h for h in self.relevance.heads if h.endswith("HEAD"))
        watched = sorted(self.relevance.roots) + sorted(self.relevance.files)
        text = ", ".join(watched) if watched else "nothing"
        if heads:
            text += " and git HEAD (" + ", ".join(heads) + ")"
        if self.missing:
            text += " (not there, so not watched: " + ", ".join(self.missing) + ")"
        return text


def plan_watch(paths: Sequence[Path], ignore: Iterable[Path] = ()) -> WatchPlan:
    """Turn ``[run] watch`` (and the supervisor's own output paths) into a plan."""
    roots: list[str] = []
    files: list[str] = []
    missing: list[str] = []
    recursive: list[str] = []
    flat: list[str] = []
    gits: list[GitPlaces] = []
    ignored = tuple(os.path.abspath(p) for p in ignore)
    for given in paths:
        path = os.path.abspath(given)
        if os.path.isdir(path):
            roots.append(path)
            flat.append(path)
            recursive.extend(_subfolders(path, ignored))
            folder = path
        elif os.path.exists(path):
            files.append(path)
            flat.append(os.path.dirname(path))
            folder = os.path.dirname(path)
        else:
            missing.append(str(given))
            continue
        git = find_git(folder)
        if git is not None and git not in gits:
            gits.append(git)
    heads: set[str] = set()
    ref_dirs: list[str] = []
    for git in gits:
        heads.update({os.path.join(git.gitdir, "HEAD"), os.path.join(git.common, "packed-refs")})
        flat.extend([git.gitdir, git.common])
        refs = os.path.join(git.common, "refs")
        if os.path.isdir(refs):
            ref_dirs.append(refs)
            recursive.append(refs)
    relevance = Relevance(
        roots=tuple(roots),
        files=frozenset(files),
        heads=frozenset(heads),
        ref_dirs=tuple(ref_dirs),
        ignored=ignored,
    )
    return WatchPlan(_unique(recursive), _unique(flat), tuple(missing), relevance)


def _subfolders(root: str, ignored: tuple[str, ...]) -> list[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    return [
        e.path
        for e in entries
        if e.name not in IGNORED_DIRS
        and not e.name.startswith(_SCRATCH_DIR_PREFIXES)
        and e.is_dir(follow_symlinks=False)
        and not any(_ours(e.path, p) for p in ignored)
    ]


def _unique(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _ours(path: str, own: str) -> bool:
    """``own`` itself, what is under it, or a file beside it named after it (the
    database's ``-wal``/``-shm``/``-journal``, a log sink's rotated ``.1``)."""
    if _under(path, own):
        return True
    head, name = os.path.split(path)
    own_head, own_name = os.path.split(own)
    return head == own_head and name.startswith((own_name + "-", own_name + "."))
