"""Statement documents: CSV (every fee row of the month) and PDF (the summary, the fees by day
and category, and the payments), both built from the ledger through the selectors.

The PDF uses fpdf2 with a core font (Latin-1): names outside Latin-1 are transliterated to "?"
rather than failing the download. A month of a busy copier has tens of thousands of fill fees;
the PDF groups them by day and category so it stays a readable few pages, the CSV has them all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from billing import selectors
from billing.models import FeeCategory, FeeType

if TYPE_CHECKING:
    from accounts.models import User

CSV_HEADER = [
    "booked_at",
    "fee_id",
    "kind",
    "fee_type",
    "fee_category",
    "fee_bps",
    "fee_amount",
    "fee_currency",
    "notional_amount",
    "calculation_base",
    "strategy_id",
    "strategy",
    "order_id",
    "exchange_tx_id",
    "transaction_hash",
    "period_start",
    "period_end",
    "reversal_of",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def statement_csv_rows(*, user: User, month: date) -> Iterator[str]:
    """The CSV, one line at a time (streamed: a month can hold many thousands of fees)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for fee in selectors.month_fee_lines(user=user, month=month).iterator(chunk_size=2000):
        yield writer.writerow(
            [
                fee.created_at.isoformat(),
                fee.id,
                fee.kind,
                fee.fee_type,
                fee.fee_category,
                fee.fee_bps,
                fee.signed_amount,
                fee.fee_currency,
                "" if fee.notional_amount is None else fee.notional_amount,
                fee.calculation_base or "",
                fee.strategy_id or "",
                fee.strategy.name if fee.strategy else "",
                fee.order_id or "",
                fee.exchange_tx_id or "",
                fee.transaction_hash or "",
                fee.period_start.isoformat() if fee.period_start else "",
                fee.period_end.isoformat() if fee.period_end else "",
                fee.reversal_of_id or "",
            ]
        )


def statement_csv(*, user: User, month: date) -> str:
    return "".join(statement_csv_rows(user=user, month=month))


def _latin(text: Any) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _money(value: Decimal | None) -> str:
    if value is None:
        return ""
    return (
        f"{value.normalize():,f}" if value == value.to_integral() else f"{value:,.6f}".rstrip("0")
    )


TYPE_LABELS = dict(FeeType.choices)
CATEGORY_LABELS = dict(FeeCategory.choices)


def statement_context(*, user: User, month: date) -> dict[str, Any]:
    """Everything a statement shows (the HTML page and the PDF share it)."""
    return {
        "month": month,
        "summaries": selectors.month_summary(user=user, month=month),
        "lines": selectors.month_daily_lines(user=user, month=month),
        "payments": [
            {
                "at": p["transaction__created_at"],
                "reference": p["transaction__reference"],
                "currency": p["account__currency"],
                "amount": -p["amount"],
            }
            for p in selectors.month_payments(user=user, month=month)
        ],
        "stored": selectors.statement_list(user=user).filter(month=month).first(),
    }


def statement_pdf(*, user: User, month: date) -> bytes:
    data = statement_context(user=user, month=month)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Tandem statement {month:%Y-%m}")
    pdf.set_author("Tandem")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, f"Statement {month:%B %Y}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=9)
    who = user.wallet_addr or user.email or str(user.pk)
    pdf.cell(0, 5, _latin(f"Customer: {who}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    stored = data["stored"]
    status = (
        f"closed {stored.closed_at:%Y-%m-%d %H:%M} UTC" if stored else "open (month in progress)"
    )
    pdf.cell(
        0,
        5,
        f"Status: {status}. Generated {timezone.now():%Y-%m-%d %H:%M} UTC.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Summary", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=9)
    if not data["summaries"]:
        pdf.cell(0, 6, "No fees or payments this month.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for summary in data["summaries"]:
        with pdf.table(
            col_widths=(70, 40), text_align=("LEFT", "RIGHT"), first_row_as_headings=True
        ) as table:
            table.row([f"{summary.currency}", "Amount"])
            for label, value in (
                ("Balance at start of month", summary.opening_balance),
                ("Fees charged", summary.charges),
                ("Fees reversed", -summary.reversals),
                ("Collected by the venue (builder fees)", -summary.collected_by_venue),
                ("Payments received", -summary.payments),
                ("Balance due at end of month", summary.closing_balance),
            ):
                table.row([label, _money(value)])
        pdf.ln(2)
        if summary.by_type:
            with pdf.table(col_widths=(70, 40), text_align=("LEFT", "RIGHT")) as table:
                table.row(["Fees by type (net)", summary.currency])
                for fee_type, amount in sorted(summary.by_type.items()):
                    table.row([TYPE_LABELS.get(fee_type, fee_type), _money(amount)])
        pdf.ln(3)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Fees by day", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=8)
    if data["lines"]:
        with pdf.table(
            col_widths=(22, 28, 34, 16, 36, 34, 14),
            text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "LEFT"),
        ) as table:
            table.row(["Day", "Type", "Category", "Fees", "Notional", "Amount", "Cur."])
            for line in data["lines"]:
                table.row(
                    [
                        f"{line['day']:%Y-%m-%d}",
                        TYPE_LABELS.get(line["fee_type"], line["fee_type"]),
                        CATEGORY_LABELS.get(line["fee_category"], line["fee_category"]),
                        str(line["count"]),
                        _money(line["notional"]),
                        _money(line["amount"]),
                        line["fee_currency"],
                    ]
                )
    else:
        pdf.cell(0, 6, "No fees this month.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Payments", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=8)
    if data["payments"]:
        with pdf.table(
            col_widths=(40, 80, 40, 20), text_align=("LEFT", "LEFT", "RIGHT", "LEFT")
        ) as table:
            table.row(["Received", "Reference", "Amount", "Cur."])
            for payment in data["payments"]:
                table.row(
                    [
                        f"{payment['at']:%Y-%m-%d %H:%M}",
                        _latin(payment["reference"]),
                        _money(payment["amount"]),
                        payment["currency"],
                    ]
                )
    else:
        pdf.cell(0, 6, "No payments this month.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
