"""The fill listener registered in ``settings.TANDEM["FILL_LISTENERS"]``.

trading calls it after the fills' transaction commits, with the ids of the new fills; it only
dispatches the accrual task (in batches) to the ``billing`` queue, so a slow or failing accrual
never delays or breaks fill processing. Missed dispatches are caught by the fill sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from billing.conf import billing_setting


def fill_listener(fill_ids: Sequence[uuid.UUID]) -> None:
    from billing.tasks import fill_fees_accrue_task

    ids = [str(pk) for pk in fill_ids]
    size = int(billing_setting("ACCRUAL_BATCH_SIZE"))
    for start in range(0, len(ids), size):
        fill_fees_accrue_task.delay(ids[start : start + size])
