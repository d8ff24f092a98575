"""Trading services: every write, one module a concern, every name importable from here.

``order_create`` / ``order_cancel`` (orders), ``order_submit`` / ``outbox_sweep`` /
``order_cancel_execute`` / ``wallet_fills_sync`` (execution), ``fills_apply`` /
``position_mark`` / ``position_mark_all`` / ``position_set_from_venue`` (fills and positions),
``reconcile_agent_wallet`` (reconciliation), ``risk_limit_set`` / ``risk_event_record``
(risk), ``symbols_sync`` (symbols), ``market_simulator_step`` (market data for embedded runs).
"""

from trading.services.execution import (
    SubmitOutcome,
    order_cancel_execute,
    order_submit,
    outbox_sweep,
    wallet_fills_sync,
)
from trading.services.fills import FillsApplyResult, fills_apply
from trading.services.market import market_simulator_step
from trading.services.orders import OrderCreateResult, order_cancel, order_create
from trading.services.positions import position_mark, position_mark_all, position_set_from_venue
from trading.services.reconciliation import ReconcileReport, reconcile_agent_wallet
from trading.services.risk import RiskLimitExceeded, risk_event_record, risk_limit_set
from trading.services.state import IllegalOrderTransition, VenueNews, order_settle
from trading.services.symbols import SymbolSyncResult, symbols_sync

__all__ = [
    "FillsApplyResult",
    "IllegalOrderTransition",
    "OrderCreateResult",
    "ReconcileReport",
    "RiskLimitExceeded",
    "SubmitOutcome",
    "SymbolSyncResult",
    "VenueNews",
    "fills_apply",
    "market_simulator_step",
    "order_cancel",
    "order_cancel_execute",
    "order_create",
    "order_settle",
    "order_submit",
    "outbox_sweep",
    "position_mark",
    "position_mark_all",
    "position_set_from_venue",
    "reconcile_agent_wallet",
    "risk_event_record",
    "risk_limit_set",
    "symbols_sync",
    "wallet_fills_sync",
]
