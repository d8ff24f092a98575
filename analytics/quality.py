"""Data quality of market ticks (seed 004): which rows go to quarantine, and why.

:func:`evaluate` looks at a :class:`~analytics.batches.TickBatch` and the per-market state left
by earlier batches and gives every row a reason code (0 = accepted). The checks, in order --
a row gets the first that fails:

1. ``future_timestamp``: later than *now* + ``max_future_skew``.
2. ``stale_timestamp``: older than *now* - ``max_age`` (the live feed; a backfill of history
   passes ``max_age=None``).
3. ``invalid_value``: a price <= 0, a negative size, or a value the column cannot hold.
4. ``duplicate``: the sequence number does not advance past the market's high-water mark --
   the highest sequence accepted so far, in earlier batches or earlier in this one. Sequence
   numbers (Hyperliquid trade ids, the simulator's counter) increase per market in delivery
   order, so this catches a re-sent message, a replayed stream and a copy within the batch.
5. ``price_deviation``: ``|price / reference - 1| > max_deviation``, where the reference is the
   market's last *accepted* price -- a spike does not become the reference for the next tick.
   A market that really moved keeps printing at its new level: ``confirm_ticks`` refused
   prints in a row that agree with each other are accepted together (a spike is a print or
   two, a repricing is a run). A reference older than ``reference_max_age`` is not used
   (after a gap the first tick re-anchors it).
6. ``zscore_anomaly``: the log return against the same reference is more than
   ``zscore_threshold`` standard deviations from the market's exponentially weighted mean
   (half-life ``zscore_half_life`` returns), once ``zscore_min_observations`` returns are known.
   The statistics are those at the start of the batch; accepted returns update them after.
   Runs confirm a new level here too.

Everything is vectorised over the batch; only rows right after a rejected one are re-checked
one by one (their reference changes). The evaluation is deterministic for a batch and a state,
so a retried batch gets exactly the same verdicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import numpy as np

from analytics.batches import FACTOR, TickBatch

NS = 1_000_000_000
SEQ_BITS = 48  # sequences below 2^48 (Hyperliquid tids are ~10^12) take the all-numpy path


class Reason(IntEnum):
    OK = 0
    FUTURE_TIMESTAMP = 1
    STALE_TIMESTAMP = 2
    INVALID_VALUE = 3
    DUPLICATE = 4
    PRICE_DEVIATION = 5
    ZSCORE_ANOMALY = 6

    @property
    def label(self) -> str:
        return self.name.lower()


REASON_LABELS = {reason.label for reason in Reason if reason is not Reason.OK}


@dataclass(frozen=True)
class QualityConfig:
    max_future_skew_seconds: float = 5.0
    max_age_seconds: float | None = 300.0
    max_price_deviation: float = 0.10
    zscore_threshold: float = 8.0
    zscore_min_observations: int = 30
    zscore_half_life: float = 500.0
    reference_max_age_seconds: float = 300.0
    confirm_ticks: int = 5

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> QualityConfig:
        max_age = values.get("MAX_AGE_SECONDS")
        return cls(
            max_future_skew_seconds=float(values["MAX_FUTURE_SKEW_SECONDS"]),
            max_age_seconds=None if max_age is None else float(max_age),
            max_price_deviation=float(values["MAX_PRICE_DEVIATION"]),
            zscore_threshold=float(values["ZSCORE_THRESHOLD"]),
            zscore_min_observations=int(values["ZSCORE_MIN_OBSERVATIONS"]),
            zscore_half_life=float(values["ZSCORE_HALF_LIFE"]),
            reference_max_age_seconds=float(values["REFERENCE_MAX_AGE_SECONDS"]),
            confirm_ticks=int(values.get("CONFIRM_TICKS", 5)),
        )

    def for_backfill(self) -> QualityConfig:
        """History is old by definition: no staleness check."""
        return replace(self, max_age_seconds=None)


@dataclass
class MarketState:
    """What the checks remember about one market between batches."""

    hwm: int = 0  # highest accepted sequence number
    last_price: int = 0  # last accepted price, scaled by 10^8 (0 = none)
    last_ts: int = 0  # its timestamp, epoch ns
    count: int = 0  # accepted log returns seen
    mean: float = 0.0  # their exponentially weighted mean
    var: float = 0.0  # and variance
    run: int = 0  # consecutive refused prints that agree with each other (a possible new level)
    run_price: int = 0  # the last of them, scaled
    run_ts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "hwm": self.hwm,
            "p": self.last_price,
            "t": self.last_ts,
            "n": self.count,
            "m": self.mean,
            "v": self.var,
            "r": self.run,
            "rp": self.run_price,
            "rt": self.run_ts,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MarketState:
        return cls(
            hwm=int(raw.get("hwm", 0)),
            last_price=int(raw.get("p", 0)),
            last_ts=int(raw.get("t", 0)),
            count=int(raw.get("n", 0)),
            mean=float(raw.get("m", 0.0)),
            var=float(raw.get("v", 0.0)),
            run=int(raw.get("r", 0)),
            run_price=int(raw.get("rp", 0)),
            run_ts=int(raw.get("rt", 0)),
        )


MarketKey = tuple[str, str]  # (exchange, symbol)


@dataclass
class Verdict:
    reasons: np.ndarray  # uint8 per row, Reason values
    states: dict[MarketKey, MarketState]  # updated state of every market in the batch
    order: np.ndarray | None = None  # rows grouped by market (see evaluate)
    sorted_references: np.ndarray | None = None  # reference price per grouped row, scaled
    _position: np.ndarray | None = field(default=None, repr=False)

    @property
    def accepted(self) -> np.ndarray:
        return self.reasons == Reason.OK

    def reference(self, row: int) -> int:
        """The scaled reference price ``row`` was checked against (0: none); for details."""
        if self.order is None or self.sorted_references is None:
            return 0
        if self._position is None:
            position = np.empty(len(self.order), dtype=np.int64)
            position[self.order] = np.arange(len(self.order))
            self._position = position
        return int(self.sorted_references[self._position[row]])

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.reasons, return_counts=True)
        return {Reason(int(v)).label: int(c) for v, c in zip(values, counts, strict=True)}


def market_keys(batch: TickBatch) -> tuple[np.ndarray, list[MarketKey]]:
    """A small integer per row naming its (exchange, symbol), and the names."""
    n_exchanges = max(len(batch.exchange.categories), 1)
    n_codes = max(len(batch.symbol.categories), 1) * n_exchanges
    small = np.int16 if n_codes < 2**15 else np.int64
    codes = np.asarray(batch.symbol.codes, dtype=np.int64) * n_exchanges + np.asarray(
        batch.exchange.codes, dtype=np.int64
    )
    present = np.nonzero(np.bincount(codes, minlength=n_codes))[0]
    keys = [
        (
            str(batch.exchange.categories[int(code) % n_exchanges]),
            str(batch.symbol.categories[int(code) // n_exchanges]),
        )
        for code in present
    ]
    lookup = np.zeros(n_codes, dtype=small)
    lookup[present] = np.arange(len(present), dtype=small)
    return lookup[codes], keys


@dataclass
class _Sorted:
    """The batch's rows grouped by market (arrival order kept within a market)."""

    order: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    group: np.ndarray
    price: np.ndarray
    ts: np.ndarray
    seq: np.ndarray
    reasons: np.ndarray
    references: np.ndarray

    def rows(self, g: int) -> slice:
        return slice(int(self.starts[g]), int(self.ends[g]))


