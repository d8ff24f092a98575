"""The websocket protocol over a real Redis channel layer: auth, snapshot, deltas, resume."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config import streams
from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _bearer(user: Any) -> list[tuple[bytes, bytes]]:
    from accounts.services import jwt_pair_issue

    _, tokens = jwt_pair_issue(user=user, method="siwe")
    token = tokens["access"]
    return [(b"authorization", f"Bearer {token}".encode())]


async def bearer(user: Any) -> list[tuple[bytes, bytes]]:
    return await _bearer(user)


async def connect(headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/v1/", headers=headers or [])
    return communicator


async def receive(communicator: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def subscribe(communicator: WebsocketCommunicator, stream: str, **extra: Any) -> dict:
    await communicator.send_to(text_data=json.dumps({"op": "subscribe", "stream": stream, **extra}))
    ack = await receive(communicator)
    assert ack == {"type": "subscribed", "stream": stream}
    return ack


async def test_unauthenticated_connection_is_closed_with_4401() -> None:
    communicator = await connect()
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


async def test_invalid_jwt_is_closed_with_4401() -> None:
    communicator = await connect([(b"authorization", b"Bearer not-a-token")])
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 4401)


async def test_token_of_a_signed_out_session_is_closed_with_4401(user: Any) -> None:
    from accounts.services import auth_sessions_revoke_all, jwt_pair_issue

    @database_sync_to_async
    def issue_then_sign_out() -> str:
        _, tokens = jwt_pair_issue(user=user, method="siwe")
        auth_sessions_revoke_all(user=user)
        return tokens["access"]

    token = await issue_then_sign_out()
    communicator = await connect([(b"authorization", f"Bearer {token}".encode())])
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 4401)


async def test_signing_out_everywhere_closes_open_sockets(user: Any, other_user: Any) -> None:
    from accounts.services import auth_sessions_revoke_all

    mine = await connect(await bearer(user))
    theirs = await connect(await bearer(other_user))
    assert (await mine.connect())[0]
    assert (await theirs.connect())[0]
    await subscribe(mine, "account")
    await receive(mine)  # snapshot

    await database_sync_to_async(auth_sessions_revoke_all)(user=user)
    notice = await receive(mine)
    assert (notice["type"], notice["code"]) == ("error", "access_revoked")
    closed = await mine.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4401}
    # Another user's socket is untouched and still answers.
    await theirs.send_to(text_data=json.dumps({"op": "ping"}))
    assert (await receive(theirs))["type"] == "pong"
    await theirs.disconnect()


async def test_foreign_origin_is_refused() -> None:
    communicator = await connect([(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_account_event_reaches_owner_only(user: Any, other_user: Any) -> None:
    owner = await connect(await bearer(user))
    stranger = await connect(await bearer(other_user))
    assert (await owner.connect())[0]
    assert (await stranger.connect())[0]
    await subscribe(owner, "account")
    await subscribe(stranger, "account")
    owner_snapshot = await receive(owner)
    assert owner_snapshot["type"] == "snapshot"
    assert owner_snapshot["stream"] == "account"
    await receive(stranger)  # the stranger's own snapshot

    event = await database_sync_to_async(streams.publish_account)(user.pk, "order", {"id": "o1"})
    got = await receive(owner)
    assert got == event
    assert got["seq"] > owner_snapshot["seq"]
    assert await stranger.receive_nothing(timeout=0.5)
    await owner.disconnect()
    await stranger.disconnect()


async def test_an_idle_socket_stays_subscribed_past_the_channel_layer_poll(user: Any) -> None:
    """Regression: with redis-py 8's 5 s default read timeout the channel layer's blocking pop
    raised after ~5 idle seconds and tore the consumer down."""
    socket = await connect(await bearer(user))
    assert (await socket.connect())[0]
    await subscribe(socket, "account")
    await receive(socket)  # snapshot
    assert await socket.receive_nothing(timeout=7, interval=0.5)
    event = await database_sync_to_async(streams.publish_account)(user.pk, "order", {"id": "o2"})
    assert await receive(socket) == event
    await socket.disconnect()


async def test_reconnect_with_last_seq_receives_exactly_the_missed_events(user: Any) -> None:
    first = await connect(await bearer(user))
    await first.connect()
    await subscribe(first, "account")
    snapshot = await receive(first)
    seen = await database_sync_to_async(streams.publish_account)(user.pk, "fill", {"n": 1})
    assert (await receive(first))["seq"] == seen["seq"]
    await first.disconnect()

    missed = [
        await database_sync_to_async(streams.publish_account)(user.pk, "fill", {"n": n})
        for n in (2, 3, 4)
    ]
    second = await connect(await bearer(user))
    await second.connect()
    await subscribe(second, "account", since=seen["seq"])
    replayed = [await receive(second) for _ in missed]
    assert replayed == missed
    assert await second.receive_nothing(timeout=0.5)
    assert snapshot["seq"] < seen["seq"]
    await second.disconnect()


async def test_gap_older_than_the_backlog_gets_a_fresh_snapshot(user: Any) -> None:
    for n in range(streams.BACKLOG_SIZE + 5):
        await database_sync_to_async(streams.publish_account)(user.pk, "tick", {"n": n})
    communicator = await connect(await bearer(user))
    await communicator.connect()
    await subscribe(communicator, "account", since=1)
    message = await receive(communicator)
    assert message["type"] == "snapshot"
    assert message["seq"] == await database_sync_to_async(streams.current_seq)(
        streams.account_stream(user.pk)
    )
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not json", "invalid_json"),
        ('["a list"]', "invalid_message"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": "subscribe", "stream": "nope.x"}', "unknown_stream"),
        ('{"op": "subscribe", "stream": 5}', "invalid_stream"),
        ('{"op": "subscribe", "stream": "account", "since": -3}', "invalid_since"),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_stays_open(
    user: Any, payload: str, code: str
) -> None:
    communicator = await connect(await bearer(user))
    await communicator.connect()
    await communicator.send_to(text_data=payload)
    error = await receive(communicator)
    assert (error["type"], error["code"]) == ("error", code)
    await communicator.send_to(text_data='{"op": "ping"}')
    assert (await receive(communicator))["type"] == "pong"
    await communicator.disconnect()


async def test_oversized_and_flooding_clients_are_throttled_then_closed(user: Any) -> None:
    communicator = await connect(await bearer(user))
    await communicator.connect()
    await communicator.send_to(text_data="x" * 10_000)
    assert (await receive(communicator))["code"] == "message_too_large"
    for _ in range(200):
        await communicator.send_to(text_data='{"op": "ping"}')
    codes = []
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            assert output["code"] in (4429, 1009)
            break
        codes.append(json.loads(output["text"]).get("code"))
    assert "rate_limited" in codes
    await communicator.wait()
