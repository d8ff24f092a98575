"""The rows analytics ingests, in the shapes its services accept.

* :class:`TickBatch` -- ticks as columns (numpy), the fast path into ``market_ticks_raw``:
  timestamps as epoch nanoseconds, symbol/exchange as ``pd.Categorical``, every decimal as
  ``int64`` scaled by 10^8 (the column's wire form, so the client sends it unchanged). Build
  one with :meth:`TickBatch.from_ticks` (trading's ``Tick`` objects) or
  :meth:`TickBatch.from_arrays`; it round-trips through bytes for the Redis buffer.
* Frozen dataclasses for everything else (trader fills, copy-trade events, venue candles,
  funding, open interest, book snapshots, equity samples): decimals as ``Decimal``, times as
  aware UTC datetimes. They round-trip through JSON (:func:`rows_to_json`/:func:`rows_from_json`)
  for the buffer; decimals travel as strings, never as floats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import struct
import typing
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from analytics.clickhouse.client import RawDecimal

SCALE = 8
FACTOR = 10**SCALE
QUANTUM = Decimal(1).scaleb(-SCALE)
# Decimal(18, 8) holds |x| < 10^10; Decimal(10, 8) (funding_rate) |x| < 100.
LIMIT_18 = 10**18
LIMIT_10 = 10**10

DECIMAL_COLUMNS: tuple[str, ...] = (
    "price",
    "bid_price",
    "ask_price",
    "volume",
    "bid_volume",
    "ask_volume",
    "oi",
    "funding_rate",
    "mark_price",
    "index_price",
)
TICK_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "symbol",
    "exchange",
    *DECIMAL_COLUMNS,
    "sequence_number",
)
_TICK_FIELD = {"oi": "open_interest"}  # trading.marketdata.Tick spells it out


def to_scaled(value: Decimal | int | str | None, *, limit: int = LIMIT_18) -> int | None:
    """``value`` x 10^8 as an int (half-even rounding past 8 decimals); None when it does not
    fit the column (the quality check quarantines such a row instead of failing the batch)."""
    if value is None:
        return 0
    try:
        scaled = int(Decimal(value).quantize(QUANTUM, rounding=ROUND_HALF_EVEN).scaleb(SCALE))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return scaled if -limit < scaled < limit else None


def from_scaled(value: int) -> Decimal:
    return Decimal(int(value)).scaleb(-SCALE)


def _epoch_ns(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("tick timestamps must be timezone-aware (UTC)")
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _categorical(values: Any) -> pd.Categorical:
    if isinstance(values, pd.Categorical):
        return values
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        return values.array
    return pd.Categorical(values)


@dataclass
class TickBatch:
    """Ticks as columns; ``invalid`` marks rows whose values could not be represented."""

    timestamp: np.ndarray  # int64, epoch nanoseconds (UTC)
    symbol: pd.Categorical
    exchange: pd.Categorical
    decimals: dict[str, np.ndarray]  # column -> int64 scaled by 10^8
    sequence_number: np.ndarray  # uint64
    invalid: np.ndarray | None = None  # bool

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        lengths = {len(self.symbol), len(self.exchange), len(self.sequence_number)}
        lengths |= {len(v) for v in self.decimals.values()}
        if lengths - {n}:
            raise ValueError("tick columns have different lengths")
        missing = set(DECIMAL_COLUMNS) - set(self.decimals)
        if missing:
            raise ValueError(f"tick batch lacks columns {sorted(missing)}")

    def __len__(self) -> int:
        return len(self.timestamp)

    # -- construction

    @classmethod
    def empty(cls) -> TickBatch:
        return cls.from_arrays(
            timestamp=np.empty(0, dtype=np.int64),
            symbol=[],
            exchange=[],
            sequence_number=np.empty(0, dtype=np.uint64),
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        timestamp: Any,
        symbol: Any,
        exchange: Any,
        sequence_number: Any,
        **decimals: Any,
    ) -> TickBatch:
        """Columns as arrays. ``timestamp``: datetime64 or int64 epoch ns; decimals: int64
        already scaled by 10^8 (missing ones are 0 = not reported)."""
        ts = np.asarray(timestamp)
        if ts.dtype.kind == "M":
            ts = ts.astype("datetime64[ns]").view(np.int64)
        n = len(ts)
        unknown = set(decimals) - set(DECIMAL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown tick columns {sorted(unknown)}")
        columns = {
            name: np.ascontiguousarray(decimals[name], dtype=np.int64)
            if name in decimals
            else np.zeros(n, dtype=np.int64)
            for name in DECIMAL_COLUMNS
        }
        return cls(
            timestamp=np.ascontiguousarray(ts, dtype=np.int64),
            symbol=_categorical(symbol),
            exchange=_categorical(exchange),
            decimals=columns,
            sequence_number=np.ascontiguousarray(sequence_number, dtype=np.uint64),
        )

    @classmethod
    def from_ticks(cls, ticks: Sequence[Any]) -> TickBatch:
        """From ``trading.marketdata.Tick`` objects (anything with the same attributes)."""
        n = len(ticks)
        decimals = {name: np.zeros(n, dtype=np.int64) for name in DECIMAL_COLUMNS}
        invalid = np.zeros(n, dtype=bool)
        timestamp = np.empty(n, dtype=np.int64)
        sequence = np.empty(n, dtype=np.uint64)
        for i, tick in enumerate(ticks):
            timestamp[i] = _epoch_ns(tick.timestamp)
            sequence[i] = max(int(tick.sequence_number), 0)
            for name in DECIMAL_COLUMNS:
                limit = LIMIT_10 if name == "funding_rate" else LIMIT_18
                scaled = to_scaled(getattr(tick, _TICK_FIELD.get(name, name)), limit=limit)
                if scaled is None:
                    invalid[i] = True
                else:
                    decimals[name][i] = scaled
        return cls(
            timestamp=timestamp,
            symbol=pd.Categorical([str(t.symbol) for t in ticks]),
            exchange=pd.Categorical([str(t.exchange) for t in ticks]),
            decimals=decimals,
            sequence_number=sequence,
            invalid=invalid if invalid.any() else None,
        )

    @classmethod
    def concat(cls, batches: Sequence[TickBatch]) -> TickBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        invalid = None
        if any(b.invalid is not None for b in batches):
            invalid = np.concatenate(
                [b.invalid if b.invalid is not None else np.zeros(len(b), bool) for b in batches]
            )
        return cls(
            timestamp=np.concatenate([b.timestamp for b in batches]),
            symbol=_concat_categoricals([b.symbol for b in batches]),
            exchange=_concat_categoricals([b.exchange for b in batches]),
            decimals={
                name: np.concatenate([b.decimals[name] for b in batches])
                for name in DECIMAL_COLUMNS
            },
            sequence_number=np.concatenate([b.sequence_number for b in batches]),
            invalid=invalid,
        )

    def take(self, index: np.ndarray | slice) -> TickBatch:
        """Rows at ``index`` (integer positions, a boolean mask or a slice), in that order."""
        return TickBatch(
            timestamp=self.timestamp[index],
            symbol=self.symbol[index],
            exchange=self.exchange[index],
            decimals={name: values[index] for name, values in self.decimals.items()},
            sequence_number=self.sequence_number[index],
            invalid=self.invalid[index] if self.invalid is not None else None,
        )

    # -- output

    def insert_columns(self) -> dict[str, Any]:
        """``market_ticks_raw`` columns for ``ClickHouse.insert_columns`` (no per-row work).

        A decimal column that is 0 on every row (not reported by the source: a trade has no
        book, most feeds no funding) is left out; the table's default is that same 0, and the
        rows travel lighter."""
        columns: dict[str, Any] = {
            "timestamp": self.timestamp,
            "symbol": self.symbol,
            "exchange": self.exchange,
        }
        for name in DECIMAL_COLUMNS:
            values = self.decimals[name]
            if name == "price" or values.any():
                columns[name] = RawDecimal(values)
        columns["sequence_number"] = self.sequence_number
        return columns

    def row(self, i: int) -> dict[str, Any]:
        """One row as JSON-ready values (decimals as strings), for quarantine payloads."""
        out: dict[str, Any] = {
            "timestamp_ns": int(self.timestamp[i]),
            "symbol": str(self.symbol[i]),
            "exchange": str(self.exchange[i]),
        }
        for name in DECIMAL_COLUMNS:
            out[name] = str(from_scaled(int(self.decimals[name][i])))
        out["sequence_number"] = int(self.sequence_number[i])
        return out

    # -- bytes for the Redis buffer (a fixed layout; never pickle)

    _MAGIC: ClassVar[bytes] = b"TB1"

    def to_bytes(self) -> bytes:
        header = {
            "n": len(self),
            "symbols": [str(c) for c in self.symbol.categories],
            "exchanges": [str(c) for c in self.exchange.categories],
            "invalid": self.invalid is not None,
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        parts = [
            self._MAGIC,
            struct.pack("<I", len(head)),
            head,
            self.timestamp.astype("<i8", copy=False).tobytes(),
            np.asarray(self.symbol.codes, dtype="<i4").tobytes(),
            np.asarray(self.exchange.codes, dtype="<i4").tobytes(),
            *(self.decimals[name].astype("<i8", copy=False).tobytes() for name in DECIMAL_COLUMNS),
            self.sequence_number.astype("<u8", copy=False).tobytes(),
        ]
        if self.invalid is not None:
            parts.append(self.invalid.astype("u1").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> TickBatch:
        if data[:3] != cls._MAGIC:
            raise ValueError("not a tick batch")
        (head_len,) = struct.unpack_from("<I", data, 3)
        header = json.loads(data[7 : 7 + head_len])
        n = int(header["n"])
        offset = 7 + head_len

        def take(dtype: str, width: int) -> np.ndarray:
            nonlocal offset
            array = np.frombuffer(data, dtype=dtype, count=n, offset=offset).copy()
            offset += n * width
            return array

        timestamp = take("<i8", 8)
        symbol = pd.Categorical.from_codes(take("<i4", 4), categories=header["symbols"])
        exchange = pd.Categorical.from_codes(take("<i4", 4), categories=header["exchanges"])
        decimals = {name: take("<i8", 8) for name in DECIMAL_COLUMNS}
        sequence = take("<u8", 8)
        invalid = take("u1", 1).astype(bool) if header.get("invalid") else None
        return cls(
            timestamp=timestamp,
            symbol=symbol,
            exchange=exchange,
            decimals=decimals,
            sequence_number=sequence,
            invalid=invalid,
        )


def _concat_categoricals(parts: Sequence[pd.Categorical]) -> pd.Categorical:
    categories = list(dict.fromkeys(str(c) for part in parts for c in part.categories))
    lookup = {name: code for code, name in enumerate(categories)}
    codes = []
    for part in parts:
        remap = np.array([lookup[str(c)] for c in part.categories], dtype=np.int32)
        part_codes = np.asarray(part.codes)
        codes.append(remap[part_codes] if len(remap) else part_codes.astype(np.int32))
    return pd.Categorical.from_codes(np.concatenate(codes), categories=categories)


# ======================================================================================
# Row types


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class TraderEventRow:
    """One fill of a tracked trader (``trader_events``). ``event_hash`` is the dedupe key:
    the same fill delivered twice is one row (see ``analytics.feeds.hyperliquid``)."""

    trader_id: str
    exchange: str
    symbol: str
    timestamp: dt.datetime
    action: str  # open, add, reduce, close, flip, liquidation
    side: str  # long/short: the position side the fill acted on (after a flip: the new one)
    fill_side: str  # buy/sell
    quantity: Decimal
    price: Decimal
    prev_exposure: Decimal
    new_exposure: Decimal
    closed_pnl: Decimal
    fee: Decimal
    event_hash: str
    fee_token: str = "USDC"  # noqa: S105 - a currency, not a secret
    crossed: bool = False
    order_id: str = ""
    trade_id: str = ""
    leverage: Decimal = Decimal(0)

    @property
    def notional_value(self) -> Decimal:
        return self.quantity * self.price

    @property
    def exposure_change(self) -> Decimal:
        return self.new_exposure - self.prev_exposure


@dataclass(frozen=True)
class CopyTradeEventRow:
    """One step of copying a leader's trade for a strategy (``copy_trade_events``)."""

    strategy_id: str
    user_id: str
    source_trader_id: str
    event_type: str  # signal_received, order_placed, order_filled, order_failed, ...
    symbol: str
    timestamp: dt.datetime
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    latency_ms: int = 0
    alignment_rate: Decimal = Decimal(0)
    slippage_bps: int = 0
    order_id: str = ""
    quantity: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    leader_price: Decimal = Decimal(0)
    side: str = ""
    status: str = "success"
    error_code: str = ""
    retry_count: int = 0
    realized_pnl: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CandleRow:
    """A candle as the venue reports it (``market_candles``)."""

    exchange: str
    symbol: str
    interval: str
    open_time: dt.datetime
    close_time: dt.datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int


