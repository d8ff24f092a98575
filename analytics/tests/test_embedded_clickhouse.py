"""The embedded ClickHouse server, exercised through clickhouse-driver as a real client.

Runs without Django: ``pytest -p no:django analytics/tests/test_embedded_clickhouse.py``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException
from clickhouse_driver.protocol import Compression, ServerPacketTypes

from analytics.clickhouse.embedded_server import (
    EXIT_BAD_DIRECTORY,
    EXIT_LOCKED,
    SERVER_REVISION,
    SpawnedServer,
    parse_insert,
    spawn,
    strip_format_clause,
    unquote_parameter,
)
from analytics.clickhouse.native import (
    BLOCK_INFO,
    ByteStream,
    UnsupportedTypeError,
    codec_for,
    encode_str,
    encode_varint,
    read_block,
    split_native,
)

pytestmark = pytest.mark.timeout(120)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpawnedServer]:
    base = tmp_path_factory.mktemp("embedded-ch")
    spawned = spawn(base / "data", log_file=base / "server.log")
    yield spawned
    assert spawned.stop() == 0, (base / "server.log").read_text()
    assert not spawned.state_file.exists()


def make_client(server: SpawnedServer, **kwargs: object) -> Client:
    settings = {"server_side_params": True, **kwargs.pop("settings", {})}  # type: ignore[dict-item]
    return Client(server.host, port=server.port, settings=settings, **kwargs)


@pytest.fixture
def client(server: SpawnedServer) -> Iterator[Client]:
    c = make_client(server)
    yield c
    c.disconnect()


def run_server_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics.clickhouse.embedded_server", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --------------------------------------------------------------------------- handshake


def test_handshake_server_info_and_state_file(server: SpawnedServer, client: Client) -> None:
    assert client.execute("SELECT 1") == [(1,)]
    info = client.connection.server_info
    assert info.name == "ClickHouse"
    assert info.revision == SERVER_REVISION
    assert info.used_revision == SERVER_REVISION
    assert info.version_major >= 24
    assert info.timezone
    assert info.display_name
    state = json.loads(server.state_file.read_text())
    assert state["pid"] == server.process.pid
    assert (state["host"], state["port"]) == (server.host, server.port)
    assert Path(state["path"]).name == "data"
    assert dt.datetime.fromisoformat(state["started_at"]).tzinfo is not None


def test_ping(client: Client) -> None:
    client.execute("SELECT 1")
    socket_before = client.connection.socket
    assert client.connection.ping() is True
    assert client.connection.ping() is True
    assert client.execute("SELECT 2") == [(2,)]
    assert client.connection.socket is socket_before


def test_unknown_database_in_hello_is_refused(server: SpawnedServer) -> None:
    c = make_client(server, database="no_such_db")
    with pytest.raises(ServerException) as info:
        c.execute("SELECT 1")
    assert info.value.code == 81


# --------------------------------------------------------------------------- types

TYPES_QUERY = """
SELECT
    toUInt8(255) AS u8, toUInt16(65535) AS u16, toUInt32(4294967295) AS u32,
    toUInt64(18446744073709551615) AS u64,
    toUInt128('340282366920938463463374607431768211455') AS u128,
    toUInt256('1' || repeat('0', 70)) AS u256,
    toInt8(-128) AS i8, toInt16(-32768) AS i16, toInt32(-2147483648) AS i32,
    toInt64(-9223372036854775808) AS i64,
    toInt128('-170141183460469231731687303715884105728') AS i128,
    toInt256('-1' || repeat('0', 70)) AS i256,
    toFloat32(1.5) AS f32, toFloat64(-2.25e-300) AS f64,
    toDecimal32('-1234.56', 2) AS d32, toDecimal64('123456789.12345678', 8) AS d64,
    toDecimal128('-12345678901234567890.123456789', 9) AS d128,
    toDecimal256('1234567890123456789012345678901234567890.5', 1) AS d256,
    toDate('2024-02-29') AS d, toDate32('1900-01-01') AS d32_,
    toDateTime('2024-01-02 03:04:05', 'UTC') AS dt_utc,
    toDateTime('2024-01-02 03:04:05', 'Europe/Berlin') AS dt_berlin,
    toDateTime(1700000000) AS dt_server,
    toDateTime64('2024-01-02 03:04:05.123456789', 9, 'Asia/Tokyo') AS dt64_tokyo,
    toDateTime64('1969-12-31 23:59:59.999', 3, 'UTC') AS dt64_neg,
    'héllo wörld ✓ 漢字 🚀' AS s_unicode, '' AS s_empty, toFixedString('ab', 4) AS fs,
    CAST(NULL, 'Nullable(Int32)') AS n_null, CAST(7, 'Nullable(Int32)') AS n_val,
    [1, 2, 3] AS arr, [['a', ''], [], ['b']] AS arr_nested, CAST([], 'Array(String)') AS arr_empty,
    (1, 'x', 2.5) AS tup, CAST((5, 'y'), 'Tuple(a UInt8, b String)') AS tup_named,
    map('k1', 1, 'k2', 2) AS m, toLowCardinality('low') AS lc,
    CAST(NULL, 'LowCardinality(Nullable(String))') AS lc_null,
    [toLowCardinality('p'), toLowCardinality('q')] AS arr_lc,
    toUUID('6d1d2a8e-2f8f-4a8b-9f1c-1234567890ab') AS u,
    CAST('b', 'Enum8(\\'a\\' = 1, \\'b\\' = -2)') AS e8,
    CAST('y', 'Enum16(\\'x\\' = 1000, \\'y\\' = 2000)') AS e16,
    true AS b_true, false AS b_false, toIPv4('10.1.2.3') AS ip4, toIPv6('2001:db8::1') AS ip6,
    NULL AS nothing, map('a', [1, 2]) AS m_arr, [(1, 'z')] AS arr_tup
