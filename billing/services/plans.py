"""Plan limits (the check other apps call), plans, and per-strategy fee overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from accounts.services import audit_log_record
from billing import selectors
from billing.conf import BUILDER_FEE_CAP_BPS, billing_setting, builder_fee_cap_bps
from billing.models import FEE_CAPS, FEE_FIELDS, PerformancePeriodKind, Plan, StrategyFeeSchedule
from billing.money import currency_unit
from config.errors import ValidationFailed

if TYPE_CHECKING:
    from accounts.models import User

RESOURCE_LABELS = {
    "strategies": "copy strategies",
    "traders_per_portfolio": "traders in one portfolio",
    "api_keys": "active API keys",
}


def plan_limit_check(
    *,
    user: User,
    resource: str,
    adding: int = 1,
    current: int | None = None,
    strategy: Any = None,
) -> None:
    """Refuse (``ValidationFailed``, code ``plan_limit_reached``, field ``resource``) when
    ``adding`` more of ``resource`` would take ``user`` past their plan's limit.

    ``resource`` is ``"strategies"``, ``"traders_per_portfolio"`` (pass the ``strategy`` being
    changed, or ``current``) or ``"api_keys"``. Pass ``current`` when the caller has just
    counted under its own lock; otherwise billing counts. Call it inside the transaction that
    creates the thing, after taking the lock that serialises those creations.
    """
    if resource not in selectors.RESOURCES:
        raise ValueError(f"unknown plan resource {resource!r}")
    if adding <= 0:
        return
    limits = selectors.plan_limits(user)
    limit = limits.limit(resource)
    if limit is None:
        return
    used = (
        current
        if current is not None
        else selectors.plan_usage(user=user, resource=resource, strategy=strategy)
    )
    if used + adding > limit:
        raise ValidationFailed(
            f"The {limits.plan_name} plan allows {limit} {RESOURCE_LABELS[resource]}; "
            f"upgrade your plan to add more.",
            code="plan_limit_reached",
            field=resource,
            limit=limit,
            plan=limits.plan_code,
        )


def _bps(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise ValidationFailed("Give basis points as a whole number.", field=field)
    try:
        number = int(str(value))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("Give basis points as a whole number.", field=field) from exc
    if str(number) != str(value).strip().lstrip("+"):
        raise ValidationFailed("Give basis points as a whole number.", field=field)
    return number


def fee_schedule_validate(values: Mapping[str, Any], *, venue: str | None = None) -> dict[str, Any]:
    """Clean fee-schedule fields: whole bps, not negative, within each cap; the builder fee
    within the venue's maximum (Hyperliquid perps: 10 bps). ``None`` stays ``None``
    (inherit). Raises on the first bad field; returns the cleaned values."""
    cleaned: dict[str, Any] = {}
    for field, value in values.items():
        if field not in FEE_FIELDS:
            raise ValidationFailed(f"Unknown fee field {field}.", field=field)
        if value is None or value == "":
            cleaned[field] = None
            continue
        if field == "performance_period":
            if value not in PerformancePeriodKind.values:
                raise ValidationFailed(
                    "The performance period is weekly or monthly.",
                    field=field,
                    code="invalid_choice",
                )
            cleaned[field] = value
            continue
        bps = _bps(value, field)
        if bps < 0:
            raise ValidationFailed(
                "Basis points cannot be negative.", field=field, code="negative_bps"
            )
        cap = FEE_CAPS[field]
        if field == "builder_fee_bps":
            cap = (
                min(cap, builder_fee_cap_bps(venue))
                if venue and venue in billing_setting("BUILDER_FEE_MAX_BPS")
                else BUILDER_FEE_CAP_BPS
            )
            if bps > cap:
                raise ValidationFailed(
                    f"The builder fee is at most {cap} bps (the venue's maximum).",
                    field=field,
                    code="above_venue_cap",
                )
        if bps > cap:
            raise ValidationFailed(f"At most {cap} bps.", field=field, code="above_cap")
        cleaned[field] = bps
    return cleaned


def strategy_fee_schedule_set(
    *,
    strategy: Any,
    values: Mapping[str, Any],
    actor: User,
    request: HttpRequest | None = None,
) -> StrategyFeeSchedule:
    """Staff: override some of a strategy's fees (``None`` inherits the owner's plan again).
    Every field is checked before anything is written."""
    venue = None
    if getattr(strategy, "agent_wallet_id", None):
        venue = strategy.agent_wallet.exchange
    venue = venue or settings.TANDEM.get("DEFAULT_VENUE")
    cleaned = fee_schedule_validate(values, venue=venue)
    with transaction.atomic():
        schedule, _ = StrategyFeeSchedule.objects.select_for_update().get_or_create(
            strategy=strategy
        )
        old = {f: getattr(schedule, f) for f in FEE_FIELDS}
        for field, value in cleaned.items():
            setattr(schedule, field, value)
        schedule.updated_by = actor
        schedule.save()
        audit_log_record(
            action="strategy_fee_schedule_set",
            actor=actor,
            resource_type="strategy",
            resource_id=strategy.pk,
            old_values=old,
            new_values={f: getattr(schedule, f) for f in FEE_FIELDS},
            request=request,
        )
    return schedule


def plan_save(*, plan: Plan, actor: User, request: HttpRequest | None = None) -> Plan:
    """Staff: create or change a plan after checking its fees, price and default rules."""
    fee_schedule_validate({f: getattr(plan, f) for f in FEE_FIELDS})
    for field in FEE_FIELDS:
        if getattr(plan, field) is None:
            raise ValidationFailed("A plan sets every fee.", field=field)
    try:
        unit = currency_unit(plan.currency)
    except ValueError as exc:
        raise ValidationFailed("Unknown currency.", field="currency") from exc
    if plan.price < 0 or plan.price % unit != 0:
        raise ValidationFailed(
            f"The price is a non-negative {plan.currency} amount.", field="price"
        )
    if plan.is_default and (plan.price != 0 or not plan.is_active):
        raise ValidationFailed("The default plan is free and active.", field="is_default")
    with transaction.atomic():
        if plan.is_default:
            Plan.objects.filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
        elif (
            Plan.objects.filter(pk=plan.pk, is_default=True).exists()
            and not Plan.objects.filter(is_default=True).exclude(pk=plan.pk).exists()
        ):
            raise ValidationFailed("Make another plan the default first.", field="is_default")
        plan.save()
        audit_log_record(
            action="plan_save",
            actor=actor,
            resource_type="plan",
            resource_id=plan.pk,
            new_values={"code": plan.code, "price": str(plan.price), "is_active": plan.is_active},
            request=request,
        )
    return plan
