"""Corrections and money received: fee reversals (with an optional corrected charge) and
payments. Nothing in the ledger is ever edited; these add rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_log_record
from billing.models import (
    AccountKind,
    FeeLedgerEntry,
    JournalEntry,
    JournalKind,
    JournalTransaction,
    LedgerRowKind,
)
from billing.money import currency_unit, split
from billing.services.journal import (
    AccountKey,
    FeeDraft,
    Leg,
    fees_post,
    payment_post,
    strategies_lock,
)
from config.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from accounts.models import User


def money_input(value: Any, *, currency: str, field: str) -> Decimal:
    """A positive amount in ``currency``, at most its precision; anything else is refused."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValidationFailed("Give the amount as a number.", field=field) from exc
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed("The amount must be greater than zero.", field=field)
    unit = currency_unit(currency)
    if amount % unit != 0:
        raise ValidationFailed(
            f"{currency} amounts have at most {abs(unit.as_tuple().exponent)} decimals.",  # type: ignore[arg-type]
            field=field,
        )
    return amount


def _fee_for_update(fee_id: uuid.UUID | str) -> FeeLedgerEntry:
    try:
        return FeeLedgerEntry.objects.get(pk=fee_id)
    except (FeeLedgerEntry.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise NotFound("Fee not found.", field="fee") from exc


def _scaled(legs: list[Leg], amount: Decimal, currency: str) -> list[Leg]:
    """The same legs moving ``amount`` instead: each side split by the original legs' sizes."""
    debits = [leg for leg in legs if leg.amount > 0]
    credits = [leg for leg in legs if leg.amount < 0]
    out: list[Leg] = []
    for side, sign in ((debits, 1), (credits, -1)):
        parts = split(amount, [abs(leg.amount) for leg in side], currency)
        out.extend(
            Leg(leg.account, sign * part, leg.strategy_id, leg.allocation_id)
            for leg, part in zip(side, parts, strict=True)
            if part
        )
    return out


def fee_reverse(
    *,
    fee_id: uuid.UUID | str,
    actor: User,
    reason: str,
    replacement_amount: Decimal | str | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> FeeLedgerEntry:
    """Reverse a charge: a ``reversal`` row whose journal transaction negates the charge's entry
    by entry, and -- with ``replacement_amount`` -- a corrected charge that ``replaces`` it,
    moving the same accounts in the same proportions. Refused, with nothing written: a reversal
    (a reversal of a reversal), a charge already reversed, no reason, a bad amount."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ValidationFailed(
            "Give a reason for the reversal (up to 500 characters).", field="reason"
        )
    with transaction.atomic():
        fee = _fee_for_update(fee_id)
        if fee.kind == LedgerRowKind.REVERSAL:
            raise ValidationFailed(
                "This row is a reversal; a reversal cannot be reversed.",
                code="reversal_of_reversal",
                field="fee",
            )
        strategies_lock([fee.strategy_id or fee.user_id])
        if FeeLedgerEntry.objects.filter(reversal_of=fee).exists():
            raise ValidationFailed(
                "This fee has already been reversed.", code="already_reversed", field="fee"
            )
        replacement = (
            money_input(replacement_amount, currency=fee.fee_currency, field="replacement_amount")
            if replacement_amount not in (None, "")
            else None
        )
        legs = [
            Leg(
                AccountKey(
                    e.account.kind,
                    e.account.currency,
                    e.account.user_id,
                    e.account.trader_id,
                    e.account.fee_type,
                    e.account.venue,
                ),
                e.amount,
                e.strategy_id,
                e.allocation_id,
            )
            for e in JournalEntry.objects.filter(transaction_id=fee.journal_transaction_id)
            .select_related("account")
            .order_by("id")
        ]
        common: dict[str, Any] = {
            "user_id": fee.user_id,
            "fee_category": fee.fee_category,
            "fee_bps": fee.fee_bps,
            "fee_currency": fee.fee_currency,
            "order_id": fee.order_id,
            "strategy_id": fee.strategy_id,
            "fill_id": fee.fill_id,
            "plan_id": fee.plan_id,
            "subscription_id": fee.subscription_id,
            "notional_amount": fee.notional_amount,
            "calculation_base": fee.calculation_base,
            "transaction_hash": fee.transaction_hash,
            "exchange_tx_id": fee.exchange_tx_id,
            "period_start": fee.period_start,
            "period_end": fee.period_end,
        }
        reversal = FeeDraft(
            **common,
            fee_amount=fee.fee_amount,
            legs=[
                Leg(leg.account, -leg.amount, leg.strategy_id, leg.allocation_id) for leg in legs
            ],
            kind=LedgerRowKind.REVERSAL,
            reversal_of_id=fee.id,
            reverses_journal_id=fee.journal_transaction_id,
            metadata={"reverses": str(fee.id), "reason": reason, "by": str(actor.pk)},
            memo=reason[:255],
        )
        drafts = [reversal]
        if replacement is not None:
            drafts.append(
                FeeDraft(
                    **common,
                    fee_amount=replacement,
                    legs=_scaled(legs, replacement, fee.fee_currency),
                    replaces_id=fee.id,
                    metadata={**fee.metadata, "replaces": str(fee.id), "reason": reason},
                    memo=reason[:255],
                )
            )
        fees_post(drafts, now=now)
        audit_log_record(
            action="fee_reverse",
            actor=actor,
            resource_type="fee",
            resource_id=fee.id,
            old_values={"fee_amount": str(fee.fee_amount)},
            new_values={
                "reversal": str(reversal.id),
                "replacement_amount": str(replacement) if replacement is not None else None,
            },
            metadata={"reason": reason},
            request=request,
        )
    return FeeLedgerEntry.objects.get(pk=reversal.id)


def payment_record(
    *,
    user: User,
    amount: Decimal | str,
    reference: str,
    currency: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> JournalTransaction:
    """Money received from ``user``: Dr cash, Cr their receivable. Recorded once per
    ``reference`` (a provider's payment id): the same reference again returns the first."""
    now = now or timezone.now()
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        raise ValidationFailed(
            "Give the payment reference (up to 128 characters).", field="reference"
        )
    value = money_input(amount, currency=currency, field="amount")
    with transaction.atomic():
        existing = JournalTransaction.objects.filter(
            kind=JournalKind.PAYMENT, reference=reference
        ).first()
        if existing is not None:
            payer = (
                JournalEntry.objects.filter(
                    transaction=existing, account__kind=AccountKind.CUSTOMER_RECEIVABLE
                )
                .values_list("account__user_id", flat=True)
                .first()
            )
            if payer != user.pk:
                raise Conflict(
                    "That payment reference is already used.",
                    code="reference_used",
                    field="reference",
                )
            return existing
        journal_id = payment_post(
            user_id=user.pk, amount=value, currency=currency, reference=reference, now=now
        )
        audit_log_record(
            action="payment_record",
            actor=actor,
            resource_type="payment",
            resource_id=journal_id,
            new_values={"amount": str(value), "currency": currency, "reference": reference},
            request=request,
        )
    return JournalTransaction.objects.get(pk=journal_id)