def evaluate(
    batch: TickBatch,
    states: dict[MarketKey, MarketState],
    config: QualityConfig,
    *,
    now_ns: int | np.ndarray,
) -> Verdict:
    """Verdicts for every row. ``now_ns`` is when the rows arrived (epoch ns): one value, or
    one per row for rows that waited in a buffer."""
    n = len(batch)
    reasons = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return Verdict(reasons=reasons, states={})
    ts = batch.timestamp
    price = batch.decimals["price"]

    # 1-3: per-row checks, cheapest first; a later check never overwrites an earlier reason.
    # A clean batch is the common case: one min/max reduction per column tells whether a
    # check can fail at all, and only then is its row mask built (the masks were a tenth of
    # the evaluation of a million-row batch).
    future = now_ns + int(config.max_future_skew_seconds * NS)
    if np.any(ts > future) if np.ndim(now_ns) else int(ts.max()) > future:
        reasons[ts > future] = Reason.FUTURE_TIMESTAMP
    if config.max_age_seconds is not None:
        oldest = now_ns - int(config.max_age_seconds * NS)
        if np.any(ts < oldest) if np.ndim(now_ns) else int(ts.min()) < oldest:
            reasons[(ts < oldest) & (reasons == 0)] = Reason.STALE_TIMESTAMP
    invalid = (price <= 0) if int(price.min()) <= 0 else None
    for name in ("volume", "bid_volume", "ask_volume", "bid_price", "ask_price", "oi"):
        column = batch.decimals[name]
        if int(column.min()) < 0:
            invalid = (column < 0) if invalid is None else invalid | (column < 0)
    if batch.invalid is not None:
        invalid = batch.invalid if invalid is None else invalid | batch.invalid
    if invalid is not None:
        reasons[invalid & (reasons == 0)] = Reason.INVALID_VALUE

    group, keys = market_keys(batch)
    known = [states.get(key) or MarketState() for key in keys]
    # Stable sort of small integers is a radix sort: markets together, arrival order kept.
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=len(keys))
    ends = np.cumsum(counts)
    grouped = _Sorted(
        order=order,
        starts=ends - counts,
        ends=ends,
        # The sorted group codes are runs of 0, 1, 2, ...: no gather needed.
        group=np.repeat(np.arange(len(keys), dtype=group.dtype), counts),
        price=price[order],
        ts=ts[order],
        seq=batch.sequence_number[order],
        reasons=reasons[order] if reasons.any() else np.zeros(n, dtype=np.uint8),
        references=np.zeros(n, dtype=np.int64),
    )
    _check_duplicates(grouped, known)
    runs = _check_prices(grouped, config, known)
    updated = _next_states(grouped, config, known, runs)
    if grouped.reasons.any():
        reasons[order] = grouped.reasons
    return Verdict(
        reasons=reasons,
        states=dict(zip(keys, updated, strict=True)),
        order=order,
        sorted_references=grouped.references,
    )