@dataclass(frozen=True)
class FundingRow:
    exchange: str
    symbol: str
    timestamp: dt.datetime
    funding_rate: Decimal
    premium: Decimal = Decimal(0)


@dataclass(frozen=True)
class OpenInterestRow:
    exchange: str
    symbol: str
    timestamp: dt.datetime
    open_interest: Decimal
    mark_price: Decimal = Decimal(0)
    oracle_price: Decimal = Decimal(0)
    funding_rate: Decimal = Decimal(0)


@dataclass(frozen=True)
class BookSnapshotRow:
    """An L2 book snapshot; levels are (price, size, number of orders), best first."""

    exchange: str
    symbol: str
    timestamp: dt.datetime
    bids: tuple[tuple[Decimal, Decimal, int], ...]
    asks: tuple[tuple[Decimal, Decimal, int], ...]


@dataclass(frozen=True)
class EquitySampleRow:
    """A trader's account value at an instant (``trader_equity_samples``)."""

    trader_id: str
    timestamp: dt.datetime
    account_value: Decimal
    source: str = "portfolio"


@dataclass(frozen=True)
class MetricRow:
    """One ``system_metrics`` observation (seed 004)."""

    timestamp: dt.datetime
    category: str
    name: str
    value: float
    unit: str = ""
    tags: dict[str, str] = field(default_factory=dict)


RowT = TypeVar("RowT")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _restore(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Decimal:
        return Decimal(str(value))
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(str(value))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_restore(args[0], v) for v in value)
        return tuple(_restore(a, v) for a, v in zip(args, value, strict=True))
    return value


def rows_to_json(rows: Iterable[Any]) -> bytes:
    payload = [
        {f.name: _jsonable(getattr(row, f.name)) for f in dataclasses.fields(row)} for row in rows
    ]
    return json.dumps(payload, separators=(",", ":")).encode()


def rows_from_json(kind: type[RowT], data: bytes) -> list[RowT]:
    hints = typing.get_type_hints(kind)
    return [
        kind(**{name: _restore(hints[name], value) for name, value in item.items()})
        for item in json.loads(data)
    ]
