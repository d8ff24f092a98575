"""Acceptance check: the analytics suite passes against an embedded ClickHouse started fresh,
and again after that server is stopped and started on the same data directory.

    .venv/bin/python -m analytics.tests.restart_suite [--keep DIR] [pytest arguments ...]

1. starts an embedded server (``analytics.clickhouse.embedded_server``) on a new, empty
   directory and runs ``pytest analytics`` against it (``CLICKHOUSE_URL``);
2. writes a database that outlives the suite (the full schema through the migrator, ticks
   through the candle views, a deduplication token) and takes a snapshot of what it answers;
3. stops the server (SIGTERM; a clean shutdown must exit 0) and starts a new one on the same
   directory: the snapshot must be answered identically, the migrations must be recorded as
   applied, and a retried insert with the same token must add nothing;
4. runs the suite again against the restarted server.

Exit status 0 only when all of that holds. ``DATABASE_URL``/``REDIS_URL`` and the rest of the
environment pass through to pytest. Not collected by pytest itself (a suite inside the suite
would run forever); ``analytics/tests/test_restart.py`` is the in-suite restart test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from analytics.clickhouse import migrator
from analytics.clickhouse.client import ClickHouse, RawDecimal
from analytics.clickhouse.embedded_server import SpawnedServer, spawn

KEPT = "restart_suite_kept"
TOKEN = {"insert_deduplication_token": "restart-suite:ticks"}
ROOT = Path(__file__).resolve().parents[2]


def _pytest(server: SpawnedServer, extra: list[str], label: str) -> int:
    env = {**os.environ, "CLICKHOUSE_URL": f"clickhouse://default@{server.host}:{server.port}/"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "analytics", *extra]
    print(f"== {label}: {' '.join(command[1:])} (ClickHouse on port {server.port})", flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    print(f"== {label}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
    return code


def _ticks(rows: int) -> dict[str, Any]:
    """Three markets, one tick a second ending an hour ago (well inside every TTL)."""
    end = (int(time.time()) - 3600) * 10**9
    index = np.arange(rows, dtype=np.int64)
    price = 100 * 10**8 + (index * 7919) % 10**8
    return {
        "timestamp": end - (rows - index) * 10**9,
        "symbol": np.array(["BTC", "ETH", "SOL"])[index % 3],
        "exchange": np.full(rows, "paper"),
        "price": price,
        "volume": 10**8 + index % 1000,
        "sequence_number": (index + 1).astype(np.uint64),
    }


def _insert_kept_ticks(url: str) -> None:
    """The same rows under the same deduplication token every time it is called."""
    columns = _ticks(30_000)
    with ClickHouse(url, database=KEPT, pool_size=1) as client:
        client.insert_columns(
            "market_ticks_raw",
            {
                **columns,
                # Decimal columns as scaled integers: the client's RawDecimal fast path.
                "price": RawDecimal(columns["price"]),
                "volume": RawDecimal(columns["volume"]),
            },
            settings=TOKEN,
        )


def _write_kept(url: str) -> None:
    admin = ClickHouse(url, database="default", pool_size=1)
    try:
        migrator.migrate(admin, database=KEPT)
    finally:
        admin.close()
    _insert_kept_ticks(url)


def _snapshot(url: str) -> dict[str, Any]:
    with ClickHouse(url, database=KEPT, pool_size=1) as client:
        return {
            "tables": client.execute(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase() "
                "ORDER BY name"
            ),
            "ticks": client.execute(
                "SELECT symbol, count(), sum(price), sum(volume) FROM market_ticks_raw "
                "GROUP BY symbol ORDER BY symbol"
            ),
            "hourly": client.execute(
                "SELECT symbol, timestamp, argMinMerge(open), max(high), min(low), "
                "argMaxMerge(close), sum(volume), sum(trade_count) FROM market_ohlcv_1h "
                "GROUP BY symbol, timestamp ORDER BY symbol, timestamp"
            ),
        }


def _check_kept(url: str, before: dict[str, Any]) -> list[str]:
    problems = []
    after = _snapshot(url)
    if after != before:
        problems.append("the kept database answers differently after the restart")
    admin = ClickHouse(url, database="default", pool_size=1)
    try:
        if migrator.migrate(admin, database=KEPT).applied:
            problems.append("migrations were applied again: their record was not kept")
    finally:
        admin.close()
    # Same token, same rows: the deduplication log on disk must drop them.
    _insert_kept_ticks(url)
    if _snapshot(url) != before:
        problems.append("a retried insert with the same token added rows after the restart")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analytics.tests.restart_suite")
    parser.add_argument(
        "--keep", type=Path, help="directory to use and keep (default: a temporary one, removed "
        "after a passing run)",
    )  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="analytics-restart-suite-"))
    data, log = directory / "data", directory / "server.log"
    if data.exists() and any(data.iterdir()):
        print(f"{data} is not empty: the first run must start fresh", file=sys.stderr)
        return 2

    server = spawn(data, log_file=log)
    failures = []
    try:
        if _pytest(server, extra, "fresh server"):
            failures.append("the suite failed against the fresh server")
        _write_kept(server.url)
        before = _snapshot(server.url)
    finally:
        code = server.stop()
    if code != 0:
        failures.append(f"the server did not shut down cleanly (exit {code}); see {log}")

    server = spawn(data, log_file=log)
    try:
        failures += _check_kept(server.url, before)
        if _pytest(server, extra, "restarted server, data kept"):
            failures.append("the suite failed against the restarted server")
    finally:
        server.stop()
    kept_ticks = sum(row[1] for row in before["ticks"])
    print(f"== kept database: {len(before['tables'])} tables, {kept_ticks} ticks, "
          f"{len(before['hourly'])} hourly candles; data directory {directory}")  # fmt: skip
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("== restart suite: " + ("FAILED" if failures else "passed"), flush=True)
    if args.keep is None and not failures:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
