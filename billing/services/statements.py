"""Closing a month: one stored ``Statement`` per user and currency with the month's totals."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from billing import selectors
from billing.models import Statement
from config.errors import ValidationFailed


def statements_close(*, month: date | None = None, now: datetime | None = None) -> int:
    """Close ``month`` (default: the previous month): a statement for every user with fees,
    payments or a balance in it. Idempotent (unique per user, month and currency): running it
    again creates nothing. Returns how many statements were created. A month that has not
    ended yet is refused."""
    now = now or timezone.now()
    if month is None:
        month = (selectors.month_start(now) - timedelta(days=1)).replace(day=1).date()
    month = month.replace(day=1)
    _, end = selectors.month_bounds(month)
    if end > now:
        raise ValidationFailed("A month is closed once it has ended.", field="month")
    with transaction.atomic():
        summaries = selectors.month_summaries(month=month)
        before = Statement.objects.filter(month=month).count()
        Statement.objects.bulk_create(
            [
                Statement(
                    user_id=user_id,
                    month=month,
                    currency=currency,
                    opening_balance=s.opening_balance,
                    charges=s.charges,
                    reversals=s.reversals,
                    collected_by_venue=s.collected_by_venue,
                    payments=s.payments,
                    closing_balance=s.closing_balance,
                    fee_count=s.fee_count,
                    closed_at=now,
                )
                for (user_id, currency), s in sorted(summaries.items(), key=lambda kv: str(kv[0]))
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
        return Statement.objects.filter(month=month).count() - before
