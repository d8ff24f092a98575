"""The fee ledger (seed 000 ``fees_ledger``) and the double-entry journal behind it.

Every fee is one ``fees_ledger`` row *and* one balanced journal transaction:

=========================  ===================================  ===================================
fee                        debit (what the customer is charged)  credit
=========================  ===================================  ===================================
builder fee (trading)      venue clearing (the venue collects     platform revenue: trading
                           it on the fill and pays the builder)
copy fee                   customer receivable                  platform revenue: copy
management fee             customer receivable                  platform revenue: management
performance fee            customer receivable                  platform revenue: performance,
                                                                  trader share payable (per trader)
plan fee (subscription)    customer receivable                  platform revenue: subscription
payment                    cash                                 customer receivable
=========================  ===================================  ===================================

Amounts are signed: debits positive, credits negative; each transaction sums to zero (a
deferred constraint trigger checks it at commit, migrations 0002 and 0004). The customer-side
entries carry the strategy and allocation they are attributed to (split by allocation weight when
a fee concerns the whole strategy), so ``CopyStrategy.total_fees`` and ``CopyAllocation.
allocated_fees`` are sums of entries. Nothing here is ever updated or deleted (triggers refuse
it): a wrong fee is corrected by a reversal -- a ``fees_ledger`` row of kind ``reversal`` whose
journal transaction negates the original's, entry by entry -- and, if needed, a corrected charge
that ``replaces`` it.

Deviations from the seed, on purpose: the user, order and strategy foreign keys PROTECT instead
of CASCADE / SET NULL (fee records are kept for seven years like orders, seed 002 §4.2, and an
immutable row cannot be nulled); ``fee_currency`` defaults to USDC, the currency Hyperliquid
settles in; ``fee_type``/``fee_category`` gain ``subscription``/``plan_fee`` for plan fees.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Func, Q


class FeeType(models.TextChoices):
    TRADING = "trading", "Trading"
    COPY = "copy", "Copy"
    MANAGEMENT = "management", "Management"
    PERFORMANCE = "performance", "Performance"
    SUBSCRIPTION = "subscription", "Subscription"


class FeeCategory(models.TextChoices):
    BUILDER_FEE = "builder_fee", "Builder fee"
    COPY_FEE = "copy_fee", "Copy fee"
    VAULT_MANAGEMENT = "vault_management", "Management fee"
    PERFORMANCE_FEE = "performance_fee", "Performance fee"
    PLAN_FEE = "plan_fee", "Plan fee"


CATEGORY_TYPE: dict[str, str] = {
    FeeCategory.BUILDER_FEE: FeeType.TRADING,
    FeeCategory.COPY_FEE: FeeType.COPY,
    FeeCategory.VAULT_MANAGEMENT: FeeType.MANAGEMENT,
    FeeCategory.PERFORMANCE_FEE: FeeType.PERFORMANCE,
    FeeCategory.PLAN_FEE: FeeType.SUBSCRIPTION,
}


class CalculationBase(models.TextChoices):
    TRADE_VOLUME = "trade_volume", "Trade volume"
    AUM = "aum", "Assets under management"
    PNL = "pnl", "Profit above the high-water mark"
    FLAT = "flat", "Flat price"


class LedgerRowKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REVERSAL = "reversal", "Reversal"


class AccountKind(models.TextChoices):
    CUSTOMER_RECEIVABLE = "customer_receivable", "Customer receivable"
    VENUE_CLEARING = "venue_clearing", "Venue clearing (builder fees held by the venue)"
    PLATFORM_REVENUE = "platform_revenue", "Platform revenue"
    TRADER_SHARE_PAYABLE = "trader_share_payable", "Trader share payable"
    CASH = "cash", "Cash"


class LedgerAccount(models.Model):
    """One account of the journal. Which of user/trader/fee_type/venue is set depends on the
    kind (a check constraint says which); the combination is unique, NULLs included."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=24, choices=AccountKind.choices)
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trader = models.ForeignKey(
        "copytrade.Trader", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    fee_type = models.CharField(max_length=16, blank=True, default="")
    venue = models.CharField(max_length=32, blank=True, default="")
    currency = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_accounts"
        ordering = ["kind", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "user", "trader", "fee_type", "venue", "currency"],
                name="billing_account_key_uniq",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="billing_account_kind_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        kind=AccountKind.CUSTOMER_RECEIVABLE,
                        user__isnull=False,
                        trader__isnull=True,
                        fee_type="",
                        venue="",
                    )
                    | Q(
                        kind=AccountKind.VENUE_CLEARING,
                        user__isnull=True,
                        trader__isnull=True,
                        fee_type="",
                    )
                    & ~Q(venue="")
                    | Q(
                        kind=AccountKind.PLATFORM_REVENUE,
                        user__isnull=True,
                        trader__isnull=True,
                        venue="",
                        fee_type__in=FeeType.values,
                    )
                    | Q(
                        kind=AccountKind.TRADER_SHARE_PAYABLE,
                        user__isnull=True,
                        trader__isnull=False,
                        fee_type="",
                        venue="",
                    )
                    | Q(
                        kind=AccountKind.CASH,
                        user__isnull=True,
                        trader__isnull=True,
                        fee_type="",
                        venue="",
                    )
                ),
                name="billing_account_kind_fields",
            ),
        ]

    def __str__(self) -> str:
        owner = self.user_id or self.trader_id or self.fee_type or self.venue or ""
        return f"{self.kind}:{owner}:{self.currency}"


