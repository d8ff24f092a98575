"""Subscriptions: subscribe, change, cancel, renew, dunning, payment, staff grants.

Policy
    * Subscribing from the default (free) plan starts a period at once, charged in advance.
    * Changing between plans takes effect at the end of the period in force (``next_plan``);
      there is no proration. Choosing the default plan is cancelling.
    * Cancelling keeps the plan until the period ends; then the period expires and the user is
      back on the default plan. Subscribing again to the same plan before then undoes it.
    * A paid period unpaid ``PAYMENT_TERMS_HOURS`` after it starts turns ``past_due``; the plan
      holds for the plan's ``grace_days`` more, then the period ends early (``expired``,
      ``unpaid``). A payment turns it ``active`` again. An unpaid period is not renewed.
    * Renewal happens when a period ends: the next period starts exactly at its end (never
      overlapping) and is charged; ``renewed_from`` is unique, so a renewal happens once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_log_record
from billing import selectors
from billing.conf import billing_setting
from billing.models import (
    CalculationBase,
    FeeCategory,
    FeeType,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import subscription_period_end
from billing.services.journal import FeeDraft, Leg, fees_post, payment_post, receivable, revenue
from config.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from accounts.models import User

MAX_RENEWALS_PER_RUN = 10_000


@dataclass
class SubscribeResult:
    subscription: Subscription
    started: bool  # a new period began now (201); else a change was scheduled or undone (200)


@dataclass
class RenewReport:
    renewed: int = 0
    expired: int = 0
    past_due: int = 0
    lapsed: int = 0


def _lock_user(user_id: uuid.UUID | str) -> None:
    """The same per-user lock the overlap trigger takes (migration 0002)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('billing.subscriptions:' || %s, 0))",
            [str(user_id)],
        )


def _overlap_error() -> ValidationFailed:
    return ValidationFailed(
        "That period overlaps another subscription period of this user.",
        code="overlapping_period",
        field="period_start",
    )


def _period_open(
    *,
    user_id: uuid.UUID,
    plan: Plan,
    start: datetime,
    renewed_from: Subscription | None,
    now: datetime,
) -> Subscription:
    """Write a new period of ``plan`` from ``start`` and charge its price (one ledger row)."""
    terms = timedelta(hours=int(billing_setting("PAYMENT_TERMS_HOURS")))
    subscription = Subscription(
        user_id=user_id,
        plan=plan,
        status=SubscriptionStatus.ACTIVE,
        period_start=start,
        period_end=subscription_period_end(start, plan.billing_period),
        price=plan.price,
        currency=plan.currency,
        due_at=start + terms,
        paid_at=start if plan.price == 0 else None,
        renewed_from=renewed_from,
    )
    try:
        with transaction.atomic():
            subscription.save(force_insert=True)
    except IntegrityError as exc:
        raise _overlap_error() from exc
    if plan.price > 0:
        fees_post(
            [
                FeeDraft(
                    user_id=subscription.user_id,
                    fee_category=FeeCategory.PLAN_FEE,
                    fee_bps=0,
                    fee_amount=plan.price,
                    fee_currency=plan.currency,
                    legs=[
                        Leg(receivable(subscription.user_id, plan.currency), plan.price),
                        Leg(revenue(FeeType.SUBSCRIPTION, plan.currency), -plan.price),
                    ],
                    plan_id=plan.pk,
                    subscription_id=subscription.pk,
                    calculation_base=CalculationBase.FLAT,
                    period_start=subscription.period_start,
                    period_end=subscription.period_end,
                    metadata={"plan": plan.code, "billing_period": plan.billing_period},
                )
            ],
            now=now,
        )
    return subscription


def _restored_status(subscription: Subscription, now: datetime) -> str:
    if subscription.paid_at is not None or now < subscription.due_at:
        return SubscriptionStatus.ACTIVE
    return SubscriptionStatus.PAST_DUE


