"""The high-water mark of a performance fee: one period at a time, pure Decimal arithmetic.

Definitions, for one strategy and one fee period ``[start, end)`` (a UTC week or month):

``H``   opening high-water mark: the previous period's closing mark. For a strategy's first
        period it is the equity of its first equity mark (what was in the strategy when
        billing first saw it is capital, not profit), and flows count from that mark on.
``F``   net external flows during the period: deposits into the strategy minus withdrawals
        (``CapitalFlow`` rows, signed).
``H'``  adjusted mark, ``H' = H + F``: **the high-water mark moves by net flows, one for one**.
        A deposit of 1,000 raises the bar by 1,000 (new money is not profit); a withdrawal of
        500 lowers it by 500 (money taken out is not a loss). Because equity moves by the same
        flow, the gap ``H' - E`` -- the loss still to be recovered -- is unchanged by flows.
``E``   closing equity: the strategy's equity mark at the end of the period's last day.
``P``   profit above the mark, ``P = max(0, E - H')``.
fee     ``round_half_even(P * bps / 10_000)`` to the currency's precision.
``H1``  closing mark, ``H1 = max(H', E)``: after a gain the bar rises to the new equity; after a
        loss it stays, so the loss is carried forward and no fee is charged in later periods
        until equity is back above ``H'`` -- only the part above is profit.

Equity marks are taken before any fee is paid out of the account; a fee the customer pays from
the strategy later arrives as a withdrawal and lowers both equity and the mark equally.
The database re-checks these identities on every ``PerformancePeriod`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.money import BPS, ZERO, money_round


@dataclass(frozen=True)
class HwmPeriod:
    opening_hwm: Decimal
    net_flows: Decimal
    adjusted_hwm: Decimal
    closing_equity: Decimal
    profit: Decimal
    fee: Decimal
    closing_hwm: Decimal

    @property
    def loss_carried_forward(self) -> Decimal:
        return max(ZERO, self.adjusted_hwm - self.closing_equity)


def hwm_period_close(
    *,
    opening_hwm: Decimal,
    net_flows: Decimal,
    closing_equity: Decimal,
    fee_bps: int,
    currency: str,
) -> HwmPeriod:
    """Close one period (see the module docstring for every symbol)."""
    if fee_bps < 0:
        raise ValueError("fee_bps must not be negative")
    adjusted = opening_hwm + net_flows
    profit = max(ZERO, closing_equity - adjusted)
    fee = money_round(profit * Decimal(fee_bps) / BPS, currency)
    return HwmPeriod(
        opening_hwm=opening_hwm,
        net_flows=net_flows,
        adjusted_hwm=adjusted,
        closing_equity=closing_equity,
        profit=profit,
        fee=fee,
        closing_hwm=max(adjusted, closing_equity),
    )
