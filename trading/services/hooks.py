"""What happens after fills are applied: the explicit extension point for other apps.

Billing accrues builder and copy fees on every fill, live updates push the fill and the new
position to the user's Channels group, analytics records copy-trade events. None of that belongs
to the trading app, and a Django signal would hide who listens. Instead, a fill listener is a
dotted path in ``settings.TANDEM["FILL_LISTENERS"]`` (or registered at start-up with
:func:`register_fill_listener`); each is called once per committed batch of new fills, after the
transaction commits (``transaction.on_commit``), with the ids of the fills it created. A listener
must be idempotent and quick; slow work belongs in a Celery task it dispatches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from django.db import transaction
from django.utils.module_loading import import_string

from trading.stores import setting

logger = logging.getLogger(__name__)

FillListener = Callable[[Sequence[uuid.UUID]], None]
_listeners: list[FillListener] = []


def register_fill_listener(listener: FillListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_fill_listener(listener: FillListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def fill_listeners() -> list[FillListener]:
    configured = [import_string(path) for path in (setting("FILL_LISTENERS") or [])]
    return [*configured, *_listeners]


def fills_committed(fill_ids: Sequence[uuid.UUID]) -> None:
    """Schedule every listener for after the current transaction commits."""
    if not fill_ids:
        return
    ids = list(fill_ids)

    def notify() -> None:
        for listener in fill_listeners():
            try:
                listener(ids)
            except Exception:  # one broken listener must not stop the others or the fills
                logger.exception("fill listener %r failed", listener)

    transaction.on_commit(notify)
