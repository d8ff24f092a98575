"""Where leader fills come from: the websocket message handler (a pure function, tested with
recorded shapes), polling with time windows against a local fake HTTP server serving recorded
answers (paged the way the venue caps them), catch-up from the cursor, and the parser's two
shapes (2023's without ``tid``, today's with ``tid``/``feeToken``/``builderFee``/``cloid``/
``liquidation``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from copytrade import watcher
from copytrade.models import TraderEvent, TraderFillCursor
from copytrade.services import parse_user_fills, trader_fills_ingest, trader_fills_poll
from copytrade.tests.factories import TraderFactory
from copytrade.watcher import FillWatcher, InfoClient, user_fills_message
from trading.tests.fakevenue import Reply, fake_venue

D = Decimal
DATA = Path(__file__).parent / "data"


def recorded(shared_data: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((shared_data / "hyperliquid" / name).read_text())


def synthetic() -> list[dict[str, Any]]:
    return json.loads((DATA / "user_fills_small.json").read_text())


# --------------------------------------------------------------------------- parsing


class TestParser:
    def test_the_2023_shape_and_today_s_shape_both_parse(self) -> None:
        old = synthetic()[0]
        modern = {
            **old,
            "tid": 118_906_512_037_719,
            "feeToken": "USDC",
            "builderFee": "0.01",
            "cloid": "0x" + "1" * 32,
            "liquidation": {
                "liquidatedUser": "0x" + "2" * 40,
                "markPx": "1910",
                "method": "market",
            },
        }
        (a, _), (b, _) = parse_user_fills([old, modern])
        assert a.venue_fill_id.startswith("d:")  # no tid: the digest of (hash, oid, px, sz, time)
        assert b.venue_fill_id == "118906512037719"
        assert (b.fee_token, b.builder_fee, b.cloid, b.is_liquidation) == (
            "USDC",
            D("0.01"),
            "0x" + "1" * 32,
            True,
        )

    def test_the_place_within_a_millisecond_is_kept(self) -> None:
        t = 1_700_000_000_000
        fills = [
            {"coin": "ETH", "px": "1", "sz": "1", "side": "B", "time": t, "startPosition": "0",
             "hash": f"0x{i}", "oid": i, "closedPnl": "0", "fee": "0", "crossed": True}
            for i in range(3)
        ]  # fmt: skip
        assert [seq for _, seq in parse_user_fills(fills)] == [0, 1, 2]

    @pytest.mark.django_db
    def test_a_record_without_the_fields_of_a_fill_is_refused_whole(self) -> None:
        from config.errors import ValidationFailed

        trader = TraderFactory.create()
        with pytest.raises(ValidationFailed):
            trader_fills_ingest(trader=trader, fills=[synthetic()[0], {"coin": "ETH"}])
        assert not TraderEvent.objects.exists()


# --------------------------------------------------------------------------- websocket


class TestWebsocketHandler:
    def test_recorded_fills_in_a_user_fills_message(self, shared_data: Path) -> None:
        fills = recorded(shared_data, "user_fills.json")
        user = "0xB7b6f3cEA3F66BF525F5d8f965F6dbF6d9B017b2"
        message = {
            "channel": "userFills",
            "data": {"user": user, "isSnapshot": True, "fills": fills},
        }
        address, parsed, snapshot = user_fills_message(message)  # type: ignore[misc]
        assert address == user.lower()
        assert snapshot is True
        assert parsed == fills

    @pytest.mark.parametrize(
        "message",
        [
            {"channel": "pong"},
            {"channel": "subscriptionResponse", "data": {"method": "subscribe"}},
            {"channel": "trades", "data": [{"coin": "BTC"}]},
            {"channel": "userFills", "data": {"fills": []}},  # no user
            {"channel": "userFills", "data": "garbage"},
        ],
    )
    def test_anything_else_is_ignored(self, message: dict[str, Any]) -> None:
        assert user_fills_message(message) is None

    def test_the_watcher_hands_on_only_its_traders_fills(self) -> None:
        received: list[tuple[str, int, bool]] = []
        mine = "0x" + "a" * 40
        watch = FillWatcher(
            base_url="http://unused",
            addresses=[mine.upper().replace("0X", "0x")],
            on_fills=lambda a, f, s: received.append((a, len(f), s)),
        )
        fills = synthetic()[:3]
        assert watch.handle({"channel": "userFills", "data": {"user": mine, "fills": fills}})
        assert not watch.handle(
            {"channel": "userFills", "data": {"user": "0x" + "b" * 40, "fills": fills}}
        )
        assert received == [(mine, 3, False)]

    def test_a_failing_ingestion_does_not_kill_the_socket(self) -> None:
        def broken(*_: Any) -> None:
            raise RuntimeError("database down")

        watch = FillWatcher(base_url="http://x", addresses=["0x" + "a" * 40], on_fills=broken)
        message = {"channel": "userFills", "data": {"user": "0x" + "a" * 40, "fills": synthetic()}}
        assert watch.handle(message) is False

    def test_at_most_ten_traders_per_connection(self) -> None:
        with pytest.raises(ValueError, match="10 user subscriptions"):
            FillWatcher(base_url="http://x", addresses=[f"0x{i:040x}" for i in range(11)],
                        on_fills=lambda *a: None)  # fmt: skip


# --------------------------------------------------------------------------- polling


def _serving(fills: list[dict[str, Any]], page: int) -> Callable[..., Reply]:
    """userFillsByTime over ``fills``: oldest first within [startTime, endTime], at most
    ``page`` fills an answer (the venue's cap, scaled down)."""
    ordered = sorted(fills, key=lambda f: int(f["time"]))  # stable: keeps the ms order

    def respond(method: str, path: str, query: Any, body: Any) -> Reply:
        assert path == "/info"
        assert body["type"] == "userFillsByTime"
        start, end = int(body["startTime"]), body.get("endTime")
        window = [
            f for f in ordered if int(f["time"]) >= start and (end is None or int(f["time"]) <= end)
        ]
        return Reply(body=window[:page])

    return respond


@pytest.mark.django_db
class TestPolling:
    def _poll(self, fills: list[dict[str, Any]], monkeypatch: Any, page: int) -> Any:
        monkeypatch.setattr(watcher, "PAGE_LIMIT", page)
        trader = TraderFactory.create(exchange="hyperliquid")
        start = min(int(f["time"]) for f in fills)
        end = max(int(f["time"]) for f in fills)
        TraderFillCursor.objects.create(trader=trader, last_fill_time_ms=start)
        with fake_venue(_serving(fills, page)) as venue:
            client = InfoClient(venue.url)
            first = trader_fills_poll(trader=trader, client=client, now_ms=end + 1)
            again = trader_fills_poll(trader=trader, client=client, now_ms=end + 1)
            requests = venue.requests_to("/info")
        return trader, first, again, requests

    def test_recorded_fills_are_paged_by_advancing_the_start_time(
        self, shared_data: Path, monkeypatch: Any
    ) -> None:
        fills = recorded(shared_data, "user_fills_by_time.json")
        trader, first, again, requests = self._poll(fills, monkeypatch, page=120)
        assert first.pages >= 5  # 500 fills, 120 a page, pages overlap on their last ms
        assert first.new == 500
        assert TraderEvent.objects.filter(trader=trader).count() == 500
        cursor = TraderFillCursor.objects.get(trader=trader)
        assert cursor.last_fill_time_ms == max(int(f["time"]) for f in fills)
        assert cursor.last_polled_at is not None
        # a restart resumes from the cursor: only the newest millisecond again, nothing new
        assert (again.new, again.pages) == (0, 1)
        starts = [r.body["startTime"] for r in requests]
        assert starts == sorted(starts)

    def test_synthetic_fills_paged_four_at_a_time(self, monkeypatch: Any) -> None:
        fills = synthetic()  # at most three fills share a millisecond
        trader, first, again, _ = self._poll(fills, monkeypatch, page=4)
        assert first.pages > 5
        assert first.new == len(fills)
        assert again.new == 0
        assert TraderEvent.objects.filter(trader=trader).count() == len(fills)

    def test_a_venue_error_is_recorded_on_the_cursor(self, monkeypatch: Any) -> None:
        trader = TraderFactory.create(exchange="hyperliquid")
        with fake_venue(lambda *a: Reply(body={"error": "busy"}, status=500)) as venue:
            result = trader_fills_poll(trader=trader, client=InfoClient(venue.url), now_ms=10**13)
        assert result.error
        assert TraderFillCursor.objects.get(trader=trader).last_error
