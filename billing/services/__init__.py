"""Billing: every write. Keyword-only, typed, one transaction each, side effects on commit.
One module a concern (journal, accrual, corrections, subscriptions, plans, equity,
statements), every public name importable from here."""

from billing.services.accrual import (
    AccrualResult,
    fill_fees_accrue,
    fill_fees_sweep,
    management_fees_accrue,
    performance_fees_accrue,
    performance_periods_close,
)
from billing.services.corrections import fee_reverse, payment_record
from billing.services.equity import capital_flow_record, equity_mark_record, equity_marks_take
from billing.services.journal import fees_post, strategy_fee_totals_sync
from billing.services.listeners import fill_listener
from billing.services.plans import (
    fee_schedule_validate,
    plan_limit_check,
    plan_save,
    strategy_fee_schedule_set,
)
from billing.services.statements import statements_close
from billing.services.subscriptions import (
    RenewReport,
    SubscribeResult,
    subscription_cancel,
    subscription_grant,
    subscription_payment_record,
    subscription_renew,
    subscription_subscribe,
    subscriptions_renew,
)

__all__ = [
    "AccrualResult",
    "RenewReport",
    "SubscribeResult",
    "capital_flow_record",
    "equity_mark_record",
    "equity_marks_take",
    "fee_reverse",
    "fee_schedule_validate",
    "fees_post",
    "fill_fees_accrue",
    "fill_fees_sweep",
    "fill_listener",
    "management_fees_accrue",
    "payment_record",
    "performance_fees_accrue",
    "performance_periods_close",
    "plan_limit_check",
    "plan_save",
    "statements_close",
    "strategy_fee_schedule_set",
    "strategy_fee_totals_sync",
    "subscription_cancel",
    "subscription_grant",
    "subscription_payment_record",
    "subscription_renew",
    "subscription_subscribe",
    "subscriptions_renew",
]
