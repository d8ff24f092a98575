"""The project's one ClickHouse client: clickhouse-driver over the native TCP protocol.

Works the same against a real ClickHouse server and against the embedded server
(:mod:`analytics.clickhouse.embedded_server`).  Django-independent; settings glue lives
elsewhere.

Parameters are always bound by the server: queries use ``{name:Type}`` placeholders and
values travel in the Query packet's parameter section (``server_side_params``), never
formatted into SQL by Python.  ``%(name)s`` placeholders are rejected.  Identifiers
(tables, columns, databases) cannot be bound, so the helpers that build SQL from them
validate them against :data:`IDENTIFIER_RE` first.

Errors:

* ``clickhouse_driver.errors.ServerException`` (re-exported as :class:`ServerException`)
  for errors reported by the server; ``.code`` is ClickHouse's error code (60 unknown
  table, 62 syntax error, ...).
* ``clickhouse_driver.errors.NetworkError`` / ``SocketTimeoutError`` when the server
  cannot be reached.
* :class:`ClickHouseError` subclasses for misuse detected before anything is sent
  (:class:`InvalidIdentifierError`, :class:`ParameterError`, :class:`PoolTimeoutError`).

Columnar inserts (:meth:`ClickHouse.insert_columns`) encode numpy arrays straight into
Native column buffers (fixed-width types, Decimal(P<=18) as scaled integers, DateTime64,
LowCardinality(String) via one factorization) and hand them to the socket without
per-row Python work; other column types go through clickhouse-driver's own encoders.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import os
import re
import threading
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from clickhouse_driver import Client
from clickhouse_driver import errors as driver_errors
from clickhouse_driver.block import BlockInfo, RowOrientedBlock
from clickhouse_driver.columns.service import write_column
from clickhouse_driver.protocol import ClientPacketTypes
from clickhouse_driver.util.helpers import parse_url
from clickhouse_driver.varint import write_varint
from clickhouse_driver.writer import write_binary_str, write_binary_uint8

from analytics.clickhouse.native import decimal_width, parse_type

__all__ = [
    "IDENTIFIER_RE",
    "ClickHouse",
    "ClickHouseError",
    "InvalidIdentifierError",
    "NetworkError",
    "ParameterError",
    "PoolTimeoutError",
    "RawDecimal",
    "ServerException",
    "quote_identifier",
]

ServerException = driver_errors.ServerException
NetworkError = driver_errors.NetworkError

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_CLIENT_SIDE_PLACEHOLDER = re.compile(r"%\([^)]*\)[sdfr]")
_READ_ONLY_START = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.I)

DEFAULT_POOL_SIZE = 8
DEFAULT_INSERT_BLOCK_ROWS = 1_048_576
_DIRECT_SEND_MIN = 64 * 1024
_REV_CUSTOM_SERIALIZATION = 54454
_REV_TEMPORARY_TABLES = 50264

# Client-side settings of clickhouse-driver that this module manages itself.
_MANAGED_CLIENT_SETTINGS = frozenset({"server_side_params", "use_numpy"})


class ClickHouseError(Exception):
    """Misuse detected by this module before anything is sent to the server."""


class InvalidIdentifierError(ClickHouseError, ValueError):
    pass


class ParameterError(ClickHouseError, ValueError):
    pass


class PoolTimeoutError(ClickHouseError):
    pass


def quote_identifier(name: str) -> str:
    """Validate a table/column/database name (``db.table`` allowed) and backquote it."""
    if not isinstance(name, str):
        raise InvalidIdentifierError(f"identifier must be a string, got {type(name).__name__}")
    parts = name.split(".")
    if len(parts) > 2 or not all(IDENTIFIER_RE.match(part) for part in parts):
        raise InvalidIdentifierError(f"invalid ClickHouse identifier: {name!r}")
    return ".".join(f"`{part}`" for part in parts)


# ======================================================================================
# Parameters


class _WireParam:
    """A parameter value rendered by us; clickhouse-driver sends it as ``'<text>'``.

    The driver quotes objects it does not know without escaping them, which lets us
    control the exact text: ClickHouse unquotes it once (``readQuoted``) and then parses
    the result as the placeholder's type.  Rendering ourselves keeps microseconds of
    datetimes, sends ``NULL`` as ``\\N`` and renders Decimal exactly.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


