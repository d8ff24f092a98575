"""Copy trading's live streams over the real Redis channel layer and the real ``/ws/v1/``
endpoint: a leader's committed fill reaches its ``trader.<id>`` subscribers and no other
trader's; a strategy's status reaches its owner's ``account`` stream and no one else's; score
and follower changes reach ``leaderboard``; an unknown or inactive trader is refused; a
reconnect with the last ``seq`` receives exactly what it missed."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from copytrade.tests.conftest import fill

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
D = Decimal


@database_sync_to_async
def _headers(user: Any) -> list[tuple[bytes, bytes]]:
    from accounts.services import jwt_pair_issue

    _, tokens = jwt_pair_issue(user=user, method="siwe")
    return [(b"authorization", f"Bearer {tokens['access']}".encode())]


async def _open(user: Any) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/v1/", headers=await _headers(user))
    connected, _ = await socket.connect()
    assert connected
    return socket


async def _send(socket: WebsocketCommunicator, **message: Any) -> dict[str, Any]:
    await socket.send_to(text_data=json.dumps(message))
    return dict(json.loads(await socket.receive_from(timeout=5)))


async def _subscribe(socket: WebsocketCommunicator, stream: str, **extra: Any) -> dict[str, Any]:
    answer = await _send(socket, op="subscribe", stream=stream, **extra)
    assert answer == {"type": "subscribed", "stream": stream}, answer
    if "since" in extra:
        return answer
    snapshot = json.loads(await socket.receive_from(timeout=5))
    assert (snapshot["type"], snapshot["stream"]) == ("snapshot", stream), snapshot
    return dict(snapshot)


async def _until(socket: WebsocketCommunicator, wanted: dict[str, int]) -> list[dict[str, Any]]:
    """Messages until ``wanted`` (type -> how many) have all arrived (5 s per message)."""
    seen: list[dict[str, Any]] = []
    while any(sum(m["type"] == t for m in seen) < n for t, n in wanted.items()):
        seen.append(json.loads(await socket.receive_from(timeout=5)))
    return seen


async def _ingest(trader: Any, records: list[dict[str, Any]]) -> Any:
    from copytrade.services import trader_fills_ingest

    return await database_sync_to_async(trader_fills_ingest)(trader=trader, fills=records)


async def test_a_leaders_fill_reaches_its_trader_stream_and_no_other(
    user: Any, other_user: Any, leader: Any, paper_symbols: Any, market: None
) -> None:
    from copytrade.tests.factories import TraderFactory

    other = await database_sync_to_async(TraderFactory.create)(alias="Other")
    watcher = await _open(user)
    elsewhere = await _open(other_user)
    snapshot = await _subscribe(watcher, f"trader.{leader.pk}")
    assert snapshot["data"]["trader"] == {
        "id": str(leader.pk), "alias": "Leader", "exchange": leader.exchange,
    }  # fmt: skip
    assert (snapshot["data"]["fills"], snapshot["data"]["positions"]) == ([], [])
    await _subscribe(elsewhere, f"trader.{other.pk}")

    # Two partial fills of one order in one millisecond, then a later add: three fills.
    await _ingest(
        leader,
        [
            fill("ETH", "buy", "1.5", "2500", start="0", time_ms=1_700_000_000_000, oid=7),
            fill("ETH", "buy", "0.5", "2501", start="1.5", time_ms=1_700_000_000_000, oid=7),
        ],
    )
    later = fill("ETH", "buy", "1", "2502", start="2", time_ms=1_700_000_001_000, oid=8)
    await _ingest(leader, [later])
    messages = await _until(watcher, {"fill": 3, "position": 2})
    assert all(m["stream"] == f"trader.{leader.pk}" for m in messages)
    fills = [m["data"] for m in messages if m["type"] == "fill"]
    assert [(f["price"], f["size"], f["side"]) for f in fills] == [
        ("2500", "1.5", "buy"), ("2501", "0.5", "buy"), ("2502", "1", "buy"),
    ]  # fmt: skip
    positions = [m["data"] for m in messages if m["type"] == "position"]
    assert [(p["coin"], D(p["quantity"])) for p in positions] == [("ETH", D(2)), ("ETH", D(3))]
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert await elsewhere.receive_nothing(timeout=0.5)

    # A replay of the same delivery stores nothing and publishes nothing.
    replayed = await _ingest(leader, [later])
    assert (replayed.new, replayed.duplicates) == (0, 1)
    assert await watcher.receive_nothing(timeout=0.5)
    await watcher.disconnect()
    await elsewhere.disconnect()


async def test_a_reconnect_with_its_last_seq_gets_exactly_the_missed_fills(
    user: Any, leader: Any, paper_symbols: Any, market: None
) -> None:
    stream = f"trader.{leader.pk}"
    first = await _open(user)
    await _subscribe(first, stream)
    await _ingest(
        leader, [fill("BTC", "sell", "0.1", "50000", start="0", time_ms=1_700_000_000_100)]
    )
    seen = await _until(first, {"fill": 1, "position": 1})
    last = seen[-1]["seq"]
    await first.disconnect()

    # While away: two deliveries (two fills, two position changes).
    await _ingest(
        leader, [fill("BTC", "sell", "0.2", "49990", start="-0.1", time_ms=1_700_000_000_200)]
    )
    await _ingest(
        leader, [fill("BTC", "buy", "0.3", "49980", start="-0.3", time_ms=1_700_000_000_300)]
    )

    again = await _open(user)
    await _subscribe(again, stream, since=last)
    missed = await _until(again, {"fill": 2, "position": 2})
    assert [m["seq"] for m in missed] == list(range(last + 1, last + 5))
    assert [m["data"]["price"] for m in missed if m["type"] == "fill"] == ["49990", "49980"]
    assert D([m for m in missed if m["type"] == "position"][-1]["data"]["quantity"]) == 0
    assert await again.receive_nothing(timeout=0.5)  # nothing twice, no snapshot on top
    await again.disconnect()


async def test_an_unknown_or_inactive_trader_is_refused_and_the_socket_stays_open(
    user: Any, leader: Any
) -> None:
    import uuid

    from copytrade.models import Trader

    socket = await _open(user)
    unknown = await _send(socket, op="subscribe", stream=f"trader.{uuid.uuid4()}")
    assert (unknown["type"], unknown["code"]) == ("error", "forbidden")
    await database_sync_to_async(Trader.objects.filter(pk=leader.pk).update)(is_active=False)
    inactive = await _send(socket, op="subscribe", stream=f"trader.{leader.pk}")
    assert (inactive["type"], inactive["code"]) == ("error", "forbidden")
    malformed = await _send(socket, op="subscribe", stream="trader.not-a-trader")
    assert (malformed["type"], malformed["code"]) == ("error", "unknown_stream")
    assert (await _send(socket, op="ping"))["type"] == "pong"
    await socket.disconnect()


async def test_strategy_status_reaches_its_owner_and_no_one_else(
    other_user: Any, leader: Any, follower: Any
) -> None:
    from copytrade.services import strategy_pause

    strategy = await database_sync_to_async(follower)(leader)
    owner = await _open(strategy.user)
    stranger = await _open(other_user)
    snapshot = await _subscribe(owner, "account")
    assert [(s["id"], s["status"]) for s in snapshot["data"]["strategies"]] == [
        (str(strategy.pk), "active")
    ]
    assert (await _subscribe(stranger, "account"))["data"]["strategies"] == []

    await database_sync_to_async(strategy_pause)(strategy=strategy, reason="going on holiday")
    (update,) = await _until(owner, {"strategy": 1})
    assert update["stream"] == "account"
    assert update["data"]["id"] == str(strategy.pk)
    assert (update["data"]["status"], update["data"]["status_reason"]) == (
        "paused",
        "going on holiday",
    )
    assert update["data"]["status_display"] == "Paused"
    assert update["seq"] > snapshot["seq"]
    assert await stranger.receive_nothing(timeout=0.5)
    await owner.disconnect()
    await stranger.disconnect()


async def test_a_copied_fill_tells_the_follower_what_was_decided(
    other_user: Any, leader: Any, follower: Any, market: None
) -> None:
    strategy = await database_sync_to_async(follower)(leader, copy_pct=D(10))
    owner = await _open(strategy.user)
    stranger = await _open(other_user)
    await _subscribe(owner, "account")
    await _subscribe(stranger, "account")
    now_ms = int(time.time() * 1000)  # after the strategy started: it is copied
    await _ingest(leader, [fill("ETH", "buy", "4", "2500", start="0", time_ms=now_ms)])
    messages = await _until(owner, {"decision": 1, "order": 1})
    (decision,) = [m["data"] for m in messages if m["type"] == "decision"]
    assert (decision["strategy_id"], decision["outcome"]) == (str(strategy.pk), "placed")
    # equity 100,000 / leader 100,000 x 10 % of 4 ETH
    assert (decision["side"], D(decision["quantity"])) == ("buy", D("0.4"))
    assert decision["order_id"] in {m["data"]["id"] for m in messages if m["type"] == "order"}
    assert await stranger.receive_nothing(timeout=0.5)
    await owner.disconnect()
    await stranger.disconnect()


async def test_leaderboard_gets_new_scores_and_follower_counts(
    user: Any, leader: Any, follower: Any
) -> None:
    from copytrade.services import trader_scores_update

    socket = await _open(user)
    snapshot = await _subscribe(socket, "leaderboard")
    assert isinstance(snapshot["data"]["entries"], list)
    assert isinstance(snapshot["data"]["kpis_available"], bool)

    changed = await database_sync_to_async(trader_scores_update)(scores={leader.pk: D("87.5")})
    assert changed == 1
    (scores,) = await _until(socket, {"leaderboard": 1})
    assert scores["data"] == {"scores": {str(leader.pk): "87.50"}}

    # A customer starts copying the leader: its follower count goes to 1.
    await database_sync_to_async(follower)(leader)
    (followers,) = await _until(socket, {"leaderboard": 1})
    assert followers["data"] == {"followers": {str(leader.pk): 1}}
    assert followers["seq"] == scores["seq"] + 1
    # Nothing changed: nothing sent.
    assert await database_sync_to_async(trader_scores_update)(scores={leader.pk: D("87.5")}) == 0
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
