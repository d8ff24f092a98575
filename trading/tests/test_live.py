"""Live updates from trading over a real Redis channel layer: a committed fill reaches its owner's
socket and nobody else's; market ticks reach market subscribers as coalesced updates."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def live_listeners(settings: Any, trading_namespace: str) -> None:
    settings.TANDEM = {
        **settings.TANDEM,
        "FILL_LISTENERS": ["trading.live.fills_published"],
        "TICK_LISTENERS": ["trading.live.ticks_published"],
    }


@database_sync_to_async
def headers_for(user: Any) -> list[tuple[bytes, bytes]]:
    from accounts.services import jwt_pair_issue

    _, tokens = jwt_pair_issue(user=user, method="siwe")
    token = tokens["access"]
    return [(b"authorization", f"Bearer {token}".encode())]


async def open_socket(user: Any) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/v1/", headers=await headers_for(user))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def subscribe(communicator: WebsocketCommunicator, stream: str) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps({"op": "subscribe", "stream": stream}))
    assert json.loads(await communicator.receive_from())["type"] == "subscribed"
    snapshot = json.loads(await communicator.receive_from())
    assert snapshot["type"] == "snapshot"
    return snapshot


async def drain(communicator: WebsocketCommunicator, until: set[str]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while until - {m["type"] for m in seen}:
        seen.append(json.loads(await communicator.receive_from(timeout=5)))
    return seen


async def test_fill_reaches_the_owner_and_no_one_else(
    live_listeners: None, trader: Any, other_user: Any, paper_symbols: Any, market: Any
) -> None:
    from trading.services import order_create

    owner = await open_socket(trader)
    stranger = await open_socket(other_user)
    await subscribe(owner, "account")
    await subscribe(stranger, "account")

    result = await database_sync_to_async(order_create)(
        user=trader, symbol="ETH", side="buy", quantity=Decimal("0.5")
    )
    messages = await drain(owner, {"order", "fill", "position"})
    fills = [m for m in messages if m["type"] == "fill"]
    assert fills
    assert all(m["stream"] == "account" for m in messages)
    assert {f["data"]["order"] for f in fills} == {str(result.order.pk)}
    position = [m for m in messages if m["type"] == "position"][-1]["data"]
    assert position["symbol"] == "ETH"
    assert Decimal(position["quantity"]) == Decimal("0.5")
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert await stranger.receive_nothing(timeout=0.5)
    await owner.disconnect()
    await stranger.disconnect()


async def test_market_stream_gets_ticker_and_candle(
    live_listeners: None, trader: Any, paper_symbols: Any, publish: Any
) -> None:
    socket = await open_socket(trader)
    await publish_async(publish, "BTC", "50000")
    snapshot = await subscribe(socket, "market.BTC")
    assert Decimal(snapshot["data"]["ticker"]["price"]) == Decimal("50000")
    for price in ("50010", "50020", "49990"):
        await publish_async(publish, "BTC", price)
    updates = await drain(socket, {"ticker", "candle"})
    candle = [m for m in updates if m["type"] == "candle"][-1]["data"]
    assert Decimal(candle["h"]) >= Decimal("50020")
    assert Decimal(candle["l"]) <= Decimal("49990")
    tickers = [m for m in updates if m["type"] == "ticker"]
    # Leading edge: the first tick after a quiet spell goes out at once, not held for a window.
    assert Decimal(tickers[0]["data"]["price"]) == Decimal("50010")
    # Coalesced: three ticks did not become three messages of each type.
    assert len(tickers) < 3
    await socket.disconnect()


async def test_unknown_symbol_is_refused(
    live_listeners: None, trader: Any, paper_symbols: Any
) -> None:
    socket = await open_socket(trader)
    await socket.send_to(text_data=json.dumps({"op": "subscribe", "stream": "market.NOPE"}))
    error = json.loads(await socket.receive_from())
    assert (error["type"], error["code"]) == ("error", "forbidden")
    await socket.disconnect()


async def publish_async(publish: Any, symbol: str, price: str) -> None:
    await database_sync_to_async(publish)(symbol, price)
