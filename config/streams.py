"""Live streams: publishing with per-stream sequence numbers and a bounded backlog for resume.

The protocol (documented for mobile clients in ``docs/websocket.md`` and the API docs):

* one websocket endpoint, ``/ws/v1/``; the client sends ``{"op": "subscribe", "stream": S}``
  (optionally ``"since": <last seq it saw>``), ``{"op": "unsubscribe", "stream": S}`` or
  ``{"op": "ping"}``;
* every server message is ``{"stream", "type", "seq", "ts", "data"}``. On subscribe the server
  sends ``type: "snapshot"`` (``seq`` = the stream's sequence when it was taken), then deltas
  with increasing ``seq``. A client that reconnects with ``since`` receives exactly the deltas
  it missed from the backlog, or a fresh snapshot when they are no longer there.

Publishing happens in services, on commit, through :func:`publish_on_commit` (never from views).
A Lua script assigns the sequence number and appends to the backlog atomically, then the event
goes to the stream's channel-layer group. Because the sequence is taken *after* the database
commit, anything a snapshot read could have missed carries a higher sequence than the snapshot
and is delivered after it: no message is lost between snapshot and deltas (a delta may repeat
what the snapshot already showed; deltas carry whole objects keyed by id, so applying one twice
is harmless).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django_redis import get_redis_connection

BACKLOG_SIZE = 500
BACKLOG_TTL_SECONDS = 3600
STREAM_NAME = re.compile(
    r"^(account|leaderboard|market\.[A-Za-z0-9_:-]{1,32}|trader\.[0-9a-f-]{36})$"
)

# KEYS[1] = sequence counter, KEYS[2] = backlog list; ARGV = payload template, size, ttl, ts.
_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
local message = string.gsub(ARGV[1], '"seq": 0', '"seq": ' .. seq, 1)
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) * 24)
return {seq, message}
"""


