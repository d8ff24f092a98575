"""Monthly statements: the totals of a closed month, frozen when the month is closed.

The lines of a statement are not copied: they are the ledger rows and payments *booked* in the
month (``created_at``), which are immutable and always booked at the current time, so a closed
month's lines never change. The stored totals let the statement list page without summing, and
the database checks they add up.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q


class Statement(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="statements")
    month = models.DateField(help_text="The first day of the month.")
    currency = models.CharField(max_length=8)
    # Receivable balance (what the customer owes Tandem) at the start and end of the month.
    opening_balance = models.DecimalField(max_digits=18, decimal_places=8)
    charges = models.DecimalField(max_digits=18, decimal_places=8)
    reversals = models.DecimalField(max_digits=18, decimal_places=8)
    # Builder fees (net of their reversals): charged, but collected by the venue on the fill.
    collected_by_venue = models.DecimalField(max_digits=18, decimal_places=8)
    payments = models.DecimalField(max_digits=18, decimal_places=8)
    closing_balance = models.DecimalField(max_digits=18, decimal_places=8)
    fee_count = models.PositiveIntegerField()
    closed_at = models.DateTimeField()

    class Meta:
        db_table = "billing_statements"
        ordering = ["-month", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "month", "currency"], name="billing_statement_user_month"
            ),
            models.CheckConstraint(
                condition=Q(month__day=1), name="billing_statement_month_first_day"
            ),
            models.CheckConstraint(
                condition=Q(
                    closing_balance=F("opening_balance")
                    + F("charges")
                    - F("reversals")
                    - F("collected_by_venue")
                    - F("payments")
                ),
                name="billing_statement_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(charges__gte=0, reversals__gte=0, payments__gte=0),
                name="billing_statement_totals_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m} {self.currency}"

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"
