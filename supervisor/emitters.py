"""An emit function and its batch form, for the wrappers between a runner and the bus.

A runner hands on what one read brought as one list (``EventBus.emit_many``). Each
wrapper on the way (masking in ``redact``, estimates in ``core.eta``, labels in
``core.changes``) is an :class:`Emitter`, so a batch stays a batch; :func:`many_of`
finds the batch form of whatever it wraps. It sits at the bottom of the layers (no
imports of ours) because ``redact``, below ``core``, wraps the bus too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Consumer = Callable[[Any], None]
ManyConsumer = Callable[[list[Any]], None]


def many_of(emit: Consumer) -> ManyConsumer:
    """``emit``'s batch form: its ``many`` attribute (an :class:`Emitter`), the
    ``emit_many`` of the object it is bound to (a bus's ``emit``), or a loop over
    ``emit``."""
    many = getattr(emit, "many", None)
    if many is not None:
        return many  # type: ignore[no-any-return]
    owner_many = getattr(getattr(emit, "__self__", None), "emit_many", None)
    if owner_many is not None:
        return owner_many  # type: ignore[no-any-return]

    def each(events: list[Any]) -> None:
        for event in events:
            emit(event)

    return each


class Emitter:
    """An emit function with its batch form (``many``)."""

    __slots__ = ("many", "one")

    def __init__(self, one: Consumer, many: ManyConsumer) -> None:
        self.one = one
        self.many = many

    def __call__(self, event: Any) -> None:
        self.one(event)
