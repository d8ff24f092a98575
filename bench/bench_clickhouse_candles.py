"""ClickHouse vs PostgreSQL: 1-minute -> 1-hour candles over 10 million ticks (the second half
of bench_clickhouse, in a module of its own so each benchmark stays within two minutes)."""

from __future__ import annotations

from typing import Any

from bench.bench_clickhouse import run_candles_bench


def run() -> list[dict[str, Any]]:
    return run_candles_bench()


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, default=str))
