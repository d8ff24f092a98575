"""Trading models: one module a concern, every name importable from ``trading.models``."""

from trading.models.fills import Fill, MarginMode, Position, PositionSide
from trading.models.orders import (
    CLOID_REGEX,
    FINAL_STATUSES,
    OPEN_STATUSES,
    ORDER_TRANSITIONS,
    STATUS_TIMESTAMPS,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderOutbox,
    OrderSide,
    OrderStatus,
    OrderType,
    OutboxKind,
    TimeInForce,
    new_cloid,
    transition_is_legal,
)
from trading.models.risk import RiskEvent, RiskEventType, RiskLimit, RiskSeverity
from trading.models.symbols import Symbol, SymbolStatus

__all__ = [
    "CLOID_REGEX",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "ORDER_TRANSITIONS",
    "STATUS_TIMESTAMPS",
    "Fill",
    "MarginMode",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderOutbox",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OutboxKind",
    "Position",
    "PositionSide",
    "RiskEvent",
    "RiskEventType",
    "RiskLimit",
    "RiskSeverity",
    "Symbol",
    "SymbolStatus",
    "TimeInForce",
    "new_cloid",
    "transition_is_legal",
]
