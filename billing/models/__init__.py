"""Billing tables: plans and subscriptions, the fee ledger and its journal, what fees are
computed from (equity marks, capital flows, performance periods), monthly statements."""

from billing.models.ledger import (
    CATEGORY_TYPE,
    AccountKind,
    CalculationBase,
    FeeCategory,
    FeeLedgerEntry,
    FeeType,
    JournalEntry,
    JournalKind,
    JournalTransaction,
    LedgerAccount,
    LedgerRowKind,
)
from billing.models.performance import CapitalFlow, PerformancePeriod, StrategyEquityMark
from billing.models.plans import (
    FEE_CAPS,
    FEE_FIELDS,
    BillingPeriod,
    PerformancePeriodKind,
    Plan,
    StrategyFeeSchedule,
)
from billing.models.statements import Statement
from billing.models.subscriptions import EFFECTIVE_STATUSES, Subscription, SubscriptionStatus

__all__ = [
    "CATEGORY_TYPE",
    "EFFECTIVE_STATUSES",
    "FEE_CAPS",
    "FEE_FIELDS",
    "AccountKind",
    "BillingPeriod",
    "CalculationBase",
    "CapitalFlow",
    "FeeCategory",
    "FeeLedgerEntry",
    "FeeType",
    "JournalEntry",
    "JournalKind",
    "JournalTransaction",
    "LedgerAccount",
    "LedgerRowKind",
    "PerformancePeriod",
    "PerformancePeriodKind",
    "Plan",
    "Statement",
    "StrategyEquityMark",
    "StrategyFeeSchedule",
    "Subscription",
    "SubscriptionStatus",
]