class JournalKind(models.TextChoices):
    FEE = "fee", "Fee"
    REVERSAL = "reversal", "Reversal"
    PAYMENT = "payment", "Payment"


class JournalTransaction(models.Model):
    """A set of entries that sums to zero, written in one database transaction.

    ``created_txid`` is the database transaction that wrote it (``txid_current()``): entries
    may only be added to a journal transaction in that same database transaction, so a
    transaction checked balanced at commit stays balanced (migrations 0002 and 0004).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=JournalKind.choices)
    currency = models.CharField(max_length=8)
    # Who a transaction concerns is in its accounts (a receivable is one user's) and its fee
    # row; the journal itself stays narrow, it is the hottest table billing writes.
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_index=False,  # billing_jt_reverses_uniq (partial) serves it
    )
    reference = models.CharField(max_length=128, blank=True, default="")
    memo = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()
    created_txid = models.BigIntegerField(
        db_default=Func(function="txid_current", output_field=models.BigIntegerField()),
        editable=False,
    )

    class Meta:
        db_table = "billing_journal_transactions"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_txid"], name="billing_jt_txid_idx"),
            models.Index(fields=["created_at"], name="billing_jt_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=JournalKind.values), name="billing_jt_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind=JournalKind.REVERSAL, reverses__isnull=False)
                | (~Q(kind=JournalKind.REVERSAL) & Q(reverses__isnull=True)),
                name="billing_jt_reversal_has_target",
            ),
            # A transaction is reversed at most once (partial: most rows reverse nothing).
            models.UniqueConstraint(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="billing_jt_reverses_uniq",
            ),
            # A payment is recorded once per external reference (a provider's payment id).
            models.UniqueConstraint(
                fields=["reference"],
                condition=Q(kind=JournalKind.PAYMENT),
                name="billing_jt_payment_reference_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class JournalEntry(models.Model):
    """One leg: a signed amount on one account (debit > 0, credit < 0)."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by the named indexes in Meta only (no second index per foreign key). The two
    # parents below are append-only (triggers refuse UPDATE and DELETE), so "the parent exists
    # when the entry is written" is the whole of referential integrity; migration 0002 checks
    # it once per INSERT statement, set-based, instead of one row-level foreign-key trigger per
    # entry -- the difference is seconds on a 400,000-entry accrual.
    transaction = models.ForeignKey(
        JournalTransaction,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        db_constraint=False,
    )
    account = models.ForeignKey(
        LedgerAccount,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        db_constraint=False,
    )
    amount = models.DecimalField(max_digits=18, decimal_places=8)
    # Attribution of customer-side entries: the strategy and the allocation (trader) charged.
    # Referential integrity is kept by statement triggers (migration 0004), not row-level
    # foreign keys: an insert is checked once per statement with a join, and deleting a
    # strategy or allocation that entries name is refused, exactly as the keys did. Half the
    # entries of a fill accrual carry both columns; 200,000 row-level checks at commit were
    # a fifth of its time.
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    allocation = models.ForeignKey(
        "copytrade.CopyAllocation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        db_table = "billing_journal_entries"
        ordering = ["transaction_id", "id"]
        indexes = [
            models.Index(fields=["transaction"], name="billing_je_transaction_idx"),
            models.Index(fields=["account"], name="billing_je_account_idx"),
            models.Index(
                fields=["strategy"],
                name="billing_je_strategy_idx",
                condition=Q(strategy__isnull=False),
                include=["amount"],
            ),
            models.Index(
                fields=["allocation"],
                name="billing_je_allocation_idx",
                condition=Q(allocation__isnull=False),
                include=["amount"],
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="billing_je_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(allocation__isnull=True) | Q(strategy__isnull=False),
                name="billing_je_allocation_has_strategy",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount}"


class FeeLedgerEntry(models.Model):
    """One fee charged (or reversed): seed 000 ``fees_ledger``, every field and constraint."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Foreign keys are indexed by the named indexes in Meta (the seed's), not once more each.
    user = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="fees", db_index=False
    )
    order = models.ForeignKey(
        "trading.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fee_ledger_rows",
        db_index=False,
    )
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fees",
        db_index=False,
    )

    # Fee details
    fee_type = models.CharField(max_length=16, choices=FeeType.choices)
    fee_category = models.CharField(max_length=24, choices=FeeCategory.choices)

    # Fee amounts
    fee_bps = models.IntegerField(help_text="Basis points (annual for management fees).")
    fee_amount = models.DecimalField(max_digits=18, decimal_places=8)
    fee_currency = models.CharField(max_length=8, default="USDC")

    # Calculation context
    notional_amount = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    calculation_base = models.CharField(
        max_length=16, choices=CalculationBase.choices, null=True, blank=True
    )

    # Transaction details
    transaction_hash = models.CharField(max_length=80, null=True, blank=True)
    exchange_tx_id = models.CharField(max_length=80, null=True, blank=True)

    # Timing
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    metadata = models.JSONField(default=dict, blank=True)

    # Tandem's additions: what it was charged for, and its place in the journal.
    kind = models.CharField(
        max_length=8, choices=LedgerRowKind.choices, default=LedgerRowKind.CHARGE
    )
    fill = models.ForeignKey(
        "trading.Fill",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fee_ledger_rows",
    )
    # Plans are never deleted (retired instead), so the key needs no index of its own.
    plan = models.ForeignKey(
        "billing.Plan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fees",
        db_index=False,
        help_text="The customer's plan when the fee was charged (revenue by plan).",
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fees",
        db_index=False,  # fees_ledger_subscription_uniq serves it
    )
    # At most one reversal and one replacement per charge: partial unique keys below (a full
    # unique index would also store the NULL of every ordinary charge).
    reversal_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_index=False,
    )
    replaces = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replacements",
        db_index=False,
        help_text="The reversed charge this corrected charge stands in for.",
    )
    journal_transaction = models.OneToOneField(
        JournalTransaction, on_delete=models.PROTECT, related_name="fee"
    )

    class Meta:
        db_table = "fees_ledger"
        ordering = ["-created_at", "-id"]
        verbose_name = "fee"
        indexes = [
            models.Index(fields=["order"], name="idx_fees_ledger_order_id"),
            models.Index(fields=["strategy"], name="idx_fees_ledger_strategy_id"),
            models.Index(fields=["fee_type"], name="idx_fees_ledger_fee_type"),
            models.Index(fields=["-created_at"], name="idx_fees_ledger_created_at"),
            # The seed's idx_fees_ledger_user_id, widened: it also serves the newest-first pages
            # and the per-month statements of one user.
            models.Index(fields=["user", "-created_at", "-id"], name="idx_fees_ledger_user_id"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(fee_bps__gte=0), name="chk_fee_bps_positive"),
            models.CheckConstraint(condition=Q(fee_amount__gt=0), name="chk_fee_amount_positive"),
            models.CheckConstraint(
                condition=Q(fee_type__in=FeeType.values), name="chk_fee_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(fee_category__in=FeeCategory.values), name="chk_fee_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(fee_category=FeeCategory.BUILDER_FEE, fee_type=FeeType.TRADING)
                | Q(fee_category=FeeCategory.COPY_FEE, fee_type=FeeType.COPY)
                | Q(fee_category=FeeCategory.VAULT_MANAGEMENT, fee_type=FeeType.MANAGEMENT)
                | Q(fee_category=FeeCategory.PERFORMANCE_FEE, fee_type=FeeType.PERFORMANCE)
                | Q(fee_category=FeeCategory.PLAN_FEE, fee_type=FeeType.SUBSCRIPTION),
                name="chk_fee_category_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(calculation_base__isnull=True)
                | Q(calculation_base__in=CalculationBase.values),
                name="chk_fee_calculation_base_valid",
            ),
            models.CheckConstraint(
                condition=Q(notional_amount__isnull=True) | Q(notional_amount__gte=0),
                name="chk_fee_notional_positive",
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True)
                | Q(period_end__isnull=True)
                | Q(period_end__gt=F("period_start")),
                name="chk_fee_period_order",
            ),
            models.CheckConstraint(
                condition=Q(kind=LedgerRowKind.REVERSAL, reversal_of__isnull=False)
                | Q(kind=LedgerRowKind.CHARGE, reversal_of__isnull=True),
                name="chk_fee_reversal_has_target",
            ),
            models.CheckConstraint(
                condition=Q(replaces__isnull=True) | Q(kind=LedgerRowKind.CHARGE),
                name="chk_fee_only_charges_replace",
            ),
            models.UniqueConstraint(
                fields=["reversal_of"],
                condition=Q(reversal_of__isnull=False),
                name="fees_ledger_reversal_of_uniq",
            ),
            models.UniqueConstraint(
                fields=["replaces"],
                condition=Q(replaces__isnull=False),
                name="fees_ledger_replaces_uniq",
            ),
            # Idempotency: a fill, a day, a period, a subscription period is charged once.
            models.UniqueConstraint(
                fields=["fill", "fee_category"],
                condition=Q(kind="charge", replaces__isnull=True, fill__isnull=False),
                name="fees_ledger_fill_category_uniq",
            ),
            models.UniqueConstraint(
                fields=["strategy", "fee_category", "period_start"],
                condition=Q(
                    kind="charge",
                    replaces__isnull=True,
                    fee_category__in=["vault_management", "performance_fee"],
                ),
                name="fees_ledger_strategy_period_uniq",
            ),
            models.UniqueConstraint(
                fields=["subscription", "fee_category"],
                condition=Q(kind="charge", replaces__isnull=True, subscription__isnull=False),
                name="fees_ledger_subscription_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.fee_category} {self.fee_amount} {self.fee_currency}"

    @property
    def signed_amount(self) -> Decimal:
        return -self.fee_amount if self.kind == LedgerRowKind.REVERSAL else self.fee_amount
