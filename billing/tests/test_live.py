"""Live fees over the real Redis channel layer and the real ``/ws/v1/`` consumer: a fee
committed in the database reaches its owner's ``account`` socket as a ``fee`` event and no one
else's; nothing is published before the commit; a client that reconnects with its last ``seq``
receives exactly the fee events it missed; the ``fees`` part of the account snapshot has today's
and the month's totals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from billing import services
from billing.models import FeeLedgerEntry
from config import streams

D = Decimal


# --------------------------------------------------------------------------- socket helpers


@database_sync_to_async
def _headers_for(user: Any) -> list[tuple[bytes, bytes]]:
    from accounts.services import jwt_pair_issue

    _, tokens = jwt_pair_issue(user=user, method="siwe")
    return [(b"authorization", f"Bearer {tokens['access']}".encode())]


async def _open(user: Any) -> WebsocketCommunicator:
    from config.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/v1/", headers=await _headers_for(user))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _subscribe(
    communicator: WebsocketCommunicator, since: int | None = None
) -> dict[str, Any] | None:
    """Subscribe to ``account``; the snapshot, or None when resuming from the backlog."""
    message: dict[str, Any] = {"op": "subscribe", "stream": "account"}
    if since is not None:
        message["since"] = since
    await communicator.send_to(text_data=json.dumps(message))
    assert json.loads(await communicator.receive_from())["type"] == "subscribed"
    if since is not None:
        return None
    snapshot: dict[str, Any] = json.loads(await communicator.receive_from())
    assert snapshot["type"] == "snapshot"
    return snapshot


async def _next_fee(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """The next ``fee`` message (other account events, if any, are skipped)."""
    while True:
        message: dict[str, Any] = json.loads(await communicator.receive_from(timeout=5))
        if message["type"] == "fee":
            return message


def _accrue(fill_ids: list[Any]) -> list[Any]:
    # Its own transaction: the fee event is published when this commits.
    return services.fill_fees_accrue(fill_ids=fill_ids).fee_ids


# --------------------------------------------------------------------------- real channel layer


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_committed_fee_reaches_the_owner_and_no_one_else(
    strategy: Any, copied_fill: Any, other_user: Any
) -> None:
    owner_fill = await database_sync_to_async(copied_fill)(strategy, size="2", price="1500.5")
    owner = await _open(strategy.user)
    stranger = await _open(other_user)
    snapshot = await _subscribe(owner)
    await _subscribe(stranger)
    assert snapshot is not None
    assert snapshot["data"]["fees"]["currencies"] == []

    fee_ids = await database_sync_to_async(_accrue)([owner_fill.pk])

    event = await _next_fee(owner)
    assert (event["stream"], event["seq"]) == ("account", snapshot["seq"] + 1)
    assert (event["data"]["count"], event["data"]["truncated"]) == (2, False)
    fees = {f["fee_category"]: f for f in event["data"]["fees"]}
    assert {f["id"] for f in fees.values()} == {str(i) for i in fee_ids}
    # Money travels as strings, never floats: 10 and 5 bps of 3,001.
    assert (fees["builder_fee"]["fee_amount"], fees["copy_fee"]["fee_amount"]) == (
        "3.001000",
        "1.500500",
    )
    assert fees["copy_fee"]["fill"] == str(owner_fill.pk)
    assert fees["copy_fee"]["strategy"] == str(strategy.pk)
    assert await stranger.receive_nothing(timeout=0.5)

    # A reversal is a fee event too, with the amount negated.
    copy_fee = await database_sync_to_async(
        lambda: FeeLedgerEntry.objects.get(fill=owner_fill, fee_category="copy_fee")
    )()
    staff = await database_sync_to_async(StaffFactory.create)()
    await database_sync_to_async(services.fee_reverse)(
        fee_id=copy_fee.pk, actor=staff, reason="goodwill"
    )
    reversal = await _next_fee(owner)
    assert reversal["seq"] == event["seq"] + 1
    assert [(f["kind"], f["fee_amount"]) for f in reversal["data"]["fees"]] == [
        ("reversal", "-1.500500")
    ]
    assert await stranger.receive_nothing(timeout=0.5)
    await owner.disconnect()
    await stranger.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_reconnect_with_the_last_seq_receives_exactly_the_missed_fees(
    strategy: Any, copied_fill: Any
) -> None:
    fills = [
        await database_sync_to_async(copied_fill)(strategy, price=price)
        for price in ("1000", "2000", "3000")
    ]
    socket = await _open(strategy.user)
    snapshot = await _subscribe(socket)
    assert snapshot is not None
    await database_sync_to_async(_accrue)([fills[0].pk])
    seen = await _next_fee(socket)
    await socket.disconnect()

    # Two more accruals while the client is away, each its own commit and event.
    await database_sync_to_async(_accrue)([fills[1].pk])
    await database_sync_to_async(_accrue)([fills[2].pk])

    socket = await _open(strategy.user)
    assert await _subscribe(socket, since=seen["seq"]) is None  # no snapshot: a resume
    missed = [await _next_fee(socket), await _next_fee(socket)]
    assert [m["seq"] for m in missed] == [seen["seq"] + 1, seen["seq"] + 2]
    notionals = [{f["fee_amount"] for f in m["data"]["fees"]} for m in missed]
    assert notionals == [{"2.000000", "1.000000"}, {"3.000000", "1.500000"}]
    assert await socket.receive_nothing(timeout=0.5)  # exactly those, nothing repeated
    await socket.disconnect()


@pytest.mark.django_db
def test_nothing_is_published_before_the_commit(
    strategy: Any, copied_fill: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The event is sequenced in Redis only by the on-commit callback: a rolled-back accrual
    leaves the stream untouched."""
    stream = streams.account_stream(strategy.user_id)
    fill = copied_fill(strategy, size="2", price="1500.5")
    before = streams.current_seq(stream)
    with django_capture_on_commit_callbacks(execute=False) as pending:
        services.fill_fees_accrue(fill_ids=[fill.pk])
    assert streams.current_seq(stream) == before
    for callback in pending:
        callback()
    assert streams.current_seq(stream) == before + 1
    [event] = streams.backlog_since(stream, before) or []
    assert (event["type"], event["data"]["count"]) == ("fee", 2)


@pytest.mark.django_db
def test_the_account_snapshot_has_todays_and_the_months_fees(
    strategy: Any, copied_fill: Any
) -> None:
    import billing.consumers  # noqa: F401 - registers the part (config.routing autodiscovers)

    now = timezone.now()
    services.fill_fees_accrue(fill_ids=[copied_fill(strategy, price="1000").pk], now=now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now - month_start > timedelta(days=1):
        services.fill_fees_accrue(
            fill_ids=[copied_fill(strategy, price="1000").pk], now=now - timedelta(days=1)
        )
        expected_month = D("3")
    else:
        expected_month = D("1.5")
    snapshot = streams.account_snapshot(strategy.user)
    assert snapshot["fees"]["currencies"] == [
        {
            "currency": "USDC",
            "today": "1.50000000",
            "month_to_date": f"{expected_month:.8f}",
            "count": 2 if expected_month == D("1.5") else 4,
        }
    ]