def _check_duplicates(grouped: _Sorted, known: list[MarketState]) -> None:
    seq = grouped.seq
    all_alive = not grouped.reasons.any()
    alive = grouped.reasons == 0
    hwm = np.array([state.hwm for state in known], dtype=np.uint64)
    if len(seq) and int(seq.max()) < (1 << SEQ_BITS) and int(hwm.max()) < (1 << SEQ_BITS):
        # One cumulative max over (market << 48 | sequence) is a per-market running max,
        # because rows are grouped by market in ascending market order.
        base = grouped.group.astype(np.int64) << SEQ_BITS
        own = base | seq.astype(np.int64)
        key = own if all_alive else np.where(alive, own, base)
        starts = grouped.starts[grouped.starts < grouped.ends]  # markets with rows
        first_floor = (grouped.group[starts].astype(np.int64) << SEQ_BITS) | hwm.astype(np.int64)[
            grouped.group[starts]
        ]
        if bool(np.all(key[1:] > key[:-1])) and bool(np.all(own[starts] > first_floor)):
            return  # every market's sequence rises through the batch: no duplicate
        floor = base | hwm.astype(np.int64)[grouped.group]
        running = np.maximum.accumulate(key)
        before = np.empty_like(running)
        before[0] = -1
        before[1:] = running[:-1]
        duplicate = alive & (own <= np.maximum(before, floor))
    else:  # enormous sequence numbers: the same rule, one market at a time
        duplicate = np.zeros(len(seq), dtype=bool)
        for g in range(len(known)):
            high = int(known[g].hwm)
            for row in range(int(grouped.starts[g]), int(grouped.ends[g])):
                if not alive[row]:
                    continue
                value = int(seq[row])
                if value <= high:
                    duplicate[row] = True
                else:
                    high = value
    grouped.reasons[duplicate] = Reason.DUPLICATE


Run = tuple[int, int, int]  # (length, last price, last timestamp) of a pending run


def _candidates(grouped: _Sorted, g: int) -> tuple[np.ndarray | slice, bool]:
    """The rows of market ``g`` still without a reason (a slice when that is all of them)."""
    rows = grouped.rows(g)
    ok = grouped.reasons[rows] == 0
    if bool(ok.all()):
        return rows, True
    return np.arange(rows.start, rows.stop)[ok], False


