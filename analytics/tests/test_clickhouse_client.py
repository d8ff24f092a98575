"""analytics.clickhouse.client against the embedded server (no Django needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.clickhouse.client import (
    ClickHouse,
    ClickHouseError,
    InvalidIdentifierError,
    ParameterError,
    PoolTimeoutError,
    RawDecimal,
    ServerException,
    quote_identifier,
)
from analytics.clickhouse.embedded_server import SpawnedServer, spawn

pytestmark = pytest.mark.timeout(120)

DATABASE = "client_tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpawnedServer]:
    base = tmp_path_factory.mktemp("embedded-ch-client")
    spawned = spawn(base / "data", log_file=base / "server.log")
    yield spawned
    assert spawned.stop() == 0, (base / "server.log").read_text()


@pytest.fixture(scope="module")
def ch(server: SpawnedServer) -> Iterator[ClickHouse]:
    url = f"clickhouse://default:@{server.host}:{server.port}/{DATABASE}?max_threads=2"
    client = ClickHouse(url, settings={"max_execution_time": 30}, pool_size=4)
    client.ensure_database(DATABASE)
    yield client
    client.close()


def processes_like(ch: ClickHouse, fragment: str) -> int:
    rows = ch.execute(
        "SELECT count() FROM system.processes WHERE position(query, {f:String}) > 0 "
        "AND position(query, 'system.processes') = 0",
        {"f": fragment},
    )
    return int(rows[0][0])


# --------------------------------------------------------------------------- basics


def test_url_database_and_default_settings(ch: ClickHouse) -> None:
    assert ch.database == DATABASE
    assert ch.execute("SELECT currentDatabase()") == [(DATABASE,)]
    # URL query options clickhouse-driver does not know become default settings...
    assert ch.execute("SELECT getSetting('max_threads')") == [(2,)]
    assert ch.execute("SELECT getSetting('max_execution_time')") == [(30.0,)]
    # ...and per-call settings are merged over them for that call only.
    assert ch.execute("SELECT getSetting('max_threads')", settings={"max_threads": 1}) == [(1,)]
    assert ch.execute("SELECT getSetting('max_threads')") == [(2,)]
    assert ch.ping() is True


def test_ensure_database_and_missing_database(server: SpawnedServer, ch: ClickHouse) -> None:
    ch.ensure_database(DATABASE)  # idempotent
    missing = ClickHouse(f"clickhouse://default@{server.host}:{server.port}/not_created_yet")
    with pytest.raises(ServerException) as info:
        missing.execute("SELECT 1")
    assert info.value.code == 81
    missing.ensure_database("not_created_yet")
    assert missing.execute("SELECT currentDatabase()") == [("not_created_yet",)]
    missing.drop_database("not_created_yet")
    missing.close()


def test_query_helpers(ch: ClickHouse) -> None:
    ch.command(
        "CREATE TABLE IF NOT EXISTS helpers (id UInt32, name String) ENGINE = MergeTree ORDER BY id"
    )
    ch.insert_rows("helpers", ["id", "name"], [(1, "a"), (2, "b")])
    ch.insert_rows("helpers", ["name", "id"], [{"id": 3, "name": "c"}])
    sql = "SELECT id, name FROM helpers WHERE id >= {low:UInt32} ORDER BY id"
    assert ch.execute(sql, {"low": 2}) == [(2, "b"), (3, "c")]
    assert ch.query_dicts(sql, {"low": 3}) == [{"id": 3, "name": "c"}]
    assert ch.query_columns(sql, {"low": 1}) == {"id": (1, 2, 3), "name": ("a", "b", "c")}
    assert ch.query_columns(sql, {"low": 99}) == {"id": [], "name": []}
    numpy_cols = ch.query_columns(sql, {"low": 1}, numpy=True)
    assert isinstance(numpy_cols["id"], np.ndarray)
    assert numpy_cols["id"].tolist() == [1, 2, 3]
    assert list(ch.iter_rows(sql, {"low": 2}, chunk_size=1)) == [(2, "b"), (3, "c")]


# --------------------------------------------------------------------------- parameters

TRICKY = [
    "plain",
    "",
    "it's",
    "back\\slash",
    "\\'",
    "tab\there\nnewline\r\0nul",
    "unicode ✓ 漢字 🚀",
    "{other:String}",
    "%(x)s",
    "'; DROP TABLE victims; --",
    "\\N",
    "NULL",
]


@pytest.mark.parametrize("value", TRICKY)
def test_string_parameters_come_back_verbatim(ch: ClickHouse, value: str) -> None:
    assert ch.execute("SELECT {v:String}, length({v:String})", {"v": value}) == [
        (value, len(value.encode()))
    ]


def test_injection_is_data_not_sql(ch: ClickHouse) -> None:
    ch.command("CREATE TABLE IF NOT EXISTS victims (name String) ENGINE = Memory")
    ch.insert_rows("victims", ["name"], [("alice",)])
    for attack in ["alice' OR '1'='1", "x'); DROP TABLE victims; --", "alice\\' OR 1=1 --"]:
        assert ch.execute("SELECT count() FROM victims WHERE name = {n:String}", {"n": attack}) == [
            (0,)
        ]
    assert ch.execute("SELECT name FROM victims") == [("alice",)]


def test_parameters_of_many_types(ch: ClickHouse) -> None:
    aware = dt.datetime(2024, 5, 6, 9, 8, 7, 654321, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    params = {
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 0.1,
        "d": decimal.Decimal("-12345678.12345678"),
        "b": True,
        "day": dt.date(2024, 2, 29),
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "aware": aware,
        "null": None,
        "uid": uuid.UUID("6d1d2a8e-2f8f-4a8b-9f1c-1234567890ab"),
        "arr": ["a'b", "c\\d", "tab\t", ""],
        "nums": [1, 2, 3],
        "tup": (1, "x"),
        "m": {"k": 1, "it's": 2},
        "nested": [[1], [], [2, 3]],
        "nullable_arr": [1, None],
    }
    row = ch.execute(
        """
        SELECT {i:Int64}, {u:UInt64}, {f:Float64}, {d:Decimal(18, 8)}, {b:Bool}, {day:Date},
               {naive:DateTime64(6, 'UTC')}, {aware:DateTime64(6, 'UTC')}, {null:Nullable(String)},
               {uid:UUID}, {arr:Array(String)}, {nums:Array(UInt8)}, {tup:Tuple(UInt8, String)},
               {m:Map(String, UInt8)}, {nested:Array(Array(UInt8))},
               {nullable_arr:Array(Nullable(UInt8))}
        """,
        params,
    )[0]
    assert row == (
        -(2**63),
        2**64 - 1,
        0.1,
        decimal.Decimal("-12345678.12345678"),
        True,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC),
        aware,
        None,
        uuid.UUID("6d1d2a8e-2f8f-4a8b-9f1c-1234567890ab"),
        ["a'b", "c\\d", "tab\t", ""],
        [1, 2, 3],
        (1, "x"),
        {"k": 1, "it's": 2},
        [[1], [], [2, 3]],
        [1, None],
    )


def test_client_side_substitution_is_impossible(ch: ClickHouse) -> None:
    with pytest.raises(ParameterError):
        ch.execute("SELECT %(x)s", {"x": 1})
    with pytest.raises(ParameterError):
        ch.execute("SELECT {x:UInt8}", [(1,)])  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        ch.execute("SELECT 1", {"bad name": 1})
    with pytest.raises(ClickHouseError):
        ch.execute("SELECT 1", settings={"server_side_params": False})
    with pytest.raises(ParameterError):
        ch.execute("SELECT {x:String}", {"x": object()})


def test_identifiers_are_validated(ch: ClickHouse) -> None:
    assert quote_identifier("db.table_1") == "`db`.`table_1`"
    for bad in ["t; DROP TABLE x", "a`b", "1abc", "", "a.b.c", "name with space", "x--"]:
        with pytest.raises(InvalidIdentifierError):
            quote_identifier(bad)
    with pytest.raises(InvalidIdentifierError):
        ch.insert_rows("victims; DROP TABLE victims", ["name"], [("x",)])
    with pytest.raises(InvalidIdentifierError):
        ch.insert_columns("victims", {"name) VALUES": ["x"]})
    with pytest.raises(InvalidIdentifierError):
        ch.ensure_database("x; DROP DATABASE default")


# --------------------------------------------------------------------------- errors, pool


def test_server_errors_and_recovery(ch: ClickHouse) -> None:
    with pytest.raises(ServerException) as info:
        ch.execute("SELECT * FROM no_such_table")
    assert info.value.code == 60
    with pytest.raises(ServerException) as info:
        ch.execute("SELEKT 1")
    assert info.value.code == 62
    assert ch.execute("SELECT 1") == [(1,)]


def test_pool_is_thread_safe_and_bounded(server: SpawnedServer) -> None:
    url = f"clickhouse://default@{server.host}:{server.port}/default"
    pool = ClickHouse(url, pool_size=3, pool_timeout=10)
    results: list[int] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                value = pool.execute("SELECT {v:UInt32} + 1", {"v": worker * 100 + i})[0][0]
                results.append(value)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == sorted(w * 100 + i + 1 for w in range(8) for i in range(20))

    pool.close()

    small = ClickHouse(url, pool_size=2, pool_timeout=0.2)
    with small.connection(), small.connection(), pytest.raises(PoolTimeoutError):
        small.execute("SELECT 1")
    assert small.execute("SELECT 1") == [(1,)]
    small.close()


def test_broken_pooled_connection_reconnects(server: SpawnedServer) -> None:
    pool = ClickHouse(f"clickhouse://default@{server.host}:{server.port}/default", pool_size=1)
    assert pool.execute("SELECT 1") == [(1,)]
    with pool.connection() as client:
        old_socket = client.connection.socket
        old_socket.shutdown(socket.SHUT_RDWR)
    assert pool.execute("SELECT 2") == [(2,)]
    with pool.connection() as client:
        assert client.connection.socket is not old_socket
    pool.close()


def test_pool_survives_fork(ch: ClickHouse) -> None:
    assert ch.execute("SELECT 1") == [(1,)]  # the parent now holds an idle connection
    pid = os.fork()
    if pid == 0:  # child: must open its own connection, never reuse the parent's socket
        try:
            ok = ch.execute("SELECT 41 + 1") == [(42,)]
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ch.execute("SELECT 2") == [(2,)]


def test_leaving_iter_rows_early_cancels_the_query(ch: ClickHouse) -> None:
    rows = ch.iter_rows("SELECT number FROM numbers(2000000000)", chunk_size=1000)
    first = [next(rows) for _ in range(2500)]
    assert first[-1] == (2499,)
    rows.close()
    deadline = time.monotonic() + 10
    while processes_like(ch, "numbers(2000000000)") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_like(ch, "numbers(2000000000)") == 0
    assert ch.execute("SELECT 1") == [(1,)]


# --------------------------------------------------------------------------- inserts

TICKS_DDL = """
CREATE TABLE IF NOT EXISTS market_ticks_raw (
    timestamp DateTime64(9, 'UTC'), symbol LowCardinality(String),
    exchange LowCardinality(String), price Decimal(18, 8), bid_price Decimal(18, 8),
    ask_price Decimal(18, 8), volume Decimal(18, 8), funding_rate Decimal(10, 8),
    sequence_number UInt64
) ENGINE = MergeTree ORDER BY (symbol, exchange, timestamp)
"""


def test_insert_columns_numpy_ticks_round_trip(ch: ClickHouse) -> None:
    ch.command(TICKS_DDL)
    n = 25_000
    rng = np.random.default_rng(7)
    stamps = np.datetime64("2024-06-01T00:00:00", "ns") + np.arange(n) * np.timedelta64(1013, "ns")
    symbols = np.array(["BTC-PERP", "ETH-PERP", "SOL-PERP", "ünï-PERP"], dtype=object)[
        rng.integers(0, 4, n)
    ]
    raw_price = rng.integers(1, 10**15, n, dtype=np.int64)
    volume = np.round(rng.random(n) * 1000, 8)
    funding = rng.integers(-(10**8), 10**8, n, dtype=np.int64)
    inserted = ch.insert_columns(
        "market_ticks_raw",
        {
            "timestamp": stamps,
            "symbol": symbols,
            "exchange": pd.Categorical(np.where(np.arange(n) % 2, "binance", "okx")),
            "price": RawDecimal(raw_price),
            "bid_price": raw_price / 10**8,  # floats, rounded to the scale
            "ask_price": np.arange(n, dtype=np.int64),  # integers mean whole units
            "volume": volume,
            "funding_rate": RawDecimal(funding),
            "sequence_number": np.arange(n, dtype=np.uint64),
        },
        block_rows=4096,
    )
    assert inserted == n
    back = ch.execute(
        """
        SELECT toUnixTimestamp64Nano(timestamp), symbol, exchange,
               reinterpretAsInt64(price), toString(bid_price), toString(ask_price),
               toString(volume), reinterpretAsInt64(funding_rate), sequence_number
        FROM market_ticks_raw ORDER BY sequence_number
        """
    )
    assert len(back) == n
    ns, syms, exs, prices, bids, asks, vols, fundings, seqs = zip(*back, strict=True)
    assert list(ns) == stamps.view("i8").tolist()
    assert list(syms) == symbols.tolist()
    assert list(exs) == ["okx" if i % 2 == 0 else "binance" for i in range(n)]
    assert list(prices) == raw_price.tolist()
    assert [decimal.Decimal(b) for b in bids] == [
        decimal.Decimal(int(p)).scaleb(-8) for p in raw_price
    ]
    assert [decimal.Decimal(a) for a in asks] == [decimal.Decimal(i) for i in range(n)]
    assert [decimal.Decimal(v) for v in vols] == [
        decimal.Decimal(round(float(v) * 10**8)).scaleb(-8) for v in volume
    ]
    assert list(fundings) == funding.tolist()
    assert list(seqs) == list(range(n))


def test_insert_columns_generic_types_round_trip(ch: ClickHouse) -> None:
    ch.command(
        """
        CREATE TABLE IF NOT EXISTS generic_cols (
            id Int32, f Float32, day Date, at DateTime('UTC'), s String,
            maybe Nullable(Int64), tags Array(String), lcn LowCardinality(Nullable(String)),
            big Decimal(38, 10), uid UUID, ok Bool
        ) ENGINE = MergeTree ORDER BY id
        """
    )
    ids = np.array([3, 1, 2], dtype=np.int64)  # narrowed to Int32 with a range check
    inserted = ch.insert_columns(
        "generic_cols",
        {
            "id": ids,
            "f": np.array([1.5, -2.25, 0.0]),
            "day": np.array(["2024-01-01", "1999-12-31", "1970-01-01"], dtype="datetime64[D]"),
            "at": np.array(
                ["2024-01-01T12:00:00", "2000-01-01T00:00:00", "1970-01-01T00:00:01"],
                dtype="datetime64[s]",
            ),
            "s": ["x", "", "ü"],
            "maybe": [None, 5, -(2**63)],
            "tags": [["a"], [], ["b", "c"]],
            "lcn": ["p", None, "p"],
            "big": [decimal.Decimal("1.0000000001"), decimal.Decimal(0), decimal.Decimal("-5")],
            "uid": [uuid.UUID(int=i) for i in range(3)],
            "ok": np.array([True, False, True]),
        },
    )
    assert inserted == 3
    assert ch.execute("SELECT * FROM generic_cols ORDER BY id") == [
        (1, -2.25, dt.date(1999, 12, 31), dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "", 5, [],
         None, decimal.Decimal(0), uuid.UUID(int=1), False),
        (2, 0.0, dt.date(1970, 1, 1), dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC), "ü",
         -(2**63), ["b", "c"], "p", decimal.Decimal(-5), uuid.UUID(int=2), True),
        (3, 1.5, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC), "x", None,
         ["a"], "p", decimal.Decimal("1.0000000001"), uuid.UUID(int=0), True),
    ]  # fmt: skip


def test_insert_columns_rejects_bad_input_before_sending(ch: ClickHouse) -> None:
    ch.command(TICKS_DDL)
    before = ch.execute("SELECT count() FROM market_ticks_raw")
    base = {"sequence_number": np.arange(3, dtype=np.uint64)}
    with pytest.raises(OverflowError):
        ch.insert_columns("market_ticks_raw", {**base, "price": np.array([1.0, 2.0, 1e12])})
    with pytest.raises(ValueError, match="NaN"):
        ch.insert_columns("market_ticks_raw", {**base, "price": np.array([1.0, np.nan, 2.0])})
    with pytest.raises(TypeError):
        ch.insert_columns("market_ticks_raw", {**base, "symbol": np.array(["a", None, "b"])})
    with pytest.raises(ClickHouseError, match="lengths"):
        ch.insert_columns("market_ticks_raw", {**base, "price": np.array([1.0])})
    with pytest.raises(ServerException) as info:
        ch.insert_columns("no_such_table", base)
    assert info.value.code == 60
    assert ch.execute("SELECT count() FROM market_ticks_raw") == before


def test_insert_rows_many_blocks(ch: ClickHouse, tmp_path: Path) -> None:
    ch.command("CREATE TABLE IF NOT EXISTS many (a UInt64, b String) ENGINE = Memory")
    rows = [(i, f"row-{i}") for i in range(30_000)]
    assert ch.insert_rows("many", ["a", "b"], rows, settings={"insert_block_size": 7_000}) == 30_000
    assert ch.execute("SELECT count(), sum(a), max(b) FROM many") == [
        (30_000, sum(range(30_000)), "row-9999")
    ]