_TSV_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "\t": "\\t",
        "\n": "\\n",
        "\r": "\\r",
        "\0": "\\0",
        "\b": "\\b",
        "\f": "\\f",
        "'": "\\'",
    }
)


def _quote_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{value.microsecond:06d}" if value.microsecond else text


def _literal(value: Any) -> str:
    """SQL literal form, used for elements inside arrays, tuples and maps."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal | np.integer | np.floating):
        return _scalar_text(value)
    if isinstance(value, list | tuple | dict | np.ndarray):
        return _composite_text(value)
    return _quote_literal(_scalar_text(value))


def _composite_text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return "[" + ", ".join(_literal(v) for v in value) + "]"


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return _format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return _scalar_text(value.value)
    if isinstance(value, np.datetime64):
        return _format_datetime(pd.Timestamp(value).to_pydatetime())
    raise ParameterError(f"cannot bind a parameter of type {type(value).__name__}")


def encode_parameter(value: Any) -> _WireParam:
    """The wire form of one bound parameter (see :class:`_WireParam`)."""
    if value is None:
        text = "\\N"
    elif isinstance(value, list | tuple | dict | np.ndarray):
        text = _composite_text(value)
    else:
        text = _scalar_text(value).translate(_TSV_ESCAPES)
    # Second layer: the quoted-string escaping ClickHouse removes before parsing.
    return _WireParam(text.replace("\\", "\\\\").replace("'", "\\'"))


def _encode_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise ParameterError(
            "params must be a mapping of {name:Type} placeholder values; "
            "use insert_rows()/insert_columns() for data"
        )
    if _CLIENT_SIDE_PLACEHOLDER.search(sql):
        raise ParameterError(
            "client-side %(name)s placeholders are not supported: use {name:Type}, "
            "which the server binds"
        )
    for name in params:
        if not isinstance(name, str) or not IDENTIFIER_RE.match(name):
            raise ParameterError(f"invalid parameter name: {name!r}")
    return {name: encode_parameter(value) for name, value in params.items()}


# ======================================================================================
# Columnar insert encoders


@dataclass(frozen=True)
class RawDecimal:
    """Integers already scaled to a Decimal column's scale (123.45 in Decimal(18, 2) is 12345).

    Fastest way to insert decimals: the values are the column's wire representation.
    """

    values: np.ndarray


class _Encoder:
    """Writes one column of a block; conversion happens per block so the first block
    leaves while later ones are still being encoded."""

    def write(self, conn: Any, start: int, stop: int) -> None:
        raise NotImplementedError


def _send_buffer(conn: Any, data: np.ndarray) -> None:
    view = np.ascontiguousarray(data).data.cast("B")
    if len(view) >= _DIRECT_SEND_MIN:
        conn.fout.flush()
        conn.socket.sendall(view)
    else:
        conn.fout.write(view.tobytes())


class _FixedEncoder(_Encoder):
    def __init__(self, values: np.ndarray, convert: Any = None) -> None:
        self.values = values
        self.convert = convert

    def write(self, conn: Any, start: int, stop: int) -> None:
        chunk = self.values[start:stop]
        _send_buffer(conn, self.convert(chunk) if self.convert is not None else chunk)


class _LowCardinalityEncoder(_Encoder):
    _HAS_ADDITIONAL_KEYS = 1 << 9
    _NEED_UPDATE_DICTIONARY = 1 << 10

    def __init__(self, name: str, type_name: str, values: Any) -> None:
        self.name = name
        self.type_name = type_name
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            values = values.array
        self.categorical = values if isinstance(values, pd.Categorical) else None
        # None/NaN shows up as code -1 when each block is factorized; an upfront pd.isna()
        # pass would cost as much as the factorization itself.
        self.values = None if self.categorical is not None else _as_array(values)

    def _encode(self, start: int, stop: int) -> tuple[np.ndarray, list[str]]:
        if self.categorical is not None:
            codes = np.asarray(self.categorical.codes[start:stop])
            keys = list(self.categorical.categories)
        else:
            assert self.values is not None
            codes, uniques = pd.factorize(self.values[start:stop], use_na_sentinel=True)
            keys = list(uniques)
        if len(codes) and codes.min() < 0:
            raise TypeError(f"column {self.name}: None/NaN in non-Nullable {self.type_name}")
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"column {self.name}: {self.type_name} needs str values")
        return codes, keys

    def write(self, conn: Any, start: int, stop: int) -> None:
        codes, keys = self._encode(start, stop)
        if len(keys) <= 0x100:
            index_type, dtype = 0, "<u1"
        elif len(keys) <= 0x10000:
            index_type, dtype = 1, "<u2"
        elif len(keys) <= 0x100000000:
            index_type, dtype = 2, "<u4"
        else:
            index_type, dtype = 3, "<u8"
        fout = conn.fout
        flags = self._HAS_ADDITIONAL_KEYS | self._NEED_UPDATE_DICTIONARY | index_type
        # Key serialization version (state prefix), flags, dictionary size.
        fout.write(np.array([1, flags, len(keys)], dtype="<u8").tobytes())
        fout.write_strings(keys, encoding="utf-8")
        fout.write(np.array([stop - start], dtype="<u8").tobytes())
        _send_buffer(conn, codes.astype(dtype, copy=False))


class _GenericEncoder(_Encoder):
    """clickhouse-driver's own column writer (Python objects) for everything else."""

    def __init__(self, name: str, type_name: str, values: Any) -> None:
        if isinstance(values, RawDecimal):
            raise TypeError(
                f"column {name}: RawDecimal is only supported for Decimal(P<=18) columns"
            )
        self.name = name
        self.type_name = type_name
        self.values = values

    def write(self, conn: Any, start: int, stop: int) -> None:
        items = _python_values(self.values[start:stop])
        write_column(conn.context, self.name, self.type_name, items, conn.fout)


