"""Copy trading models: one module a concern, every name importable from ``copytrade.models``."""

from copytrade.models.engine import (
    CopyDecision,
    CopySlot,
    DecisionKind,
    DecisionOutcome,
    FollowerEquity,
)
from copytrade.models.strategies import (
    AllocationStatus,
    CopyAllocation,
    CopyStrategy,
    SizeMode,
    StrategyMode,
    StrategyStatus,
    StrategyVersion,
)
from copytrade.models.traders import (
    Trader,
    TraderEvent,
    TraderEventSource,
    TraderFillCursor,
    TraderPosition,
    TraderSource,
)

__all__ = [
    "AllocationStatus",
    "CopyAllocation",
    "CopyDecision",
    "CopySlot",
    "CopyStrategy",
    "DecisionKind",
    "DecisionOutcome",
    "FollowerEquity",
    "SizeMode",
    "StrategyMode",
    "StrategyStatus",
    "StrategyVersion",
    "Trader",
    "TraderEvent",
    "TraderEventSource",
    "TraderFillCursor",
    "TraderPosition",
    "TraderSource",
]
