"""The one websocket endpoint, ``/ws/v1/``: subscriptions to live streams (see config.streams).

Streams are registered by the apps (``<app>/consumers.py``) with an authorisation check and a
snapshot builder; this consumer only authenticates, throttles, joins groups and forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from config import streams

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_THROTTLED = 4429
CLOSE_TOO_LARGE = 1009
MAX_MESSAGE_BYTES = 4096
MAX_SUBSCRIPTIONS = 50
RATE_PER_SECOND = 10.0
RATE_BURST = 30.0
MAX_STRIKES = 5


@dataclass
class Subscription:
    stream: str
    internal: str
    spec: streams.StreamSpec
    last_seq: int = 0
    pending: dict[str, Any] = field(default_factory=dict)
    # Coalescing: the earliest monotonic time the next message may go out, and the task that
    # sends what is pending then.
    next_send_at: float = 0.0
    flusher: asyncio.Future[None] | None = None
    # Until the snapshot (or the backlog) has gone out, deltas wait here, so a client never
    # sees a delta before the snapshot it follows.
    ready: bool = False
    early: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)


def _step_eagerly(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run ``coroutine`` now, up to its first real suspension, and finish it in a task only if
    it does suspend. A broadcast to a thousand sockets then costs no task per socket (writes
    to a healthy socket never suspend), while a slow socket (its transport paused) waits in a
    task of its own instead of holding up everyone after it."""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return
    except Exception as exc:  # e.g. the socket closed under us: its disconnect cleans up
        logger.info("live delivery failed: %r", exc)
        return
    task = asyncio.ensure_future(_finish(coroutine, waiting))
    _SLOW_DELIVERIES.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_SLOW_DELIVERIES.discard)


_SLOW_DELIVERIES: set[asyncio.Future[None]] = set()