def _check_prices(
    grouped: _Sorted, config: QualityConfig, known: list[MarketState]
) -> dict[int, Run]:
    """Deviation and z-score verdicts; returns each market's pending run for its state."""
    max_gap = int(config.reference_max_age_seconds * NS)
    runs: dict[int, Run] = {}
    for g, state in enumerate(known):
        rows, _ = _candidates(grouped, g)
        price = grouped.price[rows].astype(np.float64)
        if len(price) == 0:
            runs[g] = (state.run, state.run_price, state.run_ts)
            continue
        ts = grouped.ts[rows]
        # Vectorised pass: each row against the row before it (or the state's last price).
        ref = np.empty_like(price)
        ref_ts = np.empty_like(ts)
        ref[0], ref_ts[0] = float(state.last_price), state.last_ts
        ref[1:], ref_ts[1:] = price[:-1], ts[:-1]
        bad = _price_flags(price, ts, ref, ref_ts, state, config, max_gap)
        flagged = np.nonzero(bad)[0]
        runs[g] = (0, 0, 0)
        if len(flagged):
            runs[g] = _walk_after_rejections(
                price, ts, ref, ref_ts, bad, flagged, state, config, max_gap
            )
            codes = np.where(bad == 1, Reason.PRICE_DEVIATION, Reason.ZSCORE_ANOMALY)
            index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
            grouped.reasons[index[bad > 0]] = codes[bad > 0]
        grouped.references[rows] = ref.astype(np.int64)
    return runs


def _price_flags(
    price: np.ndarray,
    ts: np.ndarray,
    ref: np.ndarray,
    ref_ts: np.ndarray,
    state: MarketState,
    config: QualityConfig,
    max_gap: int,
) -> np.ndarray:
    """0 ok, 1 deviation, 2 z-score, per row against its ``ref``."""
    usable = (ref > 0) & (ts - ref_ts <= max_gap)
    flags = np.zeros(len(price), dtype=np.uint8)
    if not usable.any():
        return flags
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(usable, price / np.where(ref > 0, ref, 1.0), 1.0)
    flags[usable & (np.abs(ratio - 1.0) > config.max_price_deviation)] = 1
    if state.count >= config.zscore_min_observations and state.var > 0:
        z = (np.log(ratio) - state.mean) / math.sqrt(state.var)
        flags[(flags == 0) & usable & (np.abs(z) > config.zscore_threshold)] = 2
    return flags


def _walk_after_rejections(
    price: np.ndarray,
    ts: np.ndarray,
    ref: np.ndarray,
    ref_ts: np.ndarray,
    bad: np.ndarray,
    flagged: np.ndarray,
    state: MarketState,
    config: QualityConfig,
    max_gap: int,
) -> Run:
    """Make the vectorised verdicts sequential.

    The reference of a row is the last *accepted* row. Up to the first rejection both agree;
    from there rows are checked one by one until one is accepted, after which the vectorised
    verdicts hold again until the next row the vectorised pass flagged.

    A market that really moved prints at its new level again and again: ``confirm_ticks``
    refused prints in a row that agree with each other (each passes the checks against the
    one before) are accepted together and become the reference -- a spike is one or two
    prints, a repricing is a run. A run may start in an earlier batch (kept in the state);
    its rows there stay quarantined.
    """
    original = flagged.tolist()
    n = len(price)
    i = original[0]
    last_price, last_ts = ref[i], ref_ts[i]
    # A run left by the previous batch continues only if nothing was accepted before it here.
    carried = state.run if i == 0 else 0
    prev_price, prev_ts = (float(state.run_price), state.run_ts) if carried else (0.0, 0)
    run: list[int] = []
    cursor = 0

    def check(row: int, against: float, against_ts: int) -> int:
        one = slice(row, row + 1)
        return int(
            _price_flags(
                price[one], ts[one], np.array([against]), np.array([against_ts]),
                state, config, max_gap,
            )[0]
        )  # fmt: skip

    while i < n:
        ref[i], ref_ts[i] = last_price, last_ts
        verdict = check(i, last_price, last_ts)
        accepted = verdict == 0
        if not accepted:
            consistent = bool(carried or run) and check(i, prev_price, prev_ts) == 0
            if not consistent:
                run, carried = [], 0
            run.append(i)
            prev_price, prev_ts = price[i], ts[i]
            if carried + len(run) >= config.confirm_ticks:
                bad[run] = 0  # a new level: the whole run stands
                run, carried, accepted = [], 0, True
            else:
                bad[i] = verdict
                i += 1
                continue
        bad[i] = 0
        last_price, last_ts = price[i], ts[i]
        run, carried = [], 0
        while cursor < len(original) and original[cursor] <= i:
            cursor += 1
        if cursor == len(original):
            break
        # Rows between keep their vectorised verdicts (made against accepted predecessors);
        # the next flagged row is re-checked the same way.
        i = original[cursor]
        last_price, last_ts = price[i - 1], ts[i - 1]
    if carried or run:
        return (carried + len(run), int(prev_price), int(prev_ts))
    return (0, 0, 0)


