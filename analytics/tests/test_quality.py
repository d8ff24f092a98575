"""Data-quality checks (analytics.quality) on hand-made batches: no ClickHouse needed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batches import FACTOR, TickBatch
from analytics.quality import MarketState, QualityConfig, Reason, evaluate

NOW = 1_800_000_000 * 1_000_000_000  # epoch ns
SECOND = 1_000_000_000
CONFIG = QualityConfig(
    max_future_skew_seconds=5,
    max_age_seconds=300,
    max_price_deviation=0.10,
    zscore_threshold=8,
    zscore_min_observations=30,
    zscore_half_life=500,
    reference_max_age_seconds=300,
)


def batch(
    prices: list[float],
    *,
    symbol: str = "BTC",
    start_seq: int = 1,
    times: list[int] | None = None,
    seqs: list[int] | None = None,
) -> TickBatch:
    n = len(prices)
    return TickBatch.from_arrays(
        timestamp=np.array(
            times if times is not None else [NOW - (n - i) * SECOND for i in range(n)],
            dtype=np.int64,
        ),
        symbol=[symbol] * n,
        exchange=["paper"] * n,
        sequence_number=np.array(
            seqs if seqs is not None else range(start_seq, start_seq + n), dtype=np.uint64
        ),
        price=np.round(np.array(prices) * FACTOR).astype(np.int64),
        volume=np.full(n, FACTOR, dtype=np.int64),
    )


def labels(verdict) -> list[str]:
    return [Reason(int(r)).label for r in verdict.reasons]


def test_clean_batch_is_accepted_and_state_remembers_it() -> None:
    b = batch([100, 100.5, 101, 100.7])
    verdict = evaluate(b, {}, CONFIG, now_ns=NOW)
    assert labels(verdict) == ["ok"] * 4
    state = verdict.states[("paper", "BTC")]
    assert state.hwm == 4
    assert state.last_price == 100.7 * FACTOR
    assert state.count == 3


def test_future_stale_and_invalid() -> None:
    times = [NOW + 60 * SECOND, NOW - 3600 * SECOND, NOW - SECOND, NOW]
    b = batch([100, 100, -1, 100], times=times)
    assert labels(evaluate(b, {}, CONFIG, now_ns=NOW)) == [
        "future_timestamp", "stale_timestamp", "invalid_value", "ok",
    ]  # fmt: skip
    # A backfill of history does not judge age.
    assert labels(evaluate(b, {}, CONFIG.for_backfill(), now_ns=NOW))[1] == "ok"


def test_duplicates_within_and_across_batches() -> None:
    b = batch([100, 100, 100, 100], seqs=[5, 6, 6, 4])
    verdict = evaluate(b, {("paper", "BTC"): MarketState(hwm=4)}, CONFIG, now_ns=NOW)
    assert labels(verdict) == ["ok", "ok", "duplicate", "duplicate"]
    assert verdict.states[("paper", "BTC")].hwm == 6


def test_a_rejected_row_does_not_advance_the_high_water_mark() -> None:
    times = [NOW + 3600 * SECOND, NOW - SECOND]  # the first is in the future
    b = batch([100, 100], seqs=[10, 9], times=times)
    verdict = evaluate(b, {}, CONFIG, now_ns=NOW)
    assert labels(verdict) == ["future_timestamp", "ok"]


def test_huge_sequence_numbers_take_the_slow_path_with_the_same_answer() -> None:
    big = 1 << 60
    b = batch([100, 100, 100], seqs=[big + 1, big + 1, big + 2])
    assert labels(evaluate(b, {}, CONFIG, now_ns=NOW)) == ["ok", "duplicate", "ok"]


def test_a_spike_is_quarantined_but_the_tick_after_it_is_not() -> None:
    b = batch([100, 100.2, 130, 100.3, 100.1])
    verdict = evaluate(b, {}, CONFIG, now_ns=NOW)
    assert labels(verdict) == ["ok", "ok", "price_deviation", "ok", "ok"]
    # The reference of the row after the spike is the last accepted price, not the spike.
    assert verdict.reference(3) == int(100.2 * FACTOR)


def test_a_run_of_bad_ticks_then_recovery() -> None:
    b = batch([100, 150, 151, 149, 100.5, 100.4])
    assert labels(evaluate(b, {}, CONFIG, now_ns=NOW)) == [
        "ok", "price_deviation", "price_deviation", "price_deviation", "ok", "ok",
    ]  # fmt: skip


def test_a_repricing_is_accepted_once_confirmed() -> None:
    """Five prints in a row at a new level are a move, not noise: all of them stand."""
    b = batch([100, 100.1, 130, 130.2, 129.9, 130.1, 130, 130.3])
    assert labels(evaluate(b, {}, CONFIG, now_ns=NOW)) == ["ok"] * 8


def test_a_run_confirms_across_batches() -> None:
    """One tick per market per batch (the live feed): the run is carried in the state; the
    prints of earlier batches stay quarantined, the confirming one stands."""
    state: dict[tuple[str, str], MarketState] = {}
    got = []
    for i, price in enumerate([100, 130, 130.1, 129.8, 130.2, 130, 130.1]):
        verdict = evaluate(batch([price], start_seq=i + 1), state, CONFIG, now_ns=NOW)
        state = verdict.states
        got += labels(verdict)
    assert got == ["ok", *["price_deviation"] * 4, "ok", "ok"]
    assert state[("paper", "BTC")].last_price == int(130.1 * FACTOR)
    assert state[("paper", "BTC")].run == 0


def test_reference_from_the_previous_batch_and_its_expiry() -> None:
    state = MarketState(hwm=1, last_price=int(100 * FACTOR), last_ts=NOW - 10 * SECOND)
    b = batch([120], start_seq=2, times=[NOW - SECOND])
    assert labels(evaluate(b, {("paper", "BTC"): state}, CONFIG, now_ns=NOW)) == ["price_deviation"]
    # After a gap longer than the reference's life, the market may have moved: accepted.
    old = MarketState(hwm=1, last_price=int(100 * FACTOR), last_ts=NOW - 600 * SECOND)
    assert labels(evaluate(b, {("paper", "BTC"): old}, CONFIG, now_ns=NOW)) == ["ok"]


def test_zscore_anomaly_needs_history_and_flags_an_outsized_move() -> None:
    rng = np.random.default_rng(7)
    steady = list(100 * np.exp(np.cumsum(rng.normal(0, 0.0005, 200))))
    warm = evaluate(batch(steady), {}, CONFIG, now_ns=NOW)
    assert labels(warm) == ["ok"] * 200
    state = warm.states[("paper", "BTC")]
    assert state.count == 199
    assert state.var > 0
    last = steady[-1]
    # +3 % is far below the 10 % deviation limit but ~60 standard deviations.
    b = batch([last * 1.03, last * 1.0003], start_seq=201)
    assert labels(evaluate(b, {("paper", "BTC"): state}, CONFIG, now_ns=NOW)) == [
        "zscore_anomaly", "ok",
    ]  # fmt: skip
    # Without enough history the same move passes.
    young = MarketState(
        hwm=200, last_price=state.last_price, last_ts=state.last_ts, count=5, mean=0, var=state.var
    )
    assert labels(evaluate(b, {("paper", "BTC"): young}, CONFIG, now_ns=NOW))[0] == "ok"


def test_markets_are_checked_independently() -> None:
    n = 6
    b = TickBatch.from_arrays(
        timestamp=np.full(n, NOW - SECOND, dtype=np.int64),
        symbol=["BTC", "ETH", "BTC", "ETH", "BTC", "ETH"],
        exchange=["paper"] * n,
        sequence_number=np.array([1, 1, 2, 2, 3, 3], dtype=np.uint64),
        price=(np.array([100, 10, 100.1, 30, 100.2, 10.1]) * FACTOR).astype(np.int64),
    )
    verdict = evaluate(b, {}, CONFIG, now_ns=NOW)
    assert labels(verdict) == ["ok", "ok", "ok", "price_deviation", "ok", "ok"]
    assert set(verdict.states) == {("paper", "BTC"), ("paper", "ETH")}


def test_per_row_arrival_times() -> None:
    b = batch([100, 100], times=[NOW - 1000 * SECOND, NOW - 1000 * SECOND])
    arrived = np.array([NOW, NOW - 990 * SECOND], dtype=np.int64)
    assert labels(evaluate(b, {}, CONFIG, now_ns=arrived)) == ["stale_timestamp", "ok"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(min_value=50, max_value=200, allow_nan=False), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=4),
)
def test_vectorised_verdicts_equal_a_one_row_at_a_time_reference(
    prices: list[float], seqs: list[int], confirm: int
) -> None:
    """The vectorised walk gives exactly what checking row by row gives: against the last
    accepted price, the running high-water mark, and runs of agreeing refused prints."""
    n = min(len(prices), len(seqs))
    prices, seqs = [round(p, 4) for p in prices[:n]], seqs[:n]
    config = replace(CONFIG, confirm_ticks=confirm)
    got = labels(evaluate(batch(prices, seqs=seqs), {}, config, now_ns=NOW))

    def agrees(a: float, b: float) -> bool:
        return abs(round(a * FACTOR) / round(b * FACTOR) - 1) <= 0.10

    expected: list[str] = []
    hwm, ref = 0, None
    run: list[int] = []
    for price, seq in zip(prices, seqs, strict=True):
        if seq <= hwm:  # a duplicate is set aside: it neither anchors nor breaks a run
            expected.append("duplicate")
            continue
        hwm = seq
        if ref is None or agrees(price, ref):
            expected.append("ok")
            ref, run = price, []
            continue
        row = len(expected)
        run = [*run, row] if run and agrees(price, prices[run[-1]]) else [row]
        expected.append("price_deviation")
        if len(run) >= confirm:
            for index in run:
                expected[index] = "ok"
            ref, run = price, []

    assert got == expected


def test_bytes_round_trip_keeps_every_column() -> None:
    b = batch([100, 101.5, 99.25])
    b.invalid = np.array([False, True, False])
    back = TickBatch.from_bytes(b.to_bytes())
    assert np.array_equal(back.timestamp, b.timestamp)
    assert list(back.symbol) == list(b.symbol)
    for name in b.decimals:
        assert np.array_equal(back.decimals[name], b.decimals[name])
    assert back.invalid is not None
    assert back.invalid.tolist() == [False, True, False]
    joined = TickBatch.concat([b, batch([5], symbol="ETH")])
    assert list(joined.symbol) == ["BTC", "BTC", "BTC", "ETH"]


@pytest.mark.parametrize("value", ["1e12", "NaN", "abc"])
def test_values_a_column_cannot_hold_are_flagged_not_raised(value: str) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from trading.marketdata import quote_tick

    tick = quote_tick("paper", "BTC", Decimal("100"), at=datetime.now(tz=UTC))
    broken = type(tick)(**{**tick.__dict__, "volume": Decimal(value) if value != "abc" else value})
    b = TickBatch.from_ticks([tick, broken])
    assert b.invalid is not None
    assert b.invalid.tolist() == [False, True]
    verdict = evaluate(b, {}, CONFIG.for_backfill(), now_ns=NOW)
    assert labels(verdict)[1] == "invalid_value"
