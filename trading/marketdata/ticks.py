"""The tick: one observation of one market, the unit every market-data source produces.

Fields mirror ClickHouse ``market_ticks_raw`` (seed 000), so an ingestion task can insert a tick
as it is: timestamp, symbol, exchange, price, bid/ask price and volume, volume, open interest,
funding rate, mark and index price, sequence number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Tick:
    exchange: str
    symbol: str
    timestamp: datetime
    price: Decimal
    bid_price: Decimal
    ask_price: Decimal
    bid_volume: Decimal
    ask_volume: Decimal
    volume: Decimal
    mark_price: Decimal
    sequence_number: int
    index_price: Decimal | None = None
    funding_rate: Decimal | None = None
    open_interest: Decimal | None = None
    source: str = "simulator"

    @property
    def time_ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)

    @property
    def mid(self) -> Decimal:
        return (self.bid_price + self.ask_price) / 2

    def as_row(self) -> dict[str, Any]:
        """Column name -> value, for ``market_ticks_raw``."""
        row = asdict(self)
        row.pop("source")
        row["oi"] = row.pop("open_interest")
        return row