_INT_DTYPES = {
    "Int8": "<i1", "Int16": "<i2", "Int32": "<i4", "Int64": "<i8",
    "UInt8": "<u1", "UInt16": "<u2", "UInt32": "<u4", "UInt64": "<u8",
    "Bool": "<u1",
}  # fmt: skip
_FLOAT_DTYPES = {"Float32": "<f4", "Float64": "<f8"}
_DATETIME64_UNITS = {0: "s", 3: "ms", 6: "us", 9: "ns"}


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    return values if isinstance(values, np.ndarray) else np.asarray(values)


def _python_values(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            values = values.astype("datetime64[us]")
        return cast(list[Any], values.tolist())
    return list(values)


def _check_range(array: np.ndarray, low: int, high: int, what: str) -> None:
    if array.size and (int(array.min()) < low or int(array.max()) > high):
        raise OverflowError(f"values out of range for {what}")


def _int_encoder(name: str, array: np.ndarray, dtype: str) -> _Encoder:
    if array.dtype.kind not in "iub":
        raise TypeError(f"column {name}: expected integers, got {array.dtype}")
    if array.dtype == np.dtype(dtype):
        return _FixedEncoder(array)
    info = np.iinfo(np.dtype(dtype)) if dtype != "<u1" or array.dtype.kind != "b" else None
    if info is not None:
        _check_range(array, info.min, info.max, f"column {name} ({dtype})")
    return _FixedEncoder(array, lambda chunk: chunk.astype(dtype))


class _Scaler:
    """``value * 10**scale`` (rounded) into reused buffers: each block is sent before the
    next one is converted, and fresh 8 MB temporaries per column were the main cost."""

    def __init__(self, factor: int, dtype: str, *, rounding: bool) -> None:
        self.factor = factor
        self.dtype = dtype
        self.rounding = rounding
        self.work: np.ndarray | None = None
        self.out: np.ndarray | None = None

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        size = len(chunk)
        if self.out is None or len(self.out) < size:
            self.work = np.empty(size, dtype="<f8")
            self.out = np.empty(size, dtype=self.dtype)
        out = self.out[:size]
        if self.rounding:
            assert self.work is not None
            work = self.work[:size]
            np.multiply(chunk, self.factor, out=work)
            np.rint(work, out=work)
            out[...] = work
        else:
            np.multiply(chunk, self.factor, out=out, casting="unsafe")
        return out


def _decimal_encoder(name: str, values: Any, precision: int, scale: int, width: int) -> _Encoder:
    """Decimal(P<=18, S) as scaled integers (the column's wire representation)."""
    dtype = "<i8" if width == 8 else "<i4"
    if isinstance(values, RawDecimal):
        # Already the wire representation: passed through unchecked, like ClickHouse
        # itself does for Native input.
        raw = _as_array(values.values)
        if raw.dtype.kind not in "iu":
            raise TypeError(f"column {name}: RawDecimal needs integers, got {raw.dtype}")
        return _FixedEncoder(
            raw, None if raw.dtype == np.dtype(dtype) else (lambda chunk: chunk.astype(dtype))
        )
    array = _as_array(values)
    factor = 10**scale
    limit = 10**precision
    what = f"column {name} (Decimal({precision}, {scale}))"
    if array.dtype.kind == "f":
        if array.size:
            low, high = float(array.min()), float(array.max())
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"column {name}: NaN/inf cannot be stored in a Decimal column")
            if round(high * factor) >= limit or round(low * factor) <= -limit:
                raise OverflowError(f"values out of range for {what}")
        return _FixedEncoder(array, _Scaler(factor, dtype, rounding=True))
    if array.dtype.kind in "iu":
        _check_range(array, -(limit - 1) // factor, (limit - 1) // factor, what)
        return _FixedEncoder(array, _Scaler(factor, dtype, rounding=False))
    raw = np.fromiter(
        (int(decimal.Decimal(v).scaleb(scale).to_integral_value()) for v in array),
        dtype="<i8",
        count=len(array),
    )
    _check_range(raw, -limit + 1, limit - 1, what)
    return _FixedEncoder(raw.astype(dtype, copy=False))


def _datetime_array(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.DatetimeIndex) and getattr(values.dtype, "tz", None):
        return cast(
            np.ndarray, pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None).to_numpy()
        )
    return _as_array(values)