async def _finish(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
    while True:
        try:
            if waiting is None:  # a bare yield (asyncio.sleep(0)): give the loop a turn
                await asyncio.sleep(0)
                result = None
            else:
                result = await waiting
        except BaseException as exc:  # the awaited future failed: let the coroutine see it
            try:
                waiting = coroutine.throw(exc)
            except StopIteration:
                return
            except Exception as error:
                logger.info("live delivery failed: %r", error)
                return
            continue
        try:
            waiting = coroutine.send(result)
        except StopIteration:
            return
        except Exception as error:
            logger.info("live delivery failed: %r", error)
            return


class _Broadcast:
    """One channel-layer subscription per broadcast stream per process (event loop), fanned out
    in memory to this process's sockets. Through per-socket channels every event would be
    queued, decoded and dispatched once per socket; here it is received once."""

    def __init__(self, layer: Any, group: str) -> None:
        self.layer, self.group = layer, group
        self.members: dict[StreamConsumer, None] = {}  # insertion-ordered set
        self.channel = ""
        self.pump_task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def join(self, consumer: StreamConsumer) -> None:
        async with self.lock:
            self.members[consumer] = None
            if self.pump_task is None:
                self.channel = await self.layer.new_channel("live-broadcast.")
                await self.layer.group_add(self.group, self.channel)
                self.pump_task = asyncio.ensure_future(self.pump())

    async def leave(self, consumer: StreamConsumer) -> None:
        async with self.lock:
            self.members.pop(consumer, None)
            if not self.members and self.pump_task is not None:
                self.pump_task.cancel()
                self.pump_task = None
                await self.layer.group_discard(self.group, self.channel)

    async def pump(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            for consumer in list(self.members):
                _step_eagerly(consumer.stream_event(message))


_BROADCASTS: dict[tuple[int, str], _Broadcast] = {}


def _broadcast(layer: Any, group: str) -> _Broadcast:
    key = (id(asyncio.get_running_loop()), group)
    hub = _BROADCASTS.get(key)
    if hub is None:
        hub = _BROADCASTS[key] = _Broadcast(layer, group)
    return hub


class StreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        scopes = self.scope.get("auth_scopes")
        if scopes is not None and "read" not in scopes:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.subscriptions: dict[str, Subscription] = {}
        self.tokens = RATE_BURST
        self.refilled = time.monotonic()
        self.strikes = 0
        await self.accept()
        await self.channel_layer.group_add(streams.control_group(user.pk), self.channel_name)

    async def disconnect(self, code: int) -> None:
        for sub in list(getattr(self, "subscriptions", {}).values()):
            await self._leave(sub)
        if getattr(self, "user", None) is not None:
            await self.channel_layer.group_discard(
                streams.control_group(self.user.pk), self.channel_name
            )

    async def access_revoked(self, message: dict[str, Any]) -> None:
        """The user signed out everywhere, or was suspended: this socket's credentials are no
        longer good, so it ends now rather than at the next reconnect."""
        await self.send_json({"type": "error", "code": "access_revoked", "message": "signed out"})
        await self.close(code=CLOSE_UNAUTHENTICATED)

    # ------------------------------------------------------------------ client -> server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode()) > MAX_MESSAGE_BYTES:
            await self.error(
                "message_too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes"
            )
            await self.strike(CLOSE_TOO_LARGE)
            return
        if not self.take_token():
            await self.error("rate_limited", f"at most {RATE_PER_SECOND:g} messages a second")
            await self.strike(CLOSE_THROTTLED)
            return
        try:
            message = json.loads(raw)
        except ValueError:
            await self.error("invalid_json", "the message is not valid JSON")
            return
        if not isinstance(message, dict):
            await self.error("invalid_message", "a message is a JSON object with an 'op'")
            return
        op = message.get("op")
        stream = message.get("stream")
        if op == "ping":
            await self.send_json({"type": "pong", "ts": int(time.time() * 1000)})
        elif op in ("subscribe", "unsubscribe"):
            if not isinstance(stream, str):
                await self.error("invalid_stream", "'stream' must be a string", stream=stream)
            elif op == "subscribe":
                await self.subscribe(stream, message.get("since"))
            else:
                await self.unsubscribe(stream)
        else:
            await self.error("unknown_op", "op must be subscribe, unsubscribe or ping")

    def take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.refilled) * RATE_PER_SECOND)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def strike(self, close_code: int) -> None:
        self.strikes += 1
        if self.strikes >= MAX_STRIKES:
            await self.close(code=close_code)

    async def subscribe(self, stream: str, since: Any) -> None:
        spec = streams.spec_for(stream)
        if spec is None:
            await self.error("unknown_stream", f"there is no stream {stream!r}", stream=stream)
            return
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            await self.error(
                "invalid_since", "'since' must be a non-negative integer", stream=stream
            )
            return
        if stream in self.subscriptions:
            await self.send_json({"type": "subscribed", "stream": stream})
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self.error(
                "too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} streams", stream=stream
            )
            return
        if not await spec.authorize(self.user, stream):
            await self.error("forbidden", f"you may not subscribe to {stream!r}", stream=stream)
            return
        internal = streams.account_stream(self.user.pk) if spec.per_user else stream
        sub = Subscription(stream=stream, internal=internal, spec=spec)
        # Join the group first: deltas published from now on queue up behind this handler, and
        # those already covered by the snapshot or backlog are dropped by their seq.
        self.subscriptions[stream] = sub
        await self._join(sub)
        await self.send_json({"type": "subscribed", "stream": stream})
        try:
            if since is not None:
                missed = await database_sync_to_async(streams.backlog_since)(internal, since)
                if missed is not None:
                    sub.last_seq = since
                    for event in missed:
                        await self.deliver(sub, event)
                    return
            seq = await database_sync_to_async(streams.current_seq)(internal)
            data = await spec.snapshot(self.user, stream)
            sub.last_seq = seq
            await self.send_json(
                {
                    "stream": stream,
                    "type": "snapshot",
                    "seq": seq,
                    "ts": int(time.time() * 1000),
                    "data": data,
                }
            )
        finally:
            sub.ready = True
            early, sub.early = sub.early, []
            for event, text in early:  # anything the snapshot already covers is dropped by seq
                await self.deliver(sub, event, text)

    async def unsubscribe(self, stream: str) -> None:
        sub = self.subscriptions.pop(stream, None)
        if sub is not None:
            await self._leave(sub)
        await self.send_json({"type": "unsubscribed", "stream": stream})

    async def _join(self, sub: Subscription) -> None:
        group = streams.group_name(sub.internal)
        if sub.spec.per_user:
            await self.channel_layer.group_add(group, self.channel_name)
        else:
            await _broadcast(self.channel_layer, group).join(self)

    async def _leave(self, sub: Subscription) -> None:
        group = streams.group_name(sub.internal)
        if sub.spec.per_user:
            await self.channel_layer.group_discard(group, self.channel_name)
        else:
            await _broadcast(self.channel_layer, group).leave(self)
        if sub.flusher is not None:
            sub.flusher.cancel()

    # ------------------------------------------------------------------ server -> client

    async def stream_event(self, message: dict[str, Any]) -> None:
        # A broadcast carries the serialised event plus the few fields routing needs; the
        # body is parsed only where it must be merged (trade batches), so fanning one event
        # out to a thousand sockets costs one encoding and no decoding.
        event = message.get("event")
        if event is None:
            event = {"stream": message["stream"], "seq": message["seq"], "type": message["kind"]}
        sub = self.subscriptions.get(event["stream"])
        if sub is None:
            return
        if not sub.ready:
            sub.early.append((event, message.get("text")))
            return
        await self.deliver(sub, event, message.get("text"))

    async def deliver(
        self, sub: Subscription, event: dict[str, Any], text: str | None = None
    ) -> None:
        """``text`` is the event already serialised by the publisher; ``event`` may then hold
        only its stream, seq and type."""
        if event["seq"] <= sub.last_seq:
            return
        if sub.spec.coalesce_seconds <= 0:
            sub.last_seq = event["seq"]
            await self.send_event(event, text)
            return
        # Latest state per event type wins; trades accumulate so none is dropped.
        if event["type"] == "trade":
            if "data" not in event:
                event = json.loads(text or "{}")
            batch, _ = sub.pending.setdefault(
                "trades", ({**event, "type": "trades", "data": []}, None)
            )
            batch["data"].append(event["data"])
            batch["seq"], batch["ts"] = event["seq"], event["ts"]
        else:
            sub.pending[event["type"]] = (event, text)
        sub.last_seq = event["seq"]
        # Leading edge: a quiet stream's update goes out at once (no added latency); within a
        # window after a send, updates wait and go out together at the window's end, so a busy
        # market costs a client at most one burst per window.
        if sub.flusher is not None and not sub.flusher.done():
            return
        delay = sub.next_send_at - asyncio.get_running_loop().time()
        if delay <= 0:
            await self.flush(sub)
        else:
            sub.flusher = asyncio.ensure_future(self.flush_later(sub, delay))

    async def flush_later(self, sub: Subscription, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush(sub)

    async def flush(self, sub: Subscription) -> None:
        sub.next_send_at = asyncio.get_running_loop().time() + sub.spec.coalesce_seconds
        pending, sub.pending = sub.pending, {}
        for event, text in sorted(pending.values(), key=lambda item: item[0]["seq"]):
            with contextlib.suppress(Exception):
                await self.send_event(event, text)

    async def send_event(self, event: dict[str, Any], text: str | None) -> None:
        await self.send(
            text_data=text if text is not None else json.dumps(event, cls=streams.StreamEncoder)
        )

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, cls=streams.StreamEncoder))

    async def error(self, code: str, message: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})


async def _authorize_account(user: Any, stream: str) -> bool:
    return stream == "account"


async def _account_snapshot(user: Any, stream: str) -> Any:
    return await database_sync_to_async(streams.account_snapshot)(user)


streams.register(
    streams.StreamSpec(
        prefix="account", authorize=_authorize_account, snapshot=_account_snapshot, per_user=True
    )
)
