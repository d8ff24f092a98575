"""What management and performance fees are computed from: equity marks and capital flows."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.services import audit_log_record
from billing.conf import billing_setting
from billing.models import CapitalFlow, PerformancePeriod, StrategyEquityMark
from config.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValidationFailed("Give a number.", field=field) from exc
    if not number.is_finite():
        raise ValidationFailed("Give a number.", field=field)
    return number


def equity_mark_record(
    *, strategy_id: uuid.UUID, day: date, equity: Decimal | str, source: str = "provider"
) -> StrategyEquityMark:
    """Record a strategy's equity at the end of ``day``, once. The same value again is a no-op;
    a different value for a day already marked is refused (fees may have used it)."""
    value = _decimal(equity, "equity").quantize(Decimal("0.00000001"))
    if value < 0:
        raise ValidationFailed("Equity cannot be negative.", field="equity")
    with transaction.atomic():
        mark, created = StrategyEquityMark.objects.get_or_create(
            strategy_id=strategy_id, day=day, defaults={"equity": value, "source": source}
        )
    if not created and mark.equity != value:
        raise Conflict(
            f"{day} is already marked at {mark.equity}.", code="mark_exists", field="equity"
        )
    return mark


def equity_marks_take(*, day: date | None = None, now: datetime | None = None) -> int:
    """Mark every live strategy's equity for ``day`` (default: yesterday, UTC) with the
    configured provider. Strategies already marked are left alone; returns how many were
    marked now."""
    from copytrade.models import CopyStrategy, StrategyStatus

    now = now or timezone.now()
    day = day or (now - timedelta(days=1)).date()
    provider = import_string(str(billing_setting("EQUITY_PROVIDER")))
    marked = set(StrategyEquityMark.objects.filter(day=day).values_list("strategy_id", flat=True))
    count = 0
    for strategy in (
        CopyStrategy.objects.exclude(status=StrategyStatus.TERMINATED)
        .exclude(pk__in=marked)
        .select_related("user")
        .order_by("pk")
    ):
        try:
            equity_mark_record(strategy_id=strategy.pk, day=day, equity=provider(strategy))
            count += 1
        except (ValidationFailed, Conflict):
            logger.warning("equity mark of strategy %s for %s refused", strategy.pk, day)
    return count


def capital_flow_record(
    *,
    strategy: Any,
    amount: Decimal | str,
    occurred_at: datetime,
    reference: str,
    actor: User | None = None,
) -> CapitalFlow:
    """Money moved into (+) or out of (-) a strategy. Recorded once per ``reference``; a flow
    dated inside a performance period already closed is refused (it would rewrite history)."""
    value = _decimal(amount, "amount")
    if value == 0:
        raise ValidationFailed("A flow moves some money.", field="amount")
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        raise ValidationFailed("Give the transfer's reference.", field="reference")
    if timezone.is_naive(occurred_at):
        raise ValidationFailed("Give the time with a time zone.", field="occurred_at")
    with transaction.atomic():
        last = PerformancePeriod.objects.filter(strategy=strategy).order_by("-period_end").first()
        if last is not None and occurred_at < last.period_end:
            raise ValidationFailed(
                "That time is inside a performance period already closed.",
                field="occurred_at",
                code="period_closed",
            )
        existing = CapitalFlow.objects.filter(strategy=strategy, reference=reference).first()
        if existing is not None:
            if existing.amount != value:
                raise Conflict("That reference is already recorded.", code="reference_used")
            return existing
        try:
            with transaction.atomic():
                flow = CapitalFlow.objects.create(
                    strategy=strategy, amount=value, occurred_at=occurred_at, reference=reference
                )
        except IntegrityError:
            return CapitalFlow.objects.get(strategy=strategy, reference=reference)
        audit_log_record(
            action="capital_flow_record",
            actor=actor,
            resource_type="strategy",
            resource_id=strategy.pk,
            new_values={"amount": str(value), "reference": reference},
        )
    return flow