class StreamEncoder(DjangoJSONEncoder):
    """Decimals go out as strings: a client must never see a rounded float of money."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o)
        return super().default(o)


def group_name(stream: str) -> str:
    # Channels group names allow [A-Za-z0-9._-] only, under 100 characters.
    return "live." + re.sub(r"[^A-Za-z0-9._-]", "_", stream)


def _keys(stream: str) -> tuple[str, str]:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "tandem")
    return f"{prefix}:live:seq:{stream}", f"{prefix}:live:backlog:{stream}"


def _redis() -> Any:
    return get_redis_connection("default")


def _publish(internal: str, public: str, event_type: str, data: Any) -> dict[str, Any]:
    template = json.dumps(
        {
            "stream": public,
            "type": event_type,
            "seq": 0,
            "ts": int(time.time() * 1000),
            "data": data,
        },
        cls=StreamEncoder,
    )
    seq_key, backlog_key = _keys(internal)
    _, message = _redis().eval(
        _PUBLISH_LUA, 2, seq_key, backlog_key, template, BACKLOG_SIZE, BACKLOG_TTL_SECONDS
    )
    if isinstance(message, bytes):
        message = message.decode()
    event: dict[str, Any] = json.loads(message)
    layer = get_channel_layer()
    if layer is not None:
        run_in_send_loop(
            layer.group_send(
                group_name(internal),
                {
                    "type": "stream.event",
                    "stream": public,
                    "seq": event["seq"],
                    "kind": event_type,
                    "text": message,
                },
            )
        )
    return event


SEND_TIMEOUT_SECONDS = 10.0
_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def _send_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for channel-layer sends from synchronous code, started on first
    use. It lives as long as the process, so the layer keeps one Redis connection for it
    (channels_redis pools per loop) rather than one per call, and it works from threads that
    already run a loop of their own, where ``async_to_sync`` refuses. A forked child (Celery
    prefork) starts its own: threads do not survive a fork."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="streams-publish", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def run_in_send_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, _send_loop()).result(SEND_TIMEOUT_SECONDS)


def publish(stream: str, event_type: str, data: Any) -> dict[str, Any]:
    """Sequence, store and broadcast one event now. Prefer :func:`publish_on_commit`."""
    if not STREAM_NAME.match(stream) or stream == "account":
        raise ValueError(f"invalid stream name {stream!r} (use publish_account for accounts)")
    return _publish(stream, stream, event_type, data)


def publish_on_commit(stream: str, event_type: str, data: Any) -> None:
    """Publish once the surrounding transaction commits (immediately outside of one)."""
    transaction.on_commit(lambda: publish(stream, event_type, data))


def current_seq(stream: str) -> int:
    value = _redis().get(_keys(stream)[0])
    return int(value) if value else 0


def backlog_since(stream: str, since: int) -> list[dict[str, Any]] | None:
    """Events with seq > ``since``, oldest first; None when some of them are already gone."""
    raw = _redis().lrange(_keys(stream)[1], 0, -1)
    events = [json.loads(item) for item in raw]
    current = current_seq(stream)
    if since >= current:
        return []
    if not events or events[0]["seq"] > since + 1:
        return None
    return [event for event in events if event["seq"] > since]


# --------------------------------------------------------------------------- stream registry

SnapshotFn = Callable[[Any, str], Awaitable[Any]]
AuthorizeFn = Callable[[Any, str], Awaitable[bool]]


@dataclass(frozen=True)
class StreamSpec:
    """How to authorise a subscription and build its snapshot; apps register these."""

    prefix: str
    authorize: AuthorizeFn
    snapshot: SnapshotFn
    # Market data is "latest state": many updates a second coalesce to a few per client.
    coalesce_seconds: float = 0.0
    # ``account`` is per user: the group a subscriber joins is derived from the user.
    per_user: bool = False


_REGISTRY: dict[str, StreamSpec] = {}


def register(spec: StreamSpec) -> None:
    _REGISTRY[spec.prefix] = spec


def spec_for(stream: str) -> StreamSpec | None:
    if not STREAM_NAME.match(stream):
        return None
    return _REGISTRY.get(stream.split(".", 1)[0])


def account_stream(user_id: Any) -> str:
    """The internal stream name of one user's account events (clients subscribe to "account")."""
    return f"account.{user_id}"


def publish_account_on_commit(user_id: Any, event_type: str, data: Any) -> None:
    transaction.on_commit(lambda: publish_account(user_id, event_type, data))


def publish_account(user_id: Any, event_type: str, data: Any) -> dict[str, Any]:
    """One user's account event; only that user's sockets receive it."""
    return _publish(account_stream(user_id), "account", event_type, data)


# --------------------------------------------------------------------------- access revoked


def control_group(user_id: Any) -> str:
    """Every socket of a user joins this group, whatever it subscribed to."""
    return f"live-control.{user_id}"


def access_revoked_on_commit(user_id: Any) -> None:
    """Close every open socket of ``user_id`` once the surrounding transaction commits: signing
    out everywhere, a suspension or a closed account must end live streams too, not only the
    next reconnect. Callbacks registered earlier in the transaction (a strategy paused by the
    suspension) are sent first, so the client sees them before the close."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            run_in_send_loop(layer.group_send(control_group(user_id), {"type": "access.revoked"}))

    transaction.on_commit(send)


# --------------------------------------------------------------------------- account snapshot

AccountPart = Callable[[Any], Any]
_ACCOUNT_PARTS: dict[str, AccountPart] = {}


def register_account_part(name: str, build: AccountPart) -> None:
    """Apps contribute a section of the ``account`` snapshot (orders, positions, strategies…).

    ``build(user)`` runs in a worker thread and must return JSON-serialisable data, built through
    the app's selectors (scoped to that user).
    """
    _ACCOUNT_PARTS[name] = build


def account_snapshot(user: Any) -> dict[str, Any]:
    return {name: build(user) for name, build in sorted(_ACCOUNT_PARTS.items())}


def autodiscover() -> None:
    """Import every installed app's ``consumers`` module so its streams are registered."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("consumers")
