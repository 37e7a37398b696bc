"""A suite's remote workers: ``[[suite]] hosts``, pytest-xdist ``--tx`` specs.

Checked before anything runs (a spec execnet cannot use would otherwise fail hours
into a run), turned into pytest's command line, and named short for the history's
``results.worker`` column. The parsing is execnet's own (:class:`execnet.XSpec`,
imported here only: it is not needed to start the supervisor).

Remote specs go as ``-d --tx SPEC``, never ``-n``: xdist's ``-n`` replaces the
``--tx`` list with local processes. The suite's local ``workers`` become
``--tx N*popen`` beside them (``workers = 0``: remote only).
"""

from __future__ import annotations

#: the keys an XSpec may carry (execnet 2.1); ``env:NAME`` is also allowed
_KEYS = frozenset(
    (
        "chdir",
        "dont_write_bytecode",
        "execmodel",
        "id",
        "installvia",
        "nice",
        "popen",
        "python",
        "socket",
        "ssh",
        "ssh_config",
        "vagrant_ssh",
        "via",
    )
)
_KINDS = ("popen", "ssh", "socket", "vagrant_ssh")
_EXAMPLE = '"ssh=ci@runner-1//python=/opt/venv/bin/python//chdir=/srv/app"'


def split_count(spec: str) -> tuple[int, str]:
    """``"2*ssh=..."`` → ``(2, "ssh=...")`` (xdist's own multiplier syntax)."""
    head, star, rest = spec.partition("*")
    if star and head.strip().isdigit():
        return int(head), rest
    return 1, spec


def host_problem(spec: str) -> str:
    """Why ``spec`` is not a usable ``--tx`` spec, or ``""``."""
    import execnet

    count, body = split_count(spec)
    if count < 1:
        return f"{spec!r}: the count before '*' must be at least 1"
    if not body.strip():
        return f"{spec!r} is empty; write an xdist --tx spec such as {_EXAMPLE}"
    try:
        xspec = execnet.XSpec(body)
    except (AttributeError, ValueError, IndexError) as exc:
        return f"{spec!r} is not an xdist --tx spec ({exc}); e.g. {_EXAMPLE}"
    keys = [k for k in body.split("//") if k]
    for item in keys:
        key = item.split("=", 1)[0]
        if key not in _KEYS and not key.startswith("env:"):
            return f"{spec!r}: unknown key {key!r} (known: {', '.join(sorted(_KEYS))})"
    kinds = [k for k in _KINDS if getattr(xspec, k)]
    if len(kinds) != 1:
        return f"{spec!r} must name exactly one of {', '.join(_KINDS)}; e.g. {_EXAMPLE}"
    kind = kinds[0]
    if kind != "popen" and not isinstance(getattr(xspec, kind), str):
        return f"{spec!r}: {kind}= needs a value (user@host, or host:port for socket)"
    for key in ("python", "chdir", "ssh_config"):
        if getattr(xspec, key) is True:
            return f"{spec!r}: {key}= needs a value"
    if kind == "popen" and not xspec.python and not xspec.chdir:
        return f"{spec!r} is a plain local process: count it in workers = N instead"
    return ""


def label(spec: str) -> str:
    """What a worker on ``spec`` is called beside its xdist id: the host (``ci@runner-1``),
    the socket address, or ``popen`` and the interpreter."""
    _, body = split_count(spec)
    fields = dict(
        (item.split("=", 1) + [""])[:2] for item in body.split("//") if item and "=" in item
    )
    if "ssh" in fields:
        return fields["ssh"].split()[-1] if fields["ssh"].split() else "ssh"
    if "vagrant_ssh" in fields:
        return fields["vagrant_ssh"]
    if "socket" in fields:
        return fields["socket"]
    return f"popen {fields['python']}" if fields.get("python") else "popen"


def tx_args(workers: int, hosts: tuple[str, ...] | list[str], args: list[str]) -> list[str]:
    """xdist's options for ``workers`` local processes and the ``hosts``: ``-d`` (unless
    the suite's args choose a ``--dist``) and one ``--tx`` each."""
    out: list[str] = []
    if not any(a in ("-d", "--dist") or a.startswith("--dist=") for a in args):
        out.append("-d")
    if workers > 0:
        out += ["--tx", f"{workers}*popen"]
    for spec in hosts:
        out += ["--tx", spec]
    return out


def worker_count(workers: int, hosts: tuple[str, ...] | list[str]) -> int:
    """How many xdist workers the suite runs in all (local and remote)."""
    return workers + sum(split_count(spec)[0] for spec in hosts)
