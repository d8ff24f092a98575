"""Copy trading's live streams: ``trader.<id>`` (a public trader's fills and positions),
``leaderboard`` (the ranking) and the ``strategies`` part of the ``account`` snapshot.

Deltas are published by the services after commit through copytrade.live (``fill`` and
``position`` by ingestion; ``leaderboard`` when scores or follower counts change; ``strategy``
and ``decision`` to the owner's account).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from config import streams


def _trader_exists(trader_id: str) -> bool:
    """Only public (active) traders have a stream; an unknown id is refused, not an empty one."""
    from config.errors import NotFound
    from copytrade import selectors

    try:
        selectors.trader_get(trader_id=trader_id)
    except NotFound:
        return False
    return True


def _trader_snapshot_sync(trader_id: str) -> dict[str, Any] | None:
    from config.errors import NotFound
    from copytrade import selectors
    from copytrade.live import trader_event_payload, trader_position_payload

    try:
        trader = selectors.trader_get(trader_id=trader_id)
    except NotFound:  # deactivated between the check and the snapshot
        return None
    return {
        "trader": {"id": str(trader.pk), "alias": trader.alias, "exchange": trader.exchange},
        "positions": [
            trader_position_payload(p) for p in selectors.trader_positions_open(trader=trader)
        ],
        "fills": [
            trader_event_payload(e) for e in selectors.trader_fills_recent(trader=trader, limit=50)
        ],
    }


async def _authorize_trader(user: Any, stream: str) -> bool:
    return await database_sync_to_async(_trader_exists)(stream.split(".", 1)[1])


async def _trader_snapshot(user: Any, stream: str) -> Any:
    return await database_sync_to_async(_trader_snapshot_sync)(stream.split(".", 1)[1])


def _leaderboard_sync() -> dict[str, Any]:
    from copytrade import selectors

    board = selectors.leaderboard(limit=50)
    entries = [
        {k: (str(v) if v is not None and not isinstance(v, int | float | bool | list | str) else v)
         for k, v in entry.items()}
        for entry in board["entries"]
    ]  # fmt: skip
    return {"kpis_available": board["kpis_available"], "entries": entries}


async def _authorize_anyone(user: Any, stream: str) -> bool:
    return True


async def _leaderboard_snapshot(user: Any, stream: str) -> Any:
    return await database_sync_to_async(_leaderboard_sync)()


def _account_strategies(user: Any) -> list[dict[str, Any]]:
    from copytrade.selectors import strategies_for_account

    return strategies_for_account(user)


streams.register(
    streams.StreamSpec(prefix="trader", authorize=_authorize_trader, snapshot=_trader_snapshot)
)
# Not coalesced: coalescing keeps the latest message of each type, and leaderboard deltas are
# partial (the scores or follower counts of the traders that changed), so a later one must not
# replace an earlier one. They are rare (a KPI rollup, a strategy starting or stopping).
streams.register(
    streams.StreamSpec(
        prefix="leaderboard", authorize=_authorize_anyone, snapshot=_leaderboard_snapshot
    )
)
streams.register_account_part("strategies", _account_strategies)