def _datetime_encoder(name: str, values: Any, precision: int, dtype: str) -> _Encoder | None:
    """DateTime/DateTime64 from datetime64 (UTC) or raw integer ticks; None: other input."""
    array = _datetime_array(values)
    if array.dtype.kind in "iu":
        return _int_encoder(name, array, dtype)
    if array.dtype.kind != "M":
        return None
    unit = _DATETIME64_UNITS.get(precision)
    if unit is not None:
        return _FixedEncoder(
            array,
            lambda chunk: (
                chunk.astype(f"datetime64[{unit}]", copy=False)
                .view("<i8")
                .astype(dtype, copy=False)
            ),
        )
    divisor = 10 ** (9 - precision)
    return _FixedEncoder(array, lambda chunk: chunk.astype("datetime64[ns]").view("<i8") // divisor)


def _make_encoder(name: str, type_name: str, values: Any) -> _Encoder:
    spec = parse_type(type_name)
    base = spec.name
    if isinstance(values, RawDecimal) and not base.startswith("Decimal"):
        raise TypeError(f"column {name}: RawDecimal given for a {type_name} column")
    if base in _INT_DTYPES and not isinstance(values, list | tuple):
        array = _as_array(values)
        if array.dtype.kind in "iub":
            return _int_encoder(name, array, _INT_DTYPES[base])
    elif base in _FLOAT_DTYPES and not isinstance(values, list | tuple):
        array = _as_array(values)
        if array.dtype.kind in "iuf":
            dtype = _FLOAT_DTYPES[base]
            return _FixedEncoder(
                array,
                None if array.dtype == np.dtype(dtype) else (lambda chunk: chunk.astype(dtype)),
            )
    elif base.startswith("Decimal") and decimal_width(spec) in (4, 8):
        width = decimal_width(spec)
        if base in ("Decimal32", "Decimal64"):
            precision, scale = (9 if width == 4 else 18), int(spec.args[0])
        else:
            precision, scale = int(spec.args[0]), int(spec.args[1])
        return _decimal_encoder(name, values, precision, scale, width)
    elif base == "DateTime64" and not isinstance(values, list | tuple):
        encoder = _datetime_encoder(name, values, int(spec.args[0]), "<i8")
        if encoder is not None:
            return encoder
    elif base == "DateTime" and not isinstance(values, list | tuple):
        encoder = _datetime_encoder(name, values, 0, "<u4")
        if encoder is not None:
            return encoder
    elif base in ("Date", "Date32") and not isinstance(values, list | tuple):
        array = _as_array(values)
        dtype = "<u2" if base == "Date" else "<i4"
        if array.dtype.kind == "M":
            days = array.astype("datetime64[D]").view("<i8")
            _check_range(days, *((0, 0xFFFF) if base == "Date" else (-(2**31), 2**31 - 1)), name)
            return _FixedEncoder(days.astype(dtype))
        if array.dtype.kind in "iu":
            return _int_encoder(name, array, dtype)
    elif base == "LowCardinality" and spec.args[0] == "String":
        return _LowCardinalityEncoder(name, type_name, values)
    return _GenericEncoder(name, type_name, values)


def _column_length(values: Any) -> int:
    if isinstance(values, RawDecimal):
        return len(values.values)
    return len(values)


# ======================================================================================
# Client


class ClickHouse:
    """A small thread-safe pool of clickhouse-driver clients for one server/database.

    ``url`` is ``clickhouse://user:password@host:port/database?option=value``; options
    clickhouse-driver does not know become default query settings.  ``settings`` are
    default query settings (e.g. ``max_execution_time``), merged under per-call ones.
    """

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        settings: Mapping[str, Any] | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout: float = 30.0,
        insert_block_rows: int = DEFAULT_INSERT_BLOCK_ROWS,
    ) -> None:
        host, kwargs = parse_url(url)
        if not host:
            raise ClickHouseError(f"ClickHouse URL has no host: {url!r}")
        if kwargs.get("compression"):
            raise ClickHouseError("compressed connections are not supported by this module")
        url_settings = dict(kwargs.pop("settings", {}) or {})
        for name in _MANAGED_CLIENT_SETTINGS:
            url_settings.pop(name, None)
        if database is not None:
            quote_identifier(database)
            kwargs["database"] = database
        self.host = host
        self.database: str = kwargs.get("database", "") or "default"
        self._connect_kwargs = kwargs
        self.settings: dict[str, Any] = {**url_settings, **dict(settings or {})}
        self._check_settings(self.settings)
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.insert_block_rows = insert_block_rows
        self._idle: dict[bool, list[Client]] = {False: [], True: []}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._pid = os.getpid()

    # -- pool

    @staticmethod
    def _check_settings(settings: Mapping[str, Any]) -> None:
        for name in settings:
            if name in _MANAGED_CLIENT_SETTINGS:
                raise ClickHouseError(f"setting {name!r} is managed by the ClickHouse client")

    def _new_client(self, *, numpy: bool = False, **overrides: Any) -> Client:
        kwargs = {**self._connect_kwargs, **overrides}
        client_settings = {"server_side_params": True, "use_numpy": numpy}
        return Client(self.host, settings=client_settings, **kwargs)

    def _acquire(self, *, numpy: bool = False) -> Client:
        if os.getpid() != self._pid:
            # Forked (Celery prefork): the parent's sockets must not be shared, and its
            # lock may have been copied while held, so everything is replaced.
            self._lock = threading.Lock()
            self._idle = {False: [], True: []}
            self._slots = threading.BoundedSemaphore(self.pool_size)
            self._pid = os.getpid()
        if not self._slots.acquire(timeout=self.pool_timeout):
            raise PoolTimeoutError(
                f"no ClickHouse connection free within {self.pool_timeout}s "
                f"(pool_size={self.pool_size})"
            )
        with self._lock:
            idle = self._idle[numpy]
            if idle:
                return idle.pop()
        try:
            return self._new_client(numpy=numpy)
        except BaseException:
            self._slots.release()
            raise

    def _release(self, client: Client, *, broken: bool = False) -> None:
        if broken or client.connection.is_query_executing:
            client.disconnect()
        else:
            numpy = bool(client.client_settings["use_numpy"])
            with self._lock:
                self._idle[numpy].append(client)
        self._slots.release()

    @contextmanager
    def connection(self, *, numpy: bool = False) -> Iterator[Client]:
        """Borrow a clickhouse-driver Client for a few calls (not shared across threads).

        ``numpy=True`` gives a client created with ``use_numpy`` (numpy result columns).
        """
        client = self._acquire(numpy=numpy)
        try:
            yield client
        except BaseException:
            self._release(client, broken=True)
            raise
        self._release(client)

    def close(self) -> None:
        """Disconnect idle connections (borrowed ones are dropped when returned broken)."""
        with self._lock:
            idle = self._idle[False] + self._idle[True]
            self._idle = {False: [], True: []}
        for client in idle:
            client.disconnect()

    def __enter__(self) -> ClickHouse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _settings(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        if not settings:
            return dict(self.settings)
        self._check_settings(settings)
        return {**self.settings, **settings}

    def _run(
        self, sql: str, params: Mapping[str, Any] | None, *, numpy: bool = False, **kwargs: Any
    ) -> Any:
        """Execute; a read-only statement is retried once if its pooled connection died."""
        wire = _encode_params(sql, params)
        attempts = 2 if _READ_ONLY_START.match(sql) else 1
        for attempt in range(attempts):
            with self.connection(numpy=numpy) as client:
                try:
                    return client.execute(sql, wire, **kwargs)
                except (driver_errors.NetworkError, EOFError, ConnectionError):
                    if attempt + 1 >= attempts:
                        raise
        raise AssertionError("unreachable")

    # -- queries

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run a statement; rows as tuples (empty for DDL/INSERT ... SELECT)."""
        rows = self._run(sql, params, settings=self._settings(settings))
        return cast(list[tuple[Any, ...]], rows)

    def command(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Run DDL or another statement whose result is not needed."""
        self._run(sql, params, settings=self._settings(settings))

    def query_dicts(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows, columns = self._run(
            sql, params, settings=self._settings(settings), with_column_types=True
        )
        names = [name for name, _type in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def query_columns(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        numpy: bool = False,
    ) -> dict[str, Any]:
        """Result as ``{column: values}``; with ``numpy=True`` values are numpy arrays
        where clickhouse-driver supports it (numbers, dates, strings, LowCardinality)."""
        data, columns = self._run(
            sql,
            params,
            numpy=numpy,
            settings=self._settings(settings),
            with_column_types=True,
            columnar=True,
        )
        names = [name for name, _type in columns]
        if not data:
            return {name: [] for name in names}
        return dict(zip(names, data, strict=True))

    def iter_rows(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> Generator[tuple[Any, ...], None, None]:
        """Stream rows without holding the result in memory.

        ``chunk_size`` sets the rows per streamed block (``max_block_size``).  Leaving the
        loop early drops the connection, which makes the server cancel the query.
        """
        wire = _encode_params(sql, params)
        merged = self._settings(settings)
        if chunk_size is not None:
            merged["max_block_size"] = int(chunk_size)
        client = self._acquire()
        finished = False
        try:
            yield from client.execute_iter(sql, wire, settings=merged)
            finished = True
        finally:
            self._release(client, broken=not finished)

    def ping(self) -> bool:
        try:
            with self.connection() as client:
                conn = client.connection
                if not conn.connected:
                    conn.connect()
                return bool(conn.ping())
        except (driver_errors.Error, OSError, EOFError):
            return False

    # -- inserts

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert Python rows (tuples in ``columns`` order, or dicts); returns the count."""
        if not columns:
            raise ClickHouseError("insert_rows needs at least one column")
        names = [quote_identifier(c) for c in columns]
        data = [
            [row[c] for c in columns] if isinstance(row, Mapping) else list(row) for row in rows
        ]
        if not data:
            return 0
        sql = f"INSERT INTO {quote_identifier(table)} ({', '.join(names)}) VALUES"
        with self.connection() as client:
            count = client.execute(sql, data, settings=self._settings(settings))
        return int(count or 0)

    def insert_columns(
        self,
        table: str,
        columns: Mapping[str, Any],
        *,
        settings: Mapping[str, Any] | None = None,
        block_rows: int | None = None,
    ) -> int:
        """Columnar insert; numpy arrays take the zero-per-row-Python path.

        Values per column: numpy arrays, pandas Series/Categorical or sequences (pass
        LowCardinality(String) data as ``pd.Categorical`` to skip factorizing).  Decimal
        columns accept floats (rounded to the scale), integers (whole units),
        ``decimal.Decimal`` objects or :class:`RawDecimal` (already scaled, fastest).
        DateTime/DateTime64 accept ``datetime64`` (naive values are UTC) or raw integer
        ticks.  Returns the number of rows inserted.

        Cheap checks (lengths, dtypes, numeric ranges, NaN in decimals) run before
        anything is sent; values are encoded block by block, so an error found in a later
        block (None or a non-str value in a LowCardinality(String) column) leaves the
        earlier blocks inserted, as with any multi-block ClickHouse INSERT.
        """
        if not columns:
            raise ClickHouseError("insert_columns needs at least one column")
        names = list(columns)
        lengths = {_column_length(columns[name]) for name in names}
        if len(lengths) != 1:
            raise ClickHouseError(f"columns have different lengths: {sorted(lengths)}")
        total = lengths.pop()
        quoted = ", ".join(quote_identifier(name) for name in names)
        sql = f"INSERT INTO {quote_identifier(table)} ({quoted}) VALUES"
        if total == 0:
            return 0
        block = block_rows or self.insert_block_rows
        merged = self._settings(settings)
        with self.connection() as client, client.disconnect_on_error(sql, merged):
            conn = client.connection
            conn.send_query(sql)
            conn.send_external_tables(None)
            sample = client.receive_sample_block()
            types = dict(sample.columns_with_types)
            missing = [name for name in names if name not in types]
            if missing:
                raise ClickHouseError(f"server did not describe columns {missing}")
            encoders = [
                (name, types[name], _make_encoder(name, types[name], columns[name]))
                for name in names
            ]
            for start in range(0, total, block):
                stop = min(start + block, total)
                self._send_block(conn, encoders, start, stop)
                client.receive_profile_events()
            conn.send_data(RowOrientedBlock())
            client.receive_profile_events()
            client.receive_end_of_insert_query()
        return total

    @staticmethod
    def _send_block(
        conn: Any, encoders: list[tuple[str, str, _Encoder]], start: int, stop: int
    ) -> None:
        fout = conn.fout
        revision = conn.server_info.used_revision
        write_varint(ClientPacketTypes.DATA, fout)
        if revision >= _REV_TEMPORARY_TABLES:
            write_binary_str("", fout)
        BlockInfo().write(fout)
        write_varint(len(encoders), fout)
        write_varint(stop - start, fout)
        for name, type_name, encoder in encoders:
            write_binary_str(name, fout)
            write_binary_str(type_name, fout)
            if revision >= _REV_CUSTOM_SERIALIZATION:
                write_binary_uint8(0, fout)
            encoder.write(conn, start, stop)
        fout.flush()

    # -- databases

    def ensure_database(self, name: str) -> None:
        """``CREATE DATABASE IF NOT EXISTS`` (connects to ``default``: *name* may not exist)."""
        quoted = quote_identifier(name)
        client = self._new_client(database="default")
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {quoted}", settings=self.settings)
        finally:
            client.disconnect()

    def drop_database(self, name: str) -> None:
        quoted = quote_identifier(name)
        client = self._new_client(database="default")
        try:
            client.execute(f"DROP DATABASE IF EXISTS {quoted}", settings=self.settings)
        finally:
            client.disconnect()
        if name == self.database:
            self.close()


# --------------------------------------------------------------------------- Django glue

_default_client: ClickHouse | None = None
_default_key: tuple[str, str, str] | None = None
_default_lock = threading.Lock()


def configured_database() -> str:
    """The database Tandem's tables live in: settings.CLICKHOUSE_DATABASE, else the URL's."""
    from django.conf import settings

    name = getattr(settings, "CLICKHOUSE_DATABASE", "") or ""
    if not name:
        _, kwargs = parse_url(settings.CLICKHOUSE_URL)
        name = kwargs.get("database") or "tandem"
    quote_identifier(name)
    return str(name)


def get_client() -> ClickHouse:
    """The process-wide client for settings.CLICKHOUSE_URL (pooled, thread-safe).

    The database is created on first use: a server refuses connections that name a
    database it does not have.
    """
    global _default_client, _default_key
    from django.conf import settings

    cluster = str(getattr(settings, "CLICKHOUSE_CLUSTER", "") or "")
    key = (settings.CLICKHOUSE_URL, configured_database(), cluster)
    with _default_lock:
        if _default_client is None or _default_key != key:
            if _default_client is not None:
                _default_client.close()
            url, database, _ = key
            bootstrap = ClickHouse(url, database="default", pool_size=1)
            try:
                bootstrap.ensure_database(database)
            finally:
                bootstrap.close()
            _default_client = ClickHouse(url, database=database, settings=default_settings())
            _default_key = key
        return _default_client


def default_settings() -> dict[str, Any]:
    """Query settings of the process-wide client: settings.CLICKHOUSE_SETTINGS, and on a
    cluster synchronous inserts into the Distributed tables -- the insert returns once the shard
    holds the block (or fails, and the batch stays buffered for a retry), so at-least-once
    delivery with deduplication tokens holds across shards (docs/clickhouse-cluster.md)."""
    from django.conf import settings

    values = dict(getattr(settings, "CLICKHOUSE_SETTINGS", {}) or {})
    if getattr(settings, "CLICKHOUSE_CLUSTER", ""):
        values.setdefault("distributed_foreground_insert", 1)
    return values