"""

EXPECTED_TYPES = [
    ("u8", "UInt8", 255),
    ("u16", "UInt16", 65535),
    ("u32", "UInt32", 4294967295),
    ("u64", "UInt64", 18446744073709551615),
    ("u128", "UInt128", 340282366920938463463374607431768211455),
    ("u256", "UInt256", 10**70),
    ("i8", "Int8", -128),
    ("i16", "Int16", -32768),
    ("i32", "Int32", -2147483648),
    ("i64", "Int64", -9223372036854775808),
    ("i128", "Int128", -170141183460469231731687303715884105728),
    ("i256", "Int256", -(10**70)),
    ("f32", "Float32", 1.5),
    ("f64", "Float64", -2.25e-300),
    ("d32", "Decimal(9, 2)", decimal.Decimal("-1234.56")),
    ("d64", "Decimal(18, 8)", decimal.Decimal("123456789.12345678")),
    ("d128", "Decimal(38, 9)", decimal.Decimal("-12345678901234567890.123456789")),
    ("d256", "Decimal(76, 1)", decimal.Decimal("1234567890123456789012345678901234567890.5")),
    ("d", "Date", dt.date(2024, 2, 29)),
    ("d32_", "Date32", dt.date(1900, 1, 1)),
    ("dt_utc", "DateTime('UTC')", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    ("dt_berlin", "DateTime('Europe/Berlin')", dt.datetime(2024, 1, 2, 2, 4, 5, tzinfo=dt.UTC)),
    ("dt_server", "DateTime", dt.datetime(2023, 11, 14, 22, 13, 20)),
    (
        "dt64_tokyo",
        "DateTime64(9, 'Asia/Tokyo')",
        dt.datetime(2024, 1, 1, 18, 4, 5, 123457, tzinfo=dt.UTC),
    ),
    ("dt64_neg", "DateTime64(3, 'UTC')", dt.datetime(1969, 12, 31, 23, 59, 59, 999000, dt.UTC)),
    ("s_unicode", "String", "héllo wörld ✓ 漢字 🚀"),
    ("s_empty", "String", ""),
    ("fs", "FixedString(4)", "ab"),
    ("n_null", "Nullable(Int32)", None),
    ("n_val", "Nullable(Int32)", 7),
    ("arr", "Array(UInt8)", [1, 2, 3]),
    ("arr_nested", "Array(Array(String))", [["a", ""], [], ["b"]]),
    ("arr_empty", "Array(String)", []),
    ("tup", "Tuple(UInt8, String, Float64)", (1, "x", 2.5)),
    ("tup_named", "Tuple(a UInt8, b String)", (5, "y")),
    ("m", "Map(String, UInt8)", {"k1": 1, "k2": 2}),
    ("lc", "LowCardinality(String)", "low"),
    ("lc_null", "LowCardinality(Nullable(String))", None),
    ("arr_lc", "Array(LowCardinality(String))", ["p", "q"]),
    ("u", "UUID", uuid.UUID("6d1d2a8e-2f8f-4a8b-9f1c-1234567890ab")),
    ("e8", "Enum8('b' = -2, 'a' = 1)", "b"),
    ("e16", "Enum16('x' = 1000, 'y' = 2000)", "y"),
    ("b_true", "Bool", True),
    ("b_false", "Bool", False),
    ("ip4", "IPv4", ipaddress.IPv4Address("10.1.2.3")),
    ("ip6", "IPv6", ipaddress.IPv6Address("2001:db8::1")),
    ("nothing", "Nullable(Nothing)", None),
    ("m_arr", "Map(String, Array(UInt8))", {"a": [1, 2]}),
    ("arr_tup", "Array(Tuple(UInt8, String))", [(1, "z")]),
]


def test_select_every_type_family_round_trips(client: Client) -> None:
    rows, columns = client.execute(
        TYPES_QUERY, with_column_types=True, settings={"namedtuple_as_json": False}
    )
    assert [name for name, _ in columns] == [name for name, _, _ in EXPECTED_TYPES]
    assert [t for _, t in columns] == [t for _, t, _ in EXPECTED_TYPES]
    assert len(rows) == 1
    for (name, _type, expected), value in zip(EXPECTED_TYPES, rows[0], strict=True):
        if isinstance(expected, dt.datetime) and expected.tzinfo is not None:
            assert value == expected, name  # aware datetimes compare by instant
            assert value.tzinfo is not None, name
        else:
            assert value == expected, name
            assert type(value) is type(expected), name


def test_many_rows_of_composite_types_across_blocks(client: Client) -> None:
    rows = client.execute(
        """
        SELECT number, toString(number) AS s, if(number % 3 = 0, NULL, number) AS n,
               range(number % 4) AS arr, toLowCardinality(toString(number % 5)) AS lc,
               CAST(if(number % 2 = 0, NULL, toString(number % 3)),
                    'LowCardinality(Nullable(String))') AS lcn,
               map(toString(number % 2), [toLowCardinality(toString(number))]) AS m
        FROM numbers(5000)
        """,
        settings={"max_block_size": 333},
    )
    assert len(rows) == 5000
    for i, (number, s, n, arr, lc, lcn, m) in enumerate(rows):
        assert number == i
        assert s == str(i)
        assert n == (None if i % 3 == 0 else i)
        assert arr == list(range(i % 4))
        assert lc == str(i % 5)
        assert lcn == (None if i % 2 == 0 else str(i % 3))
        assert m == {str(i % 2): [str(i)]}


def test_large_result_is_streamed_in_many_blocks(client: Client) -> None:
    n = 2_500_000
    count = total = weighted = 0
    for number, tripled in client.execute_iter(
        "SELECT number, number * 3 FROM numbers({n:UInt64})",
        {"n": n},
        settings={"max_block_size": 50_000},
    ):
        count += 1
        total += number
        weighted += tripled
    assert count == n
    assert total == n * (n - 1) // 2
    assert weighted == 3 * total
    assert client.last_query.profile_info.blocks >= n // 50_000
    assert client.last_query.profile_info.rows == n


def test_empty_result_still_has_header(client: Client) -> None:
    rows, columns = client.execute(
        "SELECT number AS a, toString(number) AS b FROM numbers(10) WHERE number > 100",
        with_column_types=True,
    )
    assert rows == []
    assert columns == [("a", "UInt64"), ("b", "String")]


def test_format_clause_is_ignored_like_over_tcp(client: Client) -> None:
    assert client.execute("SELECT 1 AS x FORMAT JSONEachRow") == [(1,)]


# --------------------------------------------------------------------------- parameters


def test_server_side_parameters_of_several_types(client: Client) -> None:
    injection = "x'); DROP TABLE victims; --"
    tricky = "quote ' backslash \\ tab \t newline \n unicode ✓ {other:String} %(x)s"
    client.execute("CREATE TABLE IF NOT EXISTS victims (a UInt8) ENGINE = Memory")
    rows = client.execute(
        """
        SELECT {s:String}, {t:String}, {u:UInt64}, {i:Int32}, {f:Float64}, {d:Date},
               {dt:DateTime('UTC')}, {arr:Array(String)}, {e:String}
        """,
        {
            "s": injection,
            "t": tricky,
            "u": 18446744073709551615,
            "i": -42,
            "f": 0.1,
            "d": dt.date(2024, 5, 6),
            "dt": dt.datetime(2024, 5, 6, 7, 8, 9),
            "arr": ["a'b", "c\\d", ""],
            "e": "",
        },
    )
    assert rows == [
        (
            injection,
            tricky,
            18446744073709551615,
            -42,
            0.1,
            dt.date(2024, 5, 6),
            dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
            ["a'b", "c\\d", ""],
            "",
        )
    ]
    # The value was data, never SQL: the table is still there.
    assert client.execute("EXISTS TABLE victims") == [(1,)]
    assert client.execute(
        "SELECT count() FROM victims WHERE toString(a) = {v:String}", {"v": "0 OR 1=1"}
    ) == [(0,)]


def test_missing_parameter_is_a_server_error(client: Client) -> None:
    with pytest.raises(ServerException) as info:
        client.execute("SELECT {x:UInt8}")
    assert info.value.code == 456


# --------------------------------------------------------------------------- inserts


def test_insert_rows_and_numpy_columns_read_back_exactly(server: SpawnedServer) -> None:
    c = make_client(server)
    c.execute(
        """
        CREATE TABLE ins_rows (
            id UInt32, name String, lc LowCardinality(String), price Decimal(18, 8),
            ts DateTime64(6, 'UTC'), tags Array(String), maybe Nullable(Float64),
            flag Bool, day Date, amount Decimal(38, 10) DEFAULT 0,
            doubled UInt64 MATERIALIZED id * 2
        ) ENGINE = MergeTree ORDER BY id
        """
    )
    ts = dt.datetime(2024, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    rows = [
        (1, "alpha", "x", decimal.Decimal("1.00000001"), ts, ["a", "b"], None, True,
         dt.date(2024, 1, 1), decimal.Decimal("12345678901234567890.0123456789")),
        (2, "", "y", decimal.Decimal("-99999999.99999999"), ts, [], 2.5, False,
         dt.date(1970, 1, 1), decimal.Decimal("0")),
    ]  # fmt: skip
    assert c.execute("INSERT INTO ins_rows VALUES", rows) == 2
    back = c.execute("SELECT * FROM ins_rows ORDER BY id")
    assert back == rows
    assert c.execute("SELECT doubled FROM ins_rows ORDER BY id") == [(2,), (4,)]

    # Column subset in a different order; defaults fill the rest.
    assert c.execute("INSERT INTO ins_rows (name, id) VALUES", [("gamma", 3)]) == 1
    assert c.execute("SELECT name, lc, price, amount FROM ins_rows WHERE id = 3") == [
        ("gamma", "", decimal.Decimal(0), decimal.Decimal(0))
    ]

    n = 10_000
    np_client = make_client(server, settings={"use_numpy": True})
    ids = np.arange(100, 100 + n, dtype=np.uint32)
    names = np.array([f"name-{i}" for i in range(n)], dtype=object)
    lcs = np.array(["k1", "k2", "k3"], dtype=object)[np.arange(n) % 3]
    stamps = np.datetime64("2024-01-01T00:00:00", "us") + np.arange(n).astype("timedelta64[ms]")
    inserted = np_client.execute(
        "INSERT INTO ins_rows (id, name, lc, ts) VALUES", [ids, names, lcs, stamps], columnar=True
    )
    assert inserted == n
    got = np_client.execute(
        "SELECT id, name, lc, ts FROM ins_rows WHERE id >= 100 ORDER BY id", columnar=True
    )
    assert np.array_equal(got[0], ids)
    assert list(got[1]) == list(names)
    assert list(got[2]) == list(lcs)
    assert np.array_equal(got[3].astype("datetime64[us]"), stamps)
    c.disconnect()
    np_client.disconnect()


def test_insert_values_inline_select_and_input_function(client: Client) -> None:
    client.execute("CREATE TABLE ins_misc (a UInt32, b String) ENGINE = MergeTree ORDER BY a")
    client.execute("INSERT INTO ins_misc VALUES (1, 'one'), (2, 'two')")
    client.execute("INSERT INTO ins_misc SELECT number + 10, toString(number) FROM numbers(3)")
    inserted = client.execute(
        "INSERT INTO ins_misc (a, b) SELECT x * 100, concat(y, '!') "
        "FROM input('x UInt32, y String')",
        [(1, "p"), (2, "q")],
    )
    assert inserted == 2
    assert client.execute("SELECT a, b FROM ins_misc ORDER BY a") == [
        (1, "one"), (2, "two"), (10, "0"), (11, "1"), (12, "2"), (100, "p!"), (200, "q!"),
    ]  # fmt: skip


def test_insert_into_missing_table_and_column(client: Client) -> None:
    with pytest.raises(ServerException) as info:
        client.execute("INSERT INTO no_such_table (a) VALUES", [(1,)])
    assert info.value.code == 60
    client.execute("CREATE TABLE ins_cols (a UInt8) ENGINE = Memory")
    with pytest.raises(ServerException) as info:
        client.execute("INSERT INTO ins_cols (zzz) VALUES", [(1,)])
    assert info.value.code == 16
    assert client.execute("SELECT count() FROM ins_cols") == [(0,)]


def test_external_tables(client: Client) -> None:
    rows = client.execute(
        "SELECT sum(x), groupArray(s) FROM ext",
        external_tables=[
            {
                "name": "ext",
                "structure": [("x", "UInt32"), ("s", "String")],
                "data": [{"x": 1, "s": "a"}, {"x": 2, "s": "b"}],
            }
        ],
    )
    assert rows == [(3, ["a", "b"])]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("sql", "code"),
    [("SELECT * FROM missing_table", 60), ("SELEC 1", 62), ("SELECT nosuchfunction(1)", 46)],
)
def test_errors_carry_clickhouse_codes(client: Client, sql: str, code: int) -> None:
    with pytest.raises(ServerException) as info:
        client.execute(sql)
    assert info.value.code == code
    assert "DB::Exception" in info.value.message
    assert client.execute("SELECT 'still works'") == [("still works",)]


def test_same_tcp_connection_survives_an_exception(client: Client) -> None:
    client.execute("SELECT 1")
    conn = client.connection
    sock = conn.socket

    conn.send_query("SELECT * FROM missing_table")
    conn.send_external_tables(None)
    packet = conn.receive_packet()
    assert packet.type == ServerPacketTypes.EXCEPTION
    assert packet.exception.code == 60

    conn.send_query("SELECT 7")
    conn.send_external_tables(None)
    data = []
    while (packet := conn.receive_packet()).type != ServerPacketTypes.END_OF_STREAM:
        if packet.type == ServerPacketTypes.DATA and packet.block.num_rows:
            data.extend(packet.block.get_rows())
    assert data == [(7,)]
    assert conn.socket is sock


def test_unsupported_result_type_fails_clearly(client: Client) -> None:
    with pytest.raises(ServerException) as info:
        client.execute("SELECT uniqState(number) FROM numbers(10)")
    assert info.value.code == 48
    assert "AggregateFunction(uniq, UInt64)" in info.value.message
    assert client.execute("SELECT 1") == [(1,)]


def test_compression_is_refused_with_a_clear_error(client: Client) -> None:
    client.execute("SELECT 1")
    conn = client.connection
    conn.compression = Compression.ENABLED
    conn.send_query("SELECT 1")
    conn.send_external_tables(None)
    packet = conn.receive_packet()
    assert packet.type == ServerPacketTypes.EXCEPTION
    assert "compression" in packet.exception.message
    client.disconnect()


# --------------------------------------------------------------------------- settings


def test_query_settings_apply_to_one_query_only(client: Client) -> None:
    default_threads = client.execute("SELECT getSetting('max_threads')")[0][0]
    assert client.execute("SELECT getSetting('max_threads')", settings={"max_threads": 1}) == [(1,)]
    assert client.execute("SELECT getSetting('max_threads')") == [(default_threads,)]
    with pytest.raises(ServerException) as info:
        client.execute("SELECT number FROM numbers(100)", settings={"max_result_rows": 10})
    assert info.value.code == 396
    with pytest.raises(ServerException) as info:
        client.execute("CREATE TABLE ro_test (a UInt8) ENGINE = Memory", settings={"readonly": 1})
    assert info.value.code == 164
    assert client.execute("SELECT count() FROM numbers(5)", settings={"readonly": 1}) == [(5,)]
    assert client.execute("EXISTS TABLE ro_test") == [(0,)]
    with pytest.raises(ServerException) as info:
        client.execute(
            "SELECT sleepEachRow(0.3) FROM numbers(10)",
            settings={"max_execution_time": 1, "max_block_size": 1},
        )
    assert info.value.code == 159
    # Unknown settings are ignored unless the client marks them important.
    assert client.execute("SELECT 1", settings={"no_such_setting_xyz": 1}) == [(1,)]


def test_unknown_important_setting_is_rejected(server: SpawnedServer) -> None:
    c = make_client(server, settings_is_important=True)
    with pytest.raises(ServerException) as info:
        c.execute("SELECT 1", settings={"no_such_setting_xyz": 1})
    assert info.value.code == 115


def test_session_state_persists_per_connection(server: SpawnedServer) -> None:
    a, b = make_client(server), make_client(server)
    a.execute("CREATE DATABASE IF NOT EXISTS sess_db")
    a.execute("USE sess_db")
    assert a.execute("SELECT currentDatabase()") == [("sess_db",)]
    assert b.execute("SELECT currentDatabase()") == [("default",)]
    a.disconnect()
    b.disconnect()


# --------------------------------------------------------------------------- cancel, concurrency

SLOW_ROWS = (
    "SELECT sleepEachRow(0.05), number FROM numbers(400) "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 100000000"
)
SLOW_BLOCK = (
    "SELECT sleepEachRow(0.5), number FROM numbers(40) "
    "SETTINGS max_block_size = 100, function_sleep_max_microseconds_per_block = 100000000"
)


@pytest.mark.parametrize("sql", [SLOW_ROWS, SLOW_BLOCK], ids=["between-blocks", "inside-block"])
def test_cancel_stops_the_query_and_keeps_the_connection(client: Client, sql: str) -> None:
    client.execute("SELECT 1")
    sock = client.connection.socket
    started = time.monotonic()
    progress = client.execute_with_progress(sql)
    for _rows, _total in progress:
        if time.monotonic() - started > 0.4:
            break
    cancel_started = time.monotonic()
    client.cancel()
    assert time.monotonic() - cancel_started < 3.0  # the query alone would take 20 s
    assert client.execute("SELECT 'after cancel'") == [("after cancel",)]
    assert client.connection.socket is sock
    running = client.execute(
        "SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow%' "
        "AND query NOT LIKE '%system.processes%'"
    )
    assert running == [(0,)]


def test_client_disconnect_mid_stream_cancels_the_query(server: SpawnedServer) -> None:
    c = make_client(server)
    rows = c.execute_iter(
        "SELECT number FROM numbers(1000000000)", settings={"max_block_size": 1000}
    )
    for _ in zip(range(5000), rows, strict=False):
        pass
    c.disconnect()
    observer = make_client(server)
    deadline = time.monotonic() + 10
    while True:
        running = observer.execute(
            "SELECT count() FROM system.processes WHERE query LIKE '%numbers(1000000000)%' "
            "AND query NOT LIKE '%system.processes%'"
        )
        if running == [(0,)] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert running == [(0,)]
    observer.disconnect()


def test_two_concurrent_connections(server: SpawnedServer) -> None:
    slow, fast = make_client(server), make_client(server)
    fast.execute("SELECT 1")
    result: list[object] = []

    def run_slow() -> None:
        result.append(slow.execute(SLOW_BLOCK.replace("numbers(40)", "numbers(3)")))

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert fast.connection.ping()
    assert fast.execute("SELECT count() FROM numbers(1000)") == [(1000,)]
    assert time.monotonic() - started < 1.0  # not queued behind the 1.5 s query
    thread.join()
    assert len(result[0]) == 3  # type: ignore[arg-type]
    slow.disconnect()
    fast.disconnect()


# --------------------------------------------------------------------------- lifecycle


def test_restart_keeps_data_and_second_server_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "clickhouse"
    first = spawn(data_dir, log_file=tmp_path / "first.log")
    try:
        c = Client(first.host, port=first.port)
        c.execute("CREATE TABLE kept (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
        c.execute("INSERT INTO kept VALUES", [(1, "one"), (2, "two")])
        c.disconnect()

        second = run_server_cli("--path", str(data_dir), "--state-file", str(tmp_path / "2.json"))
        assert second.returncode == EXIT_LOCKED
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert str(data_dir) in lines[0]
        assert "locked by another process" in lines[0]
        assert f"pid {first.process.pid}" in lines[0]
        assert "Traceback" not in second.stderr
    finally:
        assert first.stop() == 0
    assert not first.state_file.exists()

    again = spawn(data_dir, log_file=tmp_path / "again.log")
    try:
        c = Client(again.host, port=again.port)
        assert c.execute("SELECT a, s FROM kept ORDER BY a") == [(1, "one"), (2, "two")]
        c.disconnect()
    finally:
        assert again.stop() == 0


def test_unusable_directories_are_refused_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for path, reason in [
        (blocker / "clickhouse", "cannot be created"),
        (blocker, "cannot be created"),
        (Path("/proc/self/clickhouse-data"), "cannot be created"),
    ]:
        result = run_server_cli("--path", str(path))
        assert result.returncode == EXIT_BAD_DIRECTORY, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert str(path) in lines[0]
        assert reason in lines[0]
        assert lines[0].startswith("embedded ClickHouse: data directory")


# --------------------------------------------------------------------------- codec and SQL helpers


def _native_sample(rows: int) -> bytes:
    """A hand-encoded Native block: UInt32, String, LowCardinality(String), Array(String)."""
    out = bytearray(encode_varint(4) + encode_varint(rows))
    out += encode_str("id") + encode_str("UInt32")
    out += np.arange(rows, dtype="<u4").tobytes()
    out += encode_str("name") + encode_str("String")
    out += b"".join(encode_str(f"name-{i}" * (i % 3)) for i in range(rows))
    out += encode_str("lc") + encode_str("LowCardinality(String)")
    out += struct.pack("<QQQ", 1, (1 << 9) | (1 << 10), 3)
    out += b"".join(encode_str(k) for k in ("", "a", "bb"))
    out += struct.pack("<Q", rows) + (np.arange(rows) % 3).astype("<u1").tobytes()
    out += encode_str("tags") + encode_str("Array(String)")
    out += np.cumsum(np.arange(rows) % 2).astype("<u8").tobytes()
    out += b"".join(encode_str("t") for i in range(rows) if i % 2)
    return bytes(out)


@pytest.mark.parametrize("bufsize", [7, 1000, 65536, 1 << 20])
def test_block_reader_over_a_socket_with_any_buffer_size(bufsize: int) -> None:
    raw = _native_sample(20_000)
    sender, receiver = socket.socketpair()
    feeder = threading.Thread(target=sender.sendall, args=(raw,))
    feeder.start()
    receiver.settimeout(10)
    stream = ByteStream(receiver, bufsize=bufsize)
    block = read_block(stream, block_info=False, serialization_flags=False)
    feeder.join()
    assert block.rows == 20_000
    assert [c.type_name for c in block.columns] == [
        "UInt32", "String", "LowCardinality(String)", "Array(String)",
    ]  # fmt: skip
    assert b"".join(bytes(p) for p in block.native_pieces()) == raw
    assert b"".join(block.native_chunks()) == raw
    sender.close()
    receiver.close()


def test_split_native_and_protocol_framing() -> None:
    raw = _native_sample(10) + _native_sample(3)
    blocks = list(split_native(bytearray(raw)))
    assert [b.rows for b in blocks] == [10, 3]
    framed = b"".join(bytes(p) for p in blocks[1].protocol_pieces())
    assert framed.startswith(BLOCK_INFO)
    # One serialization-kind byte (0) after each column's type name.
    assert framed.count(encode_str("UInt32") + b"\x00") == 1


@pytest.mark.parametrize(
    "type_name",
    [
        "AggregateFunction(uniq, UInt64)",
        "JSON",
        "Variant(UInt8, String)",
        "Dynamic",
        "Object('json')",
    ],
)
def test_unsizable_types_are_named(type_name: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=re.escape(type_name)):
        codec_for(type_name)


@pytest.mark.parametrize(
    ("sql", "table", "columns", "chdb_sql"),
    [
        ("INSERT INTO t VALUES", "t", None, "INSERT INTO t "),
        ("insert into db.`my t` (a, `b c`, n.x) values ;", "db.`my t`", ["a", "b c", "n.x"],
         "insert into db.`my t` (a, `b c`, n.x) "),
        ("INSERT INTO t (a) SETTINGS async_insert = 0 FORMAT Native", "t", ["a"],
         "INSERT INTO t (a) SETTINGS async_insert = 0 "),
        ("INSERT INTO TABLE t -- comment\n VALUES", "t", None, "INSERT INTO TABLE t -- comment\n "),
    ],
)  # fmt: skip
def test_parse_insert_with_client_data(
    sql: str, table: str, columns: list[str] | None, chdb_sql: str
) -> None:
    plan = parse_insert(sql)
    assert plan is not None
    assert (plan.table, plan.columns, plan.chdb_sql) == (table, columns, chdb_sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, 'x')",
        "INSERT INTO t SELECT 1",
        "INSERT INTO t FORMAT CSV 1,2",
        "INSERT INTO FUNCTION file('x.csv') VALUES",
        "SELECT 1",
    ],
)
def test_parse_insert_leaves_other_statements_to_chdb(sql: str) -> None:
    assert parse_insert(sql) is None


def test_parse_insert_input_function() -> None:
    plan = parse_insert("INSERT INTO t (a) SELECT x * 2 FROM input('x UInt32')")
    assert plan is not None
    assert plan.input_structure == "x UInt32"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 FORMAT JSON", "SELECT 1  "),
        ("SELECT 1 FORMAT TSV SETTINGS max_threads = 1", "SELECT 1  SETTINGS max_threads = 1"),
        ("SELECT format FROM t", "SELECT format FROM t"),
        ("SELECT 'FORMAT JSON' AS x", "SELECT 'FORMAT JSON' AS x"),
        ("SELECT (SELECT 1 FORMAT JSON)", "SELECT (SELECT 1 FORMAT JSON)"),
    ],
)
def test_strip_format_clause(sql: str, expected: str) -> None:
    assert " ".join(strip_format_clause(sql).split()) == " ".join(expected.split())


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        ("'plain'", "plain"),
        ("'it\\'s'", "it's"),
        ("'a\\\\b'", "a\\b"),
        ("'100\\%'", "100\\%"),
        ("'\\x41\\n'", "A\n"),
        ("'\\\\N'", "\\N"),
        ("42", "42"),
    ],
)
def test_unquote_parameter(wire: str, text: str) -> None:
    assert unquote_parameter(wire) == text
