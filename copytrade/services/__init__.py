"""Copy trading: every write. Split by subject; every name importable from here.

* traders (``traders``): staff, follows, bulk import, account state, public scores;
* leader fills (``ingest``, ``polling``): stored once, grouped into moves, copied, exported;
* the copy engine's fan-out (``engine``) over the sizing rules (copytrade.sizing);
* strategies (``strategies``): settings, allocations, versions and rollback, status machine;
* alignment and rebalancing (``alignment``); follower equity (``equity``);
* the copy simulation (``simulation``); ClickHouse and live events (``events``);
* the demo traders (``demo``).
"""

from copytrade.services.alignment import (
    AlignmentReport,
    strategies_align,
    strategy_align,
    strategy_alignment,
)
from copytrade.services.demo import demo_history_generate, demo_traders_ensure, demo_traders_step
from copytrade.services.engine import EngineMove, FanOutResult, copy_move
from copytrade.services.equity import (
    follower_equities_refresh,
    follower_equity,
    follower_equity_fetch,
)
from copytrade.services.events import (
    copy_fills_listener,
    copy_outcomes_record,
    decisions_announce,
)
from copytrade.services.ingest import (
    IngestResult,
    parse_user_fills,
    trader_cursor_error,
    trader_events_export,
    trader_fills_ingest,
)
from copytrade.services.polling import trader_account_refresh, trader_fills_poll, traders_to_poll
from copytrade.services.simulation import SimulationResult, copy_simulate
from copytrade.services.strategies import (
    STRATEGY_TRANSITIONS,
    StrategyCreateResult,
    activation_block_reason,
    allocation_remove,
    allocation_set,
    allocations_replace,
    strategies_pause_for_user,
    strategy_activate,
    strategy_create,
    strategy_pause,
    strategy_resume,
    strategy_rollback,
    strategy_terminate,
    strategy_update,
)
from copytrade.services.traders import (
    ImportResult,
    trader_create,
    trader_follow,
    trader_scores_update,
    trader_state_sync,
    trader_update,
    traders_import,
    traders_import_file,
)

__all__ = [
    "STRATEGY_TRANSITIONS",
    "AlignmentReport",
    "EngineMove",
    "FanOutResult",
    "ImportResult",
    "IngestResult",
    "SimulationResult",
    "StrategyCreateResult",
    "activation_block_reason",
    "allocation_remove",
    "allocation_set",
    "allocations_replace",
    "copy_fills_listener",
    "copy_move",
    "copy_outcomes_record",
    "copy_simulate",
    "decisions_announce",
    "demo_history_generate",
    "demo_traders_ensure",
    "demo_traders_step",
    "follower_equities_refresh",
    "follower_equity",
    "follower_equity_fetch",
    "parse_user_fills",
    "strategies_align",
    "strategies_pause_for_user",
    "strategy_activate",
    "strategy_align",
    "strategy_alignment",
    "strategy_create",
    "strategy_pause",
    "strategy_resume",
    "strategy_rollback",
    "strategy_terminate",
    "strategy_update",
    "trader_account_refresh",
    "trader_create",
    "trader_cursor_error",
    "trader_events_export",
    "trader_fills_ingest",
    "trader_fills_poll",
    "trader_follow",
    "trader_scores_update",
    "trader_state_sync",
    "trader_update",
    "traders_import",
    "traders_import_file",
    "traders_to_poll",
]
