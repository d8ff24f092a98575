"""Re-encryption of every secret at rest under the newest key (``rotate_encryption_keys``).

Batches are short transactions over rows locked with SKIP LOCKED, so the command runs while
the site is up: a row a trading task holds is simply picked up by the next pass. Rows that
already open with the first key are skipped, which makes a re-run cheap and harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models, transaction

from accounts import crypto
from accounts.models import AgentWallet, ExchangeConnection
from accounts.services.audit import audit_log_record

# (model, the encrypted fields of one row)
ENCRYPTED_FIELDS: list[tuple[type[models.Model], tuple[str, ...]]] = [
    (AgentWallet, ("encrypted_private_key",)),
    (ExchangeConnection, ("api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted")),
]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)
    already_current: dict[str, int] = field(default_factory=dict)
    skipped_locked: dict[str, int] = field(default_factory=dict)

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def encryption_keys_rotate(
    *, batch_size: int = 500, progress: Callable[[str], None] | None = None
) -> RotationReport:
    """Re-encrypt every secret column under ``settings.ENCRYPTION_KEYS[0]``."""
    report = RotationReport()
    for model, field_names in ENCRYPTED_FIELDS:
        label = model._meta.label
        report.rotated[label] = report.already_current[label] = report.skipped_locked[label] = 0
        has_any = models.Q()
        for name in field_names:
            has_any |= models.Q(**{f"{name}__isnull": False})
        last_pk = None
        while True:
            with transaction.atomic():
                qs = model._default_manager.filter(has_any).order_by("pk")
                if last_pk is not None:
                    qs = qs.filter(pk__gt=last_pk)
                ids = list(qs.values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                last_pk = ids[-1]
                rows = list(
                    model._default_manager.select_for_update(skip_locked=True)
                    .filter(pk__in=ids)
                    .order_by("pk")
                )
                report.skipped_locked[label] += len(ids) - len(rows)
                for row in rows:
                    changed = []
                    for name in field_names:
                        value = getattr(row, name)
                        if value is None or crypto.is_current(value):
                            continue
                        setattr(row, name, crypto.rotate(value))
                        changed.append(name)
                    if changed:
                        row.save(update_fields=changed)
                        report.rotated[label] += 1
                    else:
                        report.already_current[label] += 1
            if progress:
                progress(f"{label}: {report.rotated[label]} re-encrypted so far")
    audit_log_record(
        action="encryption_keys_rotate",
        actor_type="system",
        new_values={"rotated": report.rotated, "skipped_locked": report.skipped_locked},
    )
    return report
