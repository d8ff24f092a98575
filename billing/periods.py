"""UTC calendar arithmetic for billing: days, ISO weeks (Monday to Monday), months."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from billing.models import BillingPeriod, PerformancePeriodKind

DAY = timedelta(days=1)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def add_months(at: datetime, months: int) -> datetime:
    """``at`` moved by whole months, the day clamped to the target month's last day."""
    index = at.year * 12 + at.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last_day = (datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC) - DAY).day
    return at.replace(year=year, month=month, day=min(at.day, last_day))


def period_containing(instant: datetime, kind: str) -> tuple[datetime, datetime]:
    """The performance-fee period ``[start, end)`` that contains ``instant``."""
    midnight = day_start(instant.astimezone(UTC).date())
    if kind == PerformancePeriodKind.WEEKLY:
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if kind == PerformancePeriodKind.MONTHLY:
        start = midnight.replace(day=1)
        return start, add_months(start, 1)
    raise ValueError(f"unknown performance period {kind!r}")


def subscription_period_end(start: datetime, billing_period: str) -> datetime:
    if billing_period == BillingPeriod.YEARLY:
        return add_months(start, 12)
    return add_months(start, 1)