def subscription_subscribe(
    *,
    user: User,
    plan_code: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> SubscribeResult:
    """Subscribe to ``plan_code`` or change to it (see the module docstring for when)."""
    now = now or timezone.now()
    plan = selectors.plan_get_by_code(code=str(plan_code or ""))
    if plan is None:
        raise ValidationFailed(
            "Choose one of the plans on offer.", field="plan", code="unknown_plan"
        )
    with transaction.atomic():
        _lock_user(user.pk)
        current = selectors.subscription_current(user=user, at=now)
        if current is None:
            if plan.is_default:
                raise ValidationFailed(
                    f"You are already on the {plan.name} plan.",
                    field="plan",
                    code="already_on_plan",
                )
            subscription = _period_open(
                user_id=user.pk, plan=plan, start=now, renewed_from=None, now=now
            )
            started = True
        else:
            subscription = Subscription.objects.select_for_update().get(pk=current.pk)
            changed: list[str] = []
            if (
                subscription.plan_id == plan.pk
                and subscription.next_plan_id is None
                and (subscription.status != SubscriptionStatus.CANCELLED)
            ):
                raise ValidationFailed(
                    f"You are already on the {plan.name} plan.",
                    field="plan",
                    code="already_on_plan",
                )
            if plan.is_default:
                # Choosing the default plan is cancelling at the end of the period.
                if subscription.status != SubscriptionStatus.CANCELLED:
                    subscription.status = SubscriptionStatus.CANCELLED
                    subscription.cancelled_at = now
                subscription.next_plan = None
            else:
                if subscription.status == SubscriptionStatus.CANCELLED:
                    subscription.status = _restored_status(subscription, now)
                    subscription.cancelled_at = None
                    if (
                        subscription.status == SubscriptionStatus.PAST_DUE
                        and not subscription.grace_until
                    ):
                        subscription.grace_until = subscription.due_at + timedelta(
                            days=subscription.plan.grace_days
                        )
                subscription.next_plan = None if plan.pk == subscription.plan_id else plan
            changed = ["status", "cancelled_at", "next_plan", "grace_until", "updated_at"]
            subscription.save(update_fields=changed)
            started = False
        audit_log_record(
            action="subscription_subscribe",
            actor=actor or user,
            resource_type="subscription",
            resource_id=subscription.pk,
            new_values={
                "plan": plan.code,
                "started": started,
                "status": subscription.status,
                "next_plan": subscription.next_plan.code if subscription.next_plan else None,
            },
            request=request,
        )
    return SubscribeResult(subscription=subscription, started=started)


def subscription_cancel(
    *,
    user: User,
    actor: User | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Cancel at the end of the period in force (idempotent). Nothing to cancel: refused."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_user(user.pk)
        current = selectors.subscription_current(user=user, at=now)
        if current is None:
            raise ValidationFailed(
                "You have no paid subscription to cancel.", code="no_subscription", field="plan"
            )
        subscription = Subscription.objects.select_for_update().get(pk=current.pk)
        if subscription.status != SubscriptionStatus.CANCELLED:
            subscription.status = SubscriptionStatus.CANCELLED
            subscription.cancelled_at = now
            subscription.next_plan = None
            subscription.save(update_fields=["status", "cancelled_at", "next_plan", "updated_at"])
            audit_log_record(
                action="subscription_cancel",
                actor=actor or user,
                resource_type="subscription",
                resource_id=subscription.pk,
                new_values={
                    "status": subscription.status,
                    "period_end": subscription.period_end.isoformat(),
                },
                request=request,
            )
    return subscription


def subscription_renew(*, subscription_id: uuid.UUID | str, now: datetime | None = None) -> str:
    """Settle one period whose end has passed: renew it, or let it expire. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        try:
            subscription = Subscription.objects.select_related("plan", "next_plan").get(
                pk=subscription_id
            )
        except Subscription.DoesNotExist as exc:
            raise NotFound("Subscription not found.", field="subscription") from exc
        _lock_user(subscription.user_id)
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("plan", "next_plan")
            .get(pk=subscription.pk)
        )
        if subscription.status == SubscriptionStatus.EXPIRED or subscription.period_end > now:
            return "skipped"
        next_plan = subscription.next_plan or subscription.plan
        if subscription.status == SubscriptionStatus.CANCELLED:
            reason = "cancelled"
        elif subscription.status == SubscriptionStatus.PAST_DUE or (
            # Unpaid after its terms but not yet marked past due (the dunning step runs after
            # renewals, or the beat was down): still unpaid -- never renewed into a new charge.
            subscription.paid_at is None and subscription.price > 0 and subscription.due_at <= now
        ):
            reason = "unpaid"
        elif not subscription.auto_renew:
            reason = "grant_ended"
        elif not next_plan.is_active or next_plan.is_default:
            reason = "plan_retired" if not next_plan.is_active else "downgraded"
        else:
            reason = "renewed"
        subscription.status = SubscriptionStatus.EXPIRED
        subscription.ended_reason = reason
        subscription.save(update_fields=["status", "ended_reason", "updated_at"])
        if reason == "renewed":
            _period_open(
                user_id=subscription.user_id,
                plan=next_plan,
                start=subscription.period_end,
                renewed_from=subscription,
                now=now,
            )
        audit_log_record(
            action="subscription_renew",
            actor_type="system",
            resource_type="subscription",
            resource_id=subscription.pk,
            new_values={"outcome": reason, "plan": next_plan.code},
        )
    return reason


def subscriptions_renew(*, now: datetime | None = None) -> RenewReport:
    """The beat task's work: renew or expire ended periods, turn unpaid ones past due, end
    those whose grace ran out. Every step is idempotent; running it twice changes nothing."""
    now = now or timezone.now()
    report = RenewReport()
    for _ in range(MAX_RENEWALS_PER_RUN):
        ids = list(selectors.subscriptions_to_renew(now=now).values_list("pk", flat=True)[:500])
        if not ids:
            break
        for pk in ids:
            outcome = subscription_renew(subscription_id=pk, now=now)
            if outcome == "renewed":
                report.renewed += 1
            elif outcome != "skipped":
                report.expired += 1
    with transaction.atomic():
        for subscription in selectors.subscriptions_overdue(now=now).select_for_update(
            of=("self",)
        ):
            subscription.status = SubscriptionStatus.PAST_DUE
            subscription.grace_until = subscription.due_at + timedelta(
                days=subscription.plan.grace_days
            )
            subscription.save(update_fields=["status", "grace_until", "updated_at"])
            report.past_due += 1
        for subscription in selectors.subscriptions_grace_over(now=now).select_for_update(
            of=("self",)
        ):
            subscription.status = SubscriptionStatus.EXPIRED
            subscription.ended_reason = "unpaid"
            subscription.period_end = max(
                subscription.period_start, min(subscription.period_end, now)
            )
            subscription.save(update_fields=["status", "ended_reason", "period_end", "updated_at"])
            report.lapsed += 1
    return report


def subscription_payment_record(
    *,
    subscription_id: uuid.UUID | str,
    reference: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Subscription:
    """The price of a period was paid: a payment in the journal, the period marked paid (a
    past-due one turns active). The same reference twice is one payment."""
    now = now or timezone.now()
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        raise ValidationFailed(
            "Give the payment reference (up to 128 characters).", field="reference"
        )
    with transaction.atomic():
        try:
            subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        except (Subscription.DoesNotExist, ValueError) as exc:
            raise NotFound("Subscription not found.", field="subscription") from exc
        if subscription.paid_at is not None:
            if subscription.payment_reference == reference:
                return subscription
            raise Conflict("This period is already paid.", code="already_paid", field="reference")
        if subscription.price > 0:
            payment_post(
                user_id=subscription.user_id,
                amount=subscription.price,
                currency=subscription.currency,
                reference=reference,
                now=now,
                memo=f"subscription {subscription.pk}",
            )
        subscription.paid_at = now
        subscription.payment_reference = reference
        if subscription.status == SubscriptionStatus.PAST_DUE:
            subscription.status = SubscriptionStatus.ACTIVE
            subscription.grace_until = None
        subscription.save(
            update_fields=["paid_at", "payment_reference", "status", "grace_until", "updated_at"]
        )
        audit_log_record(
            action="subscription_payment_record",
            actor=actor,
            resource_type="subscription",
            resource_id=subscription.pk,
            new_values={"reference": reference, "amount": str(subscription.price)},
            request=request,
        )
    return subscription


def subscription_grant(
    *,
    user: User,
    plan: Plan,
    period_start: datetime,
    period_end: datetime,
    actor: User,
    request: HttpRequest | None = None,
) -> Subscription:
    """Staff: give ``user`` ``plan`` for ``[period_start, period_end)`` free of charge.
    Refused, with nothing written, when the period is empty or overlaps another."""
    if timezone.is_naive(period_start) or timezone.is_naive(period_end):
        raise ValidationFailed("Give times with a time zone.", field="period_start")
    if period_end <= period_start:
        raise ValidationFailed("The period must end after it starts.", field="period_end")
    if plan.is_default:
        raise ValidationFailed("Everyone is on the default plan already.", field="plan")
    with transaction.atomic():
        _lock_user(user.pk)
        if Subscription.objects.filter(
            user=user, period_start__lt=period_end, period_end__gt=period_start
        ).exists():
            raise _overlap_error()
        subscription = Subscription(
            user=user,
            plan=plan,
            status=SubscriptionStatus.ACTIVE,
            period_start=period_start,
            period_end=period_end,
            price=0,
            currency=plan.currency,
            due_at=period_start,
            paid_at=period_start,
            payment_reference="granted",
            auto_renew=False,
        )
        try:
            with transaction.atomic():
                subscription.save(force_insert=True)
        except IntegrityError as exc:
            raise _overlap_error() from exc
        audit_log_record(
            action="subscription_grant",
            actor=actor,
            resource_type="subscription",
            resource_id=subscription.pk,
            new_values={
                "user": str(user.pk),
                "plan": plan.code,
                "period_start": period_start.isoformat(),
                "period_end": period_end.isoformat(),
            },
            request=request,
        )
    return subscription