def _next_states(
    grouped: _Sorted, config: QualityConfig, known: list[MarketState], runs: dict[int, Run]
) -> list[MarketState]:
    alpha = 1.0 - 0.5 ** (1.0 / max(config.zscore_half_life, 1.0))
    # Older returns weigh less than 2^-60 in the averages: only the newest ones are needed.
    tail = int(60 * max(config.zscore_half_life, 1.0)) + 1
    updated = []
    for g, state in enumerate(known):
        rows = grouped.rows(g)
        reasons = grouped.reasons[rows]
        # A row that got past the duplicate check was delivered, even if its price was then
        # refused: its sequence number is used up (as within the batch).
        delivered = (
            (reasons == 0)
            | (reasons == Reason.PRICE_DEVIATION)
            | (reasons == Reason.ZSCORE_ANOMALY)
        )
        seqs = grouped.seq[rows][delivered]
        hwm = max(state.hwm, int(seqs.max())) if len(seqs) else state.hwm
        accepted = reasons == 0
        run, run_price, run_ts = runs.get(g, (0, 0, 0))
        if not accepted.any():
            updated.append(replace(state, hwm=hwm, run=run, run_price=run_price, run_ts=run_ts))
            continue
        prices = grouped.price[rows]
        prices = prices if accepted.all() else prices[accepted]
        last_ts = (
            int(grouped.ts[rows][accepted][-1]) if not accepted.all() else int(grouped.ts[rows][-1])
        )
        recent = prices[-tail:].astype(np.float64)
        previous = np.empty_like(recent)
        previous[0] = float(prices[-tail - 1]) if len(prices) > tail else float(state.last_price)
        previous[1:] = recent[:-1]
        valid = previous > 0
        returns = np.log(recent[valid] / previous[valid])
        count, mean, var = state.count, state.mean, state.var
        k = len(returns)
        if k:
            # Exponentially weighted mean and variance after k more returns, in closed form.
            decay = (1.0 - alpha) ** np.arange(k - 1, -1, -1, dtype=np.float64)
            keep = (1.0 - alpha) ** k
            weights = alpha * decay
            if count == 0:
                new_mean = float(returns.mean())
                var = float(returns.var()) if k > 1 else 0.0
            else:
                new_mean = keep * mean + float(np.dot(weights, returns))
                var = keep * (var + (mean - new_mean) ** 2) + float(
                    np.dot(weights, (returns - new_mean) ** 2)
                )
            mean = new_mean
            count += len(prices) - (0 if state.last_price else 1)
        updated.append(
            MarketState(
                hwm=hwm,
                last_price=int(prices[-1]),
                last_ts=last_ts,
                count=count,
                mean=mean,
                var=var,
                run=run,
                run_price=run_price,
                run_ts=run_ts,
            )
        )
    return updated


def describe(
    reason: int, batch: TickBatch, row: int, reference: int, state: MarketState | None
) -> str:
    """A short human explanation of why ``row`` was quarantined."""
    code = Reason(reason)
    price = batch.decimals["price"][row] / FACTOR
    if code in (Reason.PRICE_DEVIATION, Reason.ZSCORE_ANOMALY) and reference:
        change = (batch.decimals["price"][row] / reference - 1.0) * 100
        return f"price {price:g} vs reference {reference / FACTOR:g} ({change:+.2f}%)"
    if code is Reason.DUPLICATE:
        hwm = state.hwm if state else 0
        return f"sequence {int(batch.sequence_number[row])} does not advance (high-water {hwm})"
    if code is Reason.INVALID_VALUE:
        return f"price {price:g} or a size is not valid"
    return code.label.replace("_", " ")
