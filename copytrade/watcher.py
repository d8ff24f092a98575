"""Where leader fills come from: Hyperliquid's ``userFills`` websocket for a handful of traders
per connection, and polling with time windows (``userFillsByTime``) for everyone else and for
catch-up after a restart. Both end in ``copytrade.services.trader_fills_ingest``.

* :func:`user_fills_message` is the websocket message handler as a pure function: a raw
  message in, ``(address, fills, is_snapshot)`` out (or None for anything else). It is tested
  with the recorded shapes; only the socket around it is not testable offline.
* :class:`FillWatcher` holds one websocket (hyperliquid-python-sdk's ``WebsocketManager``) with
  up to ``COPY_WS_TRADERS_PER_CONNECTION`` (10) ``userFills`` subscriptions, and hands each
  message to the handler and the ingestion service. The subscription's first message is a
  snapshot of recent fills: ingesting it is harmless (stored fills are dropped; old ones are
  decided ``stale_signal``, not copied).
* :func:`fills_poll` pages ``userFillsByTime`` from the trader's cursor: the venue answers at
  most 2,000 fills a call, oldest first, so a full page means "more": the next call starts at
  the newest millisecond of the page (again -- fills sharing it may have been cut; the fill id
  drops repeats).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from trading.exchanges import RateLimited, VenueError, VenueUnavailable

logger = logging.getLogger(__name__)
PAGE_LIMIT = 2000  # userFillsByTime answers at most this many fills a call


def user_fills_message(message: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]], bool] | None:
    """``{"channel": "userFills", "data": {"user", "fills": [...], "isSnapshot"?}}`` ->
    (lower-case address, fills, is_snapshot); None for other channels, pongs, subscription
    acknowledgements and malformed data."""
    if message.get("channel") != "userFills":
        return None
    data = message.get("data")
    if not isinstance(data, Mapping):
        return None
    user = data.get("user")
    fills = data.get("fills")
    if not isinstance(user, str) or not isinstance(fills, list):
        return None
    records = [dict(f) for f in fills if isinstance(f, Mapping)]
    return user.lower(), records, bool(data.get("isSnapshot", False))


# --------------------------------------------------------------------------- polling


class InfoClient:
    """The few ``/info`` reads the copy engine needs, through the SDK's Info (errors mapped to
    trading's venue error classes by the Hyperliquid adapter)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        from trading.exchanges.hyperliquid import HyperliquidAdapter

        self.adapter = HyperliquidAdapter(base_url=base_url, timeout=timeout)

    def _call(self, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except VenueError:
            raise
        except requests.RequestException as exc:
            raise VenueUnavailable(f"cannot reach the venue: {exc}") from exc

    def user_fills_by_time(self, address: str, start_ms: int, end_ms: int | None) -> list[Any]:
        answer = self._call(lambda: self.adapter.info.user_fills_by_time(address, start_ms, end_ms))
        return list(answer or [])

    def user_state(self, address: str) -> dict[str, Any]:
        return dict(self._call(lambda: self.adapter.info.user_state(address)) or {})

    def portfolio(self, address: str) -> list[Any]:
        return list(self._call(lambda: self.adapter.info.portfolio(address)) or [])

    def close(self) -> None:
        self.adapter.close()


@dataclass
class PollResult:
    pages: int = 0
    fills: int = 0
    new: int = 0
    error: str = ""


def fills_poll(
    *,
    address: str,
    start_ms: int,
    end_ms: int,
    client: InfoClient,
    ingest: Callable[[list[dict[str, Any]]], int],
    max_pages: int = 50,
) -> PollResult:
    """Page through ``[start_ms, end_ms]`` (module docstring); ``ingest`` takes each page and
    returns how many fills were new."""
    result = PollResult()
    start = start_ms
    while result.pages < max_pages:
        try:
            page = client.user_fills_by_time(address, start, end_ms)
        except RateLimited as exc:
            result.error = f"rate limited: {exc}"
            break
        except VenueError as exc:
            result.error = str(exc)
            break
        result.pages += 1
        result.fills += len(page)
        if page:
            result.new += ingest(page)
        if len(page) < PAGE_LIMIT:
            break
        newest = max(int(f["time"]) for f in page)
        # A full page all in one millisecond cannot be paged by time: move past it (and say so).
        if newest <= start:
            result.error = (
                f"{len(page)} fills in one millisecond ({start}): the venue's page cannot hold "
                "them all; the rest of that millisecond was not fetched"
            )
            logger.warning("%s: %s", address, result.error)
            newest = start + 1
        start = newest
    return result


# --------------------------------------------------------------------------- websocket


class FillWatcher:
    """One websocket, up to 10 ``userFills`` subscriptions (module docstring)."""

    def __init__(
        self,
        *,
        base_url: str,
        addresses: Sequence[str],
        on_fills: Callable[[str, list[dict[str, Any]], bool], None],
    ) -> None:
        if len(addresses) > 10:
            raise ValueError("the venue allows 10 user subscriptions per connection")
        self.base_url = base_url
        self.addresses = [a.lower() for a in addresses]
        self.on_fills = on_fills
        self.manager: Any = None
        self._lock = threading.Lock()

    def handle(self, message: Mapping[str, Any]) -> bool:
        """The websocket callback: parse, then ingest. True when fills were handed on."""
        parsed = user_fills_message(message)
        if parsed is None:
            return False
        address, fills, snapshot = parsed
        if address not in self.addresses or not fills:
            return False
        with self._lock:  # one message at a time per connection
            try:
                self.on_fills(address, fills, snapshot)
            except Exception:  # the socket must outlive one bad message
                logger.exception("ingesting %d fills of %s failed", len(fills), address)
                return False
        return True

    def start(self) -> None:  # pragma: no cover - needs the live venue
        from hyperliquid.websocket_manager import WebsocketManager

        self.manager = WebsocketManager(self.base_url)
        self.manager.start()
        for address in self.addresses:
            self.manager.subscribe({"type": "userFills", "user": address}, self.handle)

    def stop(self) -> None:  # pragma: no cover - needs the live venue
        if self.manager is not None:
            self.manager.stop()
