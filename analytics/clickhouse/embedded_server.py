"""Embedded ClickHouse: one process owns a chDB data directory and serves the native protocol.

chDB locks its data directory to a single process, while the web server, Celery workers and
beat all need ClickHouse.  This process is that single owner: it opens the directory with
chDB and speaks ClickHouse's native TCP protocol on a local port, so every other process uses
``clickhouse-driver`` exactly as against a real server (one code path for schema, migrations
and queries).

Usage::

    python -m analytics.clickhouse.embedded_server --path DIR [--host 127.0.0.1] [--port 0]
                                                   [--state-file FILE]

* ``--port 0`` picks a free port.  Once listening, the server atomically writes a JSON state
  file ``{"pid", "host", "port", "path", "started_at", ...}``, by default
  ``DIR/clickhouse-server.json``, and removes it on a clean shutdown.
* SIGTERM/SIGINT: stop accepting, cancel running queries, close chDB cleanly, exit 0.
* Exit codes: 0 clean shutdown; 1 other startup failure; 3 data directory unusable
  (cannot be created or is not writable); 4 data directory locked by another process.  A
  failed start prints exactly one line on stderr naming the directory and the reason.

Protocol: the server announces revision 54468 (clickhouse-driver 0.2.11's own revision), so
every feature the driver uses is available: server-side query parameters (54459), custom
serialization flags (54454, always "no custom serialization"), profile events after each
inserted block (54456), query time and total bytes in Progress (54460/54463), addendum with
quota key (54458), password-complexity rules and nonce in Hello (54461/54462).  Revisions from
54469 on change ProfileInfo and the packet framing, so they are not announced.

Query settings sent by the client apply to that query only: the server SETs them on the
connection's chDB session and resets them to their defaults afterwards (which also undoes a
session-level ``SET`` of the same setting).  Unknown settings are ignored unless the client
marks them important.  ``readonly`` queries run on a throwaway chDB connection.

Supported: Hello/addendum, Ping, Query with settings and bound parameters, external tables,
SELECT results streamed block by block (header block first), DDL and other statements,
``INSERT ... VALUES``/``FORMAT x`` with data sent as blocks by the client (one chDB insert for
the whole statement), ``INSERT ... SELECT ... FROM input('structure')``, Cancel, exceptions
with ClickHouse's codes.  Not supported: compression (refused with an exception), TLS,
authentication (any user/password is accepted: bind to loopback), TablesStatus requests,
JSON/Variant/Dynamic/AggregateFunction columns in results or inserts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import fcntl
import importlib
import itertools
import json
import logging
import os
import queue
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from analytics.clickhouse.native import (
    ByteStream,
    ConnectionClosed,
    NativeBlock,
    NativeFormatError,
    UnsupportedTypeError,
    encode_str,
    encode_varint,
    header_block,
    read_block,
    split_args,
    split_element,
    split_native,
)

log = logging.getLogger("analytics.clickhouse.embedded_server")

SERVER_REVISION = 54468
STATE_FILE_NAME = "clickhouse-server.json"
LOCK_FILE_NAME = ".embedded-server.lock"
DISPLAY_NAME = "tandem-embedded-chdb"

EXIT_FAILURE = 1
EXIT_BAD_DIRECTORY = 3
EXIT_LOCKED = 4

# Revisions (ClickHouse ProtocolDefines.h) that change what goes over the wire.
REV_TEMPORARY_TABLES = 50264
REV_TOTAL_ROWS_IN_PROGRESS = 51554
REV_CLIENT_INFO = 54032
REV_SERVER_TIMEZONE = 54058
REV_QUOTA_KEY_IN_CLIENT_INFO = 54060
REV_SERVER_DISPLAY_NAME = 54372
REV_VERSION_PATCH = 54401
REV_CLIENT_WRITE_INFO = 54420
REV_SETTINGS_AS_STRINGS = 54429
REV_INTERSERVER_SECRET = 54441
REV_OPENTELEMETRY = 54442
REV_X_FORWARDED_FOR = 54443
REV_REFERER = 54447
REV_DISTRIBUTED_DEPTH = 54448
REV_INITIAL_QUERY_START_TIME = 54449
REV_PARALLEL_REPLICAS = 54453
REV_CUSTOM_SERIALIZATION = 54454
REV_PROFILE_EVENTS_IN_INSERT = 54456
REV_ADDENDUM = 54458
REV_PARAMETERS = 54459
REV_QUERY_TIME_IN_PROGRESS = 54460
REV_PASSWORD_RULES = 54461
REV_INTERSERVER_SECRET_V2 = 54462
REV_TOTAL_BYTES_IN_PROGRESS = 54463


class ClientPacket:
    HELLO = 0
    QUERY = 1
    DATA = 2
    CANCEL = 3
    PING = 4
    TABLES_STATUS_REQUEST = 5


class ServerPacket:
    HELLO = 0
    DATA = 1
    EXCEPTION = 2
    PROGRESS = 3
    PONG = 4
    END_OF_STREAM = 5
    PROFILE_INFO = 6
    PROFILE_EVENTS = 14


QUERY_STAGE_COMPLETE = 2
SETTING_FLAG_IMPORTANT = 0x1

# Codes from ClickHouse's ErrorCodes.cpp for errors raised by the server itself.
NOT_IMPLEMENTED = 48
LOGICAL_ERROR = 49
UNKNOWN_TYPE = 50
NO_SUCH_COLUMN_IN_TABLE = 16
UNKNOWN_PACKET_FROM_CLIENT = 101
UNEXPECTED_PACKET_FROM_CLIENT = 102
UNKNOWN_SETTING = 115
INCORRECT_DATA = 117
QUERY_WAS_CANCELLED = 394
UNKNOWN_COMPRESSION_METHOD = 89
CLIENT_HAS_CONNECTED_TO_WRONG_PORT = 217
STD_EXCEPTION = 1001

_ERROR_NAMES = {
    NO_SUCH_COLUMN_IN_TABLE: "NO_SUCH_COLUMN_IN_TABLE",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    LOGICAL_ERROR: "LOGICAL_ERROR",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
    UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    UNKNOWN_PACKET_FROM_CLIENT: "UNKNOWN_PACKET_FROM_CLIENT",
    UNEXPECTED_PACKET_FROM_CLIENT: "UNEXPECTED_PACKET_FROM_CLIENT",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    INCORRECT_DATA: "INCORRECT_DATA",
    QUERY_WAS_CANCELLED: "QUERY_WAS_CANCELLED",
    CLIENT_HAS_CONNECTED_TO_WRONG_PORT: "CLIENT_HAS_CONNECTED_TO_WRONG_PORT",
    STD_EXCEPTION: "STD_EXCEPTION",
}

# Settings that would change the Native encoding chDB hands us, or that need special care.
_DENIED_SETTINGS = frozenset(
    {
        "output_format_native_encode_types_in_binary_format",
        "input_format_native_decode_types_in_binary_format",
        "output_format_native_write_json_as_string",
        "output_format_native_use_flattened_dynamic_and_json_serialization",
        "low_cardinality_allow_in_native_format",
    }
)

# Statements whose result is a table (a FORMAT clause there is ignored, as by a real
# server over TCP), and those chDB can stream.
_RESULT_KEYWORDS = frozenset(
    {"SELECT", "WITH", "(", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "EXISTS", "CHECK", "FROM"}
)
_STREAMING_KEYWORDS = frozenset({"SELECT", "WITH", "(", "FROM"})

_PROFILE_EVENTS_HEADER = header_block(
    [
        ("host_name", "String"),
        ("current_time", "DateTime"),
        ("thread_id", "UInt64"),
        ("type", "Int8"),
        ("name", "String"),
        ("value", "Int64"),
    ]
)
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")


# ======================================================================================
# Errors


class ServerError(Exception):
    """An error reported to the client as a ClickHouse Exception packet."""

    def __init__(self, code: int, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # The protocol stream is out of sync after this error: close the connection.
        self.fatal = fatal

    @classmethod
    def own(cls, code: int, text: str, *, fatal: bool = False) -> ServerError:
        name = _ERROR_NAMES.get(code, "UNKNOWN")
        return cls(code, f"DB::Exception: {text}. ({name})", fatal=fatal)


_CHDB_ERROR = re.compile(r"Code: (\d+)\. (.*)", re.S)
_VERSION_SUFFIX = re.compile(r"\s*\(version [^)]*\)\s*$")


def error_from_chdb(exc: BaseException) -> ServerError:
    """Map chDB's ``Code: N. DB::Exception: ... (NAME)`` text to a ServerError with code N."""
    text = str(exc)
    match = _CHDB_ERROR.search(text)
    if not match:
        return ServerError.own(STD_EXCEPTION, text or type(exc).__name__)
    message = _VERSION_SUFFIX.sub("", match.group(2).strip())
    if not message.startswith("DB::Exception"):
        message = f"DB::Exception: {message}"
    return ServerError(int(match.group(1)), message)


class StartupError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _CloseConnection(Exception):
    pass


# ======================================================================================
# SQL scanning: just enough to route a statement (INSERT with client data, FORMAT clause).

_TOKEN_RE = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<qident>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<number>[0-9][0-9A-Za-z_.]*)
    | (?P<punct>.)
    """,
    re.S | re.X,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    @property
    def is_ident(self) -> bool:
        return self.kind in ("word", "qident")


def iter_tokens(sql: str) -> Iterator[Token]:
    for match in _TOKEN_RE.finditer(sql):
        kind = match.lastgroup or "punct"
        if kind not in ("ws", "comment"):
            yield Token(kind, match.group(), match.start(), match.end())


class _Tokens:
    """Lazily tokenized statement: a huge inline VALUES list is never tokenized whole."""

    def __init__(self, sql: str) -> None:
        self._source = iter_tokens(sql)
        self._seen: list[Token] = []

    def get(self, index: int) -> Token | None:
        while len(self._seen) <= index:
            tok = next(self._source, None)
            if tok is None:
                return None
            self._seen.append(tok)
        return self._seen[index]

    def text(self, index: int) -> str:
        tok = self.get(index)
        return tok.text if tok is not None else ""

    def ends_at(self, index: int) -> bool:
        while True:
            tok = self.get(index)
            if tok is None:
                return True
            if tok.text != ";":
                return False
            index += 1


def unquote_identifier(text: str) -> str:
    if len(text) >= 2 and text[0] in '`"' and text[-1] == text[0]:
        return _unescape(text[1:-1], doubled=text[0])
    return text


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "0": "\0",
}  # fmt: skip


_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def _unescape(body: str, doubled: str = "'") -> str:
    """ClickHouse's readQuoted* unescaping (parseComplexEscapeSequence) of a quoted body."""
    out: list[str] = []
    i = 0
    length = len(body)
    while i < length:
        ch = body[i]
        if ch == "\\" and i + 1 < length:
            nxt = body[i + 1]
            hex_digits = body[i + 2 : i + 4]
            if nxt in "xX" and len(hex_digits) == 2 and _HEX2.fullmatch(hex_digits):
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
                continue
            decoded = _SIMPLE_ESCAPES.get(nxt, nxt)
            # Unknown escapes keep their backslash (LIKE patterns such as '100\%').
            if decoded == nxt and nxt not in "\\'\"`/" and not (ord(nxt) < 32 or ord(nxt) == 127):
                out.append("\\")
            out.append(decoded)
            i += 2
            continue
        if ch == doubled and i + 1 < length and body[i + 1] == doubled:
            out.append(ch)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def unquote_parameter(value: str) -> str:
    """A bound parameter arrives as a quoted Field dump; chDB wants the unquoted text."""
    if len(value) >= 2 and value[0] == "'" and value[-1] == "'":
        return _unescape(value[1:-1])
    return value


@dataclass
class InsertPlan:
    """An INSERT whose rows the client sends as Data blocks."""

    table: str  # as written in the query (may be quoted / qualified)
    columns: list[str] | None  # explicit column list, unquoted
    chdb_sql: str  # statement for chDB's streaming insert (no VALUES/FORMAT)
    table_end: int  # offset just after the table name (to splice a column list in)
    input_structure: str | None = None  # INSERT ... SELECT ... FROM input('...')
    input_span: tuple[int, int] | None = None


def parse_insert(sql: str) -> InsertPlan | None:
    """Recognise an INSERT whose rows come from the client as Data blocks.

    ``INSERT INTO t [(cols)] [SETTINGS ...] VALUES`` or ``... FORMAT name`` with nothing
    after, and ``INSERT INTO t [(cols)] SELECT ... FROM input('structure')``.
    """
    toks = _Tokens(sql)
    first, second = toks.get(0), toks.get(1)
    if first is None or second is None or not first.is_word("INSERT") or not second.is_word("INTO"):
        return None
    i = 2
    tok = toks.get(i)
    if tok is not None and tok.is_word("TABLE"):
        i += 1
        tok = toks.get(i)
    if tok is None or tok.is_word("FUNCTION") or not tok.is_ident:
        return None
    table_start = tok.start
    table_end = tok.end
    i += 1
    while toks.text(i) == "." and (nxt := toks.get(i + 1)) is not None and nxt.is_ident:
        table_end = nxt.end
        i += 2
    columns: list[str] | None = None
    if toks.text(i) == "(":
        columns = []
        current: list[str] = []
        i += 1
        while (tok := toks.get(i)) is not None and tok.text != ")":
            if tok.is_ident:
                current.append(unquote_identifier(tok.text))
            elif tok.text == "," and current:
                columns.append(".".join(current))
                current = []
            elif tok.text != "." or not current:
                return None  # (*), COLUMNS('re'), ...: chDB decides
            i += 1
        if tok is None:
            return None
        if current:
            columns.append(".".join(current))
        i += 1
    depth = 0
    while (tok := toks.get(i)) is not None:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.is_word("VALUES", "FORMAT", "SELECT", "WITH"):
            break
        i += 1
    if tok is None:
        return None
    table = sql[table_start:table_end]
    if tok.is_word("VALUES") and toks.ends_at(i + 1):
        return InsertPlan(table, columns, sql[: tok.start], table_end)
    fmt = toks.get(i + 1)
    if tok.is_word("FORMAT") and fmt is not None and fmt.is_ident and toks.ends_at(i + 2):
        return InsertPlan(table, columns, sql[: tok.start], table_end)
    if tok.is_word("SELECT", "WITH"):
        j = i
        while (tok := toks.get(j)) is not None:
            arg = toks.get(j + 2)
            if (
                tok.is_word("INPUT")
                and toks.text(j + 1) == "("
                and arg is not None
                and arg.kind == "string"
                and toks.text(j + 3) == ")"
            ):
                end = toks.get(j + 3)
                assert end is not None
                return InsertPlan(
                    table,
                    columns,
                    sql,
                    table_end,
                    input_structure=_unescape(arg.text[1:-1]),
                    input_span=(tok.start, end.end),
                )
            j += 1
    return None


def strip_format_clause(sql: str) -> str:
    """Drop a top-level ``FORMAT name``: results travel as Native blocks whatever it says."""
    toks = _Tokens(sql)
    depth = 0
    i = 0
    while (tok := toks.get(i)) is not None:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        elif depth == 0 and i > 0 and tok.is_word("FORMAT"):
            name = toks.get(i + 1)
            after = toks.get(i + 2)
            if (
                name is not None
                and name.is_ident
                and (toks.ends_at(i + 2) or (after is not None and after.is_word("SETTINGS")))
            ):
                return sql[: tok.start] + " " + sql[name.end :]
        i += 1
    return sql


def first_keyword(sql: str) -> str:
    tok = _Tokens(sql).get(0)
    if tok is None:
        return ""
    return tok.text.upper() if tok.kind == "word" else tok.text


# ======================================================================================
# chDB access


class Engine:
    """The process-wide chDB engine on one data directory.

    A root connection stays open for the server's lifetime (chDB shuts the engine down
    when its last connection closes).  Every client connection gets its own chDB
    connection: chDB runs queries of different connections in parallel and keeps
    session state (current database, SET) per connection, matching a real server.
    """

    def __init__(self, path: Path) -> None:
        # Imported late (a ~500 MB library) and untyped: the compiled binding has no stubs.
        self._chdb: Any = importlib.import_module("chdb._chdb")
        _chdb = self._chdb
        self.path = str(path)
        self.root = _chdb.connect(self.path)
        self.setting_names = frozenset(
            self.root.query("SELECT name FROM system.settings", "TSV").bytes().decode().split()
        )
        version = self.root.query("SELECT version()", "TSV").bytes().decode().strip()
        parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
        self.version = version
        self.version_major, self.version_minor, self.version_patch = parts[:3]
        self.timezone = self.root.query("SELECT timezone()", "TSV").bytes().decode().strip()

    def connect(self, settings: dict[str, str] | None = None) -> Any:
        if not settings:
            return self._chdb.connect(self.path)
        query = "&".join(f"{name}={value}" for name, value in settings.items())
        return self._chdb.connect(f"{self.path}?{query}")

    def kill(self, tag: str) -> None:
        """Cancel the running query of the connection tagged *tag* (see Session)."""
        conn = self._chdb.connect(self.path)
        try:
            conn.query(
                "KILL QUERY WHERE Settings['log_comment'] = {tag:String} "
                "OR endsWith(Settings['log_comment'], {suffix:String}) ASYNC",
                "TSV",
                params={"tag": tag, "suffix": f" [{tag}]"},
            )
        except RuntimeError:
            log.warning("could not cancel query tagged %s", tag, exc_info=True)
        finally:
            conn.close()

    def close(self) -> None:
        self.root.close()


# ======================================================================================
# Per-connection protocol handling


def _sendv(sock: socket.socket, pieces: Iterable[bytes | bytearray | memoryview]) -> None:
    views = [memoryview(p).cast("B") for p in pieces if len(p)]
    while views:
        sent = sock.sendmsg(views[:512])
        while sent and views:
            head = views[0]
            if sent >= len(head):
                sent -= len(head)
                views.pop(0)
            else:
                views[0] = head[sent:]
                sent = 0


@dataclass
class _Query:
    query_id: str
    settings: list[tuple[str, int, str]]
    stage: int
    compression: int
    sql: str
    params: dict[str, str]


@dataclass
class _Progress:
    rows: int = 0
    bytes: int = 0
    total_rows: int = 0
    total_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0


@dataclass
class _QueryStats:
    rows: int = 0
    blocks: int = 0
    bytes: int = 0
    header_sent: bool = False
    # (sql, params) to DESCRIBE the result with, for SELECT-like statements.
    describe: tuple[str, dict[str, str]] | None = None
    type_overrides: dict[int, str] = field(default_factory=dict)


class _InsertWorker:
    """Feeds Native blocks into one chDB streaming INSERT on its own thread.

    The connection thread receives and re-frames block N+1 while chDB parses and writes
    block N, and the client is told to send the next block as soon as one is queued.
    """

    _FINISH = object()
    _ABORT = object()

    def __init__(self, conn: Any, sql: str) -> None:
        self.conn = conn
        self.sql = sql
        self.queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.rows_written = 0
        self.bytes_written = 0
        self.thread = threading.Thread(target=self._run, name="chdb-insert", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        inserter = None
        try:
            inserter = self.conn.send_insert(self.sql, "Native")
            while True:
                item = self.queue.get()
                if item is self._FINISH:
                    result = self.conn.insert_done(inserter)
                    inserter = None
                    self.rows_written = result.rows_written()
                    self.bytes_written = result.bytes_written()
                    return
                if item is self._ABORT:
                    return
                for chunk in cast(list[bytes], item):
                    self.conn.insert_append(inserter, chunk)
        except Exception as exc:
            self.error = exc
            # Keep consuming so the producer never blocks on a full queue.
            while True:
                item = self.queue.get()
                if item is self._FINISH or item is self._ABORT:
                    break
        finally:
            if inserter is not None:
                with contextlib.suppress(Exception):
                    self.conn.insert_cancel(inserter)

    def put(self, data: list[bytes]) -> None:
        self.queue.put(data)

    def finish(self) -> None:
        self.queue.put(self._FINISH)
        self.thread.join()

    def abort(self) -> None:
        if self.thread.is_alive():
            self.queue.put(self._ABORT)
            self.thread.join()


class Session:
    """One client TCP connection."""

    def __init__(self, server: EmbeddedServer, sock: socket.socket, number: int) -> None:
        self.server = server
        self.engine = server.engine
        self.sock = sock
        self.number = number
        # Queries of this connection carry the tag in log_comment so that Cancel can
        # KILL exactly them from another chDB connection.
        self.tag = f"tandem-embedded:{os.getpid()}:{number}"
        self.reader = ByteStream(sock)
        self.wlock = threading.Lock()
        self.revision = 0
        self.conn: Any = None
        # A second chDB connection for metadata lookups while a result streams (any other
        # query on the streaming connection would end the stream).
        self.aux: Any = None
        self.aux_database = ""
        self.database = "default"
        self.applied: dict[str, str] = {}
        self.busy = False
        self.closing = False
        # Query-time state shared with the watcher thread.
        self.cancel_requested = False
        self.kill_issued = False
        self.client_gone = False
        self.pending_packet: int | None = None
        self.progress_payload: dict[str, int] | None = None
        self.progress_sent = _Progress()
        self.progress_lock = threading.Lock()
        self.query_started_ns = time.monotonic_ns()
        self.watcher = _Watcher(self)
        self.thread = threading.Thread(target=self.run, name=f"ch-session-{number}", daemon=True)

    # -- sending

    def send(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        with self.wlock:
            _sendv(self.sock, pieces)

    def send_exception(self, error: ServerError) -> None:
        self.send(
            [
                encode_varint(ServerPacket.EXCEPTION)
                + _I32.pack(error.code)
                + encode_str("DB::Exception")
                + encode_str(error.message)
                + encode_str("")
                + b"\x00"
            ]
        )

    def send_data(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        self.send([encode_varint(ServerPacket.DATA) + encode_str(""), *pieces])

    def send_end_of_stream(self) -> None:
        self.send([encode_varint(ServerPacket.END_OF_STREAM)])

    def send_profile_events(self) -> None:
        if self.revision >= REV_PROFILE_EVENTS_IN_INSERT:
            prefix = encode_varint(ServerPacket.PROFILE_EVENTS) + encode_str("")
            self.send([prefix, _PROFILE_EVENTS_HEADER])

    def send_progress(self, delta: _Progress) -> None:
        out = bytearray(encode_varint(ServerPacket.PROGRESS))
        out += encode_varint(delta.rows) + encode_varint(delta.bytes)
        if self.revision >= REV_TOTAL_ROWS_IN_PROGRESS:
            out += encode_varint(delta.total_rows)
        if self.revision >= REV_TOTAL_BYTES_IN_PROGRESS:
            out += encode_varint(delta.total_bytes)
        if self.revision >= REV_CLIENT_WRITE_INFO:
            out += encode_varint(delta.written_rows) + encode_varint(delta.written_bytes)
        if self.revision >= REV_QUERY_TIME_IN_PROGRESS:
            out += encode_varint(delta.elapsed_ns)
        self.send([out])

    def send_profile_info(self, stats: _QueryStats) -> None:
        self.send(
            [
                encode_varint(ServerPacket.PROFILE_INFO)
                + encode_varint(stats.rows)
                + encode_varint(stats.blocks)
                + encode_varint(stats.bytes)
                + b"\x00"
                + encode_varint(0)
                + b"\x00"
            ]
        )

    # -- progress (chDB callback thread / watcher thread)

    def on_progress(self, payload: dict[str, int]) -> None:
        self.progress_payload = payload

    def flush_progress(self, *, final_written: tuple[int, int] | None = None) -> None:
        payload = self.progress_payload or {}
        with self.progress_lock:
            sent = self.progress_sent
            current = _Progress(
                rows=int(payload.get("read_rows", 0)),
                bytes=int(payload.get("read_bytes", 0)),
                total_rows=int(payload.get("total_rows_to_read", 0)),
                total_bytes=int(payload.get("total_bytes_to_read", 0)),
                written_rows=int(payload.get("written_rows", 0)),
                written_bytes=int(payload.get("written_bytes", 0)),
                # Wall-clock, so a query stuck in one block still reports progress
                # every interval (clients use Progress packets to decide to cancel).
                elapsed_ns=time.monotonic_ns() - self.query_started_ns,
            )
            if final_written is not None:
                current.written_rows = max(current.written_rows, final_written[0])
                current.written_bytes = max(current.written_bytes, final_written[1])
            delta = _Progress(
                **{k: max(0, getattr(current, k) - getattr(sent, k)) for k in vars(sent)}
            )
            if not any(vars(delta).values()):
                return
            self.progress_sent = _Progress(
                **{k: max(getattr(current, k), getattr(sent, k)) for k in vars(sent)}
            )
        self.send_progress(delta)

    def request_cancel(self) -> None:
        self.cancel_requested = True
        if not self.kill_issued:
            self.kill_issued = True
            self.engine.kill(self.tag)

    # -- reading

    def read_settings(self) -> list[tuple[str, int, str]]:
        settings: list[tuple[str, int, str]] = []
        while True:
            name = self.reader.read_str()
            if not name:
                return settings
            flags = self.reader.read_varint()
            settings.append((name, flags, self.reader.read_str()))

    def read_query(self) -> _Query:
        r = self.reader
        rev = self.revision
        query_id = r.read_str()
        if rev >= REV_CLIENT_INFO:
            kind = r.read_u8()
            if kind:
                r.read_str()  # initial_user
                r.read_str()  # initial_query_id
                r.read_str()  # initial_address
                if rev >= REV_INITIAL_QUERY_START_TIME:
                    r.skip(8)
                interface = r.read_u8()
                if interface == 1:  # TCP
                    r.read_str()  # os_user
                    r.read_str()  # client_hostname
                    r.read_str()  # client_name
                    r.read_varint()
                    r.read_varint()
                    r.read_varint()
                elif interface == 2:  # HTTP
                    r.read_u8()
                    r.read_str()
                    if rev >= REV_X_FORWARDED_FOR:
                        r.read_str()
                    if rev >= REV_REFERER:
                        r.read_str()
                else:
                    raise ServerError.own(
                        UNKNOWN_PACKET_FROM_CLIENT,
                        f"unknown client interface {interface}",
                        fatal=True,
                    )
                if rev >= REV_QUOTA_KEY_IN_CLIENT_INFO:
                    r.read_str()
                if rev >= REV_DISTRIBUTED_DEPTH:
                    r.read_varint()
                if rev >= REV_VERSION_PATCH:
                    r.read_varint()
                if rev >= REV_OPENTELEMETRY and r.read_u8():
                    r.skip(16 + 8)
                    r.read_str()
                    r.skip(1)
                if rev >= REV_PARALLEL_REPLICAS:
                    r.read_varint()
                    r.read_varint()
                    r.read_varint()
        settings = self.read_settings()
        if rev >= REV_INTERSERVER_SECRET:
            r.read_str()
        stage = r.read_varint()
        compression = r.read_varint()
        sql = r.read_str()
        params: dict[str, str] = {}
        if rev >= REV_PARAMETERS:
            for name, _flags, value in self.read_settings():
                params[name] = unquote_parameter(value)
        return _Query(query_id, settings, stage, compression, sql, params)

    def read_data_block(self) -> tuple[str, NativeBlock]:
        table = self.reader.read_str() if self.revision >= REV_TEMPORARY_TABLES else ""
        try:
            block = read_block(
                self.reader,
                block_info=True,
                serialization_flags=self.revision >= REV_CUSTOM_SERIALIZATION,
            )
        except NativeFormatError as exc:
            raise ServerError.own(INCORRECT_DATA, str(exc), fatal=True) from exc
        return table, block

    def read_external_tables(self) -> list[tuple[str, NativeBlock]]:
        tables: list[tuple[str, NativeBlock]] = []
        while True:
            packet = self.reader.read_varint()
            if packet != ClientPacket.DATA:
                raise ServerError.own(
                    UNEXPECTED_PACKET_FROM_CLIENT,
                    f"expected Data (external tables) after Query, got packet {packet}",
                    fatal=True,
                )
            name, block = self.read_data_block()
            if not block.columns:
                return tables
            tables.append((name, block))

    # -- lifecycle

    def run(self) -> None:
        try:
            self.handshake()
            while not self.closing:
                packet = self.pending_packet
                self.pending_packet = None
                if packet is None:
                    packet = self.reader.read_varint()
                if packet == ClientPacket.PING:
                    self.send([encode_varint(ServerPacket.PONG)])
                elif packet == ClientPacket.QUERY:
                    self.handle_query()
                elif packet == ClientPacket.CANCEL:
                    continue  # nothing is running: the query already ended
                else:
                    raise ServerError.own(
                        UNKNOWN_PACKET_FROM_CLIENT,
                        f"unexpected packet {packet} from client",
                        fatal=True,
                    )
        except ServerError as exc:
            with contextlib.suppress(OSError):
                self.send_exception(exc)
        except (ConnectionClosed, _CloseConnection, ConnectionError, TimeoutError, OSError):
            pass
        except Exception:
            log.exception("connection %s failed", self.number)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        self.watcher.close()
        for conn in (self.aux, self.conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self.conn = self.aux = None
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.forget(self)

    def shutdown(self) -> None:
        """Called from the server thread on SIGTERM: cancel and drop the connection."""
        self.closing = True
        if self.busy:
            self.request_cancel()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def handshake(self) -> None:
        r = self.reader
        packet = r.read_varint()
        if packet != ClientPacket.HELLO:
            if packet in (ord("G"), ord("P")):  # "GET"/"POST": an HTTP client
                raise ServerError.own(
                    CLIENT_HAS_CONNECTED_TO_WRONG_PORT,
                    "this is the native-protocol port, not HTTP",
                    fatal=True,
                )
            raise ServerError.own(
                UNEXPECTED_PACKET_FROM_CLIENT, f"expected Hello, got packet {packet}", fatal=True
            )
        r.read_str()  # client name
        r.read_varint()  # version major
        r.read_varint()  # version minor
        client_revision = r.read_varint()
        database = r.read_str()
        r.read_str()  # user
        r.read_str()  # password
        self.revision = min(client_revision, SERVER_REVISION)
        if self.revision < REV_SETTINGS_AS_STRINGS:
            raise ServerError.own(
                NOT_IMPLEMENTED,
                f"client protocol revision {client_revision} is too old "
                f"(need {REV_SETTINGS_AS_STRINGS})",
                fatal=True,
            )
        self.conn = self.open_connection()
        if database:
            try:
                self.conn.query(f"USE {quote_identifier(database)}", "TSV")
            except RuntimeError as exc:
                error = error_from_chdb(exc)
                error.fatal = True
                raise error from exc
            self.database = database
        engine = self.engine
        out = bytearray(encode_varint(ServerPacket.HELLO))
        out += encode_str("ClickHouse")
        out += encode_varint(engine.version_major) + encode_varint(engine.version_minor)
        out += encode_varint(SERVER_REVISION)
        if self.revision >= REV_SERVER_TIMEZONE:
            out += encode_str(engine.timezone)
        if self.revision >= REV_SERVER_DISPLAY_NAME:
            out += encode_str(DISPLAY_NAME)
        if self.revision >= REV_VERSION_PATCH:
            out += encode_varint(engine.version_patch)
        if self.revision >= REV_PASSWORD_RULES:
            out += encode_varint(0)
        if self.revision >= REV_INTERSERVER_SECRET_V2:
            out += _U64.pack(int.from_bytes(os.urandom(8), "little"))
        self.send([out])
        if self.revision >= REV_ADDENDUM:
            r.read_str()  # quota key

    def open_connection(self, settings: dict[str, str] | None = None) -> Any:
        conn = self.engine.connect(settings)
        conn.set_progress_callback(self.on_progress)
        if not settings:
            conn.query(f"SET log_comment = {quote_string(self.tag)}", "TSV")
        return conn

    # -- settings

    def wanted_settings(self, raw: list[tuple[str, int, str]]) -> dict[str, str]:
        wanted: dict[str, str] = {}
        for name, flags, value in raw:
            if name not in self.engine.setting_names:
                if flags & SETTING_FLAG_IMPORTANT:
                    raise ServerError.own(UNKNOWN_SETTING, f"Unknown setting '{name}'")
                continue  # a client-side or newer setting: ignored, like a real server
            if name in _DENIED_SETTINGS:
                continue
            wanted[name] = value
        if "log_comment" in wanted:
            wanted["log_comment"] = f"{wanted['log_comment']} [{self.tag}]"
        return wanted

    def apply_settings(self, wanted: dict[str, str]) -> None:
        """Make the session's query settings equal *wanted* with one SET (if any differ)."""
        assignments = [
            f"{name} = {quote_string(value)}"
            for name, value in wanted.items()
            if self.applied.get(name) != value
        ]
        for name in self.applied:
            if name not in wanted:
                if name == "log_comment":
                    assignments.append(f"log_comment = {quote_string(self.tag)}")
                else:
                    assignments.append(f"{name} = DEFAULT")
        if not assignments:
            return
        try:
            self.conn.query("SET " + ", ".join(assignments), "TSV")
        except RuntimeError as exc:
            # Partially applied: put every touched setting back to its default.
            for name in set(wanted) | set(self.applied):
                value = quote_string(self.tag) if name == "log_comment" else "DEFAULT"
                with contextlib.suppress(RuntimeError):
                    self.conn.query(f"SET {name} = {value}", "TSV")
            self.applied = {}
            raise error_from_chdb(exc) from exc
        self.applied = dict(wanted)

    def fresh_connection(self) -> Any:
        """A throwaway chDB connection in this session's current database.

        ``readonly`` cannot be lifted once set on a connection, so queries that ask for
        it run on their own connection instead of the session's.
        """
        try:
            conn = self.open_connection()
            conn.query(f"USE {quote_identifier(self.database)}", "TSV")
        except RuntimeError as exc:
            raise error_from_chdb(exc) from exc
        return conn

    def aux_connection(self) -> Any:
        if self.aux is None:
            self.aux = self.engine.connect()
            self.aux_database = "default"
        if self.aux_database != self.database:
            self.aux.query(f"USE {quote_identifier(self.database)}", "TSV")
            self.aux_database = self.database
        return self.aux

    @staticmethod
    def set_once(conn: Any, wanted: dict[str, str]) -> None:
        # readonly goes last: after it, nothing else may be changed.
        items = sorted(wanted.items(), key=lambda item: item[0] == "readonly")
        try:
            conn.query(
                "SET " + ", ".join(f"{name} = {quote_string(value)}" for name, value in items),
                "TSV",
            )
        except RuntimeError as exc:
            raise error_from_chdb(exc) from exc

    # -- query

    def handle_query(self) -> None:
        query = self.read_query()
        if query.compression:
            raise ServerError.own(
                UNKNOWN_COMPRESSION_METHOD,
                "the embedded ClickHouse server does not support compression; "
                "connect with compression=False",
                fatal=True,
            )
        external = self.read_external_tables()
        self.query_started_ns = time.monotonic_ns()
        self.busy = True
        conn = self.conn
        created: list[str] = []
        try:
            if query.stage != QUERY_STAGE_COMPLETE:
                raise ServerError.own(NOT_IMPLEMENTED, f"query processing stage {query.stage}")
            raw_settings = query.settings
            readonly = next((v for n, _f, v in raw_settings if n == "readonly"), "0")
            wanted = self.wanted_settings(
                [(n, f, v) for n, f, v in raw_settings if n != "readonly"]
            )
            is_readonly = readonly.strip().lower() not in ("0", "", "false")
            if is_readonly:
                conn = self.fresh_connection()
            else:
                self.apply_settings(wanted)
            for name, block in external:
                created.append(self.create_external_table(conn, name, block))
            if is_readonly:
                self.set_once(conn, {**wanted, "readonly": readonly})
            keyword = first_keyword(query.sql)
            plan = parse_insert(query.sql) if keyword == "INSERT" else None
            if plan is not None:
                self.run_insert(conn, plan, query.params)
            else:
                self.run_statement(conn, query.sql, query.params, keyword)
        except ServerError as exc:
            self.send_exception(exc)
            if exc.fatal:
                raise _CloseConnection from exc
        except (ConnectionClosed, ConnectionError, _CloseConnection):
            raise
        except Exception as exc:
            log.exception("query failed on connection %s", self.number)
            self.send_exception(ServerError.own(LOGICAL_ERROR, f"{type(exc).__name__}: {exc}"))
            raise _CloseConnection from exc
        finally:
            self.busy = False
            if conn is not self.conn:
                with contextlib.suppress(Exception):
                    conn.close()  # its temporary tables go with it
            else:
                for name in created:
                    with contextlib.suppress(RuntimeError):
                        conn.query(
                            f"DROP TEMPORARY TABLE IF EXISTS {quote_identifier(name)}", "TSV"
                        )

    def create_external_table(self, conn: Any, name: str, block: NativeBlock) -> str:
        name = name or "_data"
        columns = ", ".join(f"{quote_identifier(c.name)} {c.type_name}" for c in block.columns)
        try:
            conn.query(
                f"CREATE TEMPORARY TABLE {quote_identifier(name)} ({columns}) ENGINE = Memory",
                "TSV",
            )
            if block.rows:
                inserter = conn.send_insert(f"INSERT INTO {quote_identifier(name)}", "Native")
                conn.insert_append(inserter, b"".join(block.native_pieces()))
                conn.insert_done(inserter)
        except RuntimeError as exc:
            raise error_from_chdb(exc) from exc
        return name

    def begin_query(self) -> None:
        self.cancel_requested = False
        self.kill_issued = False
        self.progress_payload = None
        self.progress_sent = _Progress()
        self.query_started_ns = time.monotonic_ns()
        self.watcher.activate()

    def end_query(self) -> None:
        self.watcher.deactivate()

    def run_statement(self, conn: Any, sql: str, params: dict[str, str], keyword: str) -> None:
        if keyword in _RESULT_KEYWORDS:
            sql = strip_format_clause(sql)
        stats = _QueryStats()
        if keyword in _STREAMING_KEYWORDS:
            stats.describe = (sql, params)
        written = (0, 0)
        self.begin_query()
        try:
            stream = None
            if keyword in _STREAMING_KEYWORDS:
                try:
                    stream = conn.send_query(sql, "Native", params=params)
                except RuntimeError as exc:
                    if "Streaming query is not supported" not in str(exc):
                        raise
            if stream is not None:
                self.stream_select(conn, stream, stats)
                if not stats.header_sent and not self.cancel_requested:
                    self.send_describe_header(stats)
            else:
                result = conn.query(sql, "Native", params=params)
                written = (result.rows_written(), result.bytes_written())
                if keyword == "USE" and conn is self.conn:
                    current = conn.query("SELECT currentDatabase()", "TSV").bytes().decode()
                    self.database = current.strip()
                if result.size():
                    self.send_native(bytearray(result.get_memview().view()), stats)
        except RuntimeError as exc:
            if not self.cancel_requested:
                raise error_from_chdb(exc) from exc
        except NativeFormatError as exc:
            raise ServerError.own(
                NOT_IMPLEMENTED if isinstance(exc, UnsupportedTypeError) else INCORRECT_DATA,
                str(exc),
            ) from exc
        finally:
            self.end_query()
        if self.client_gone:
            raise ConnectionClosed("client went away during the query")
        self.finish_query(stats, written)

    def finish_query(self, stats: _QueryStats, written: tuple[int, int] = (0, 0)) -> None:
        self.flush_progress(final_written=written)
        if stats.blocks:
            self.send_profile_info(stats)
        self.send_end_of_stream()

    def stream_select(self, conn: Any, stream: Any, stats: _QueryStats) -> None:
        exhausted = False
        try:
            while not self.cancel_requested:
                chunk = conn.streaming_fetch_result(stream)
                if chunk is None or (not chunk.size() and not chunk.rows_read()):
                    exhausted = True
                    break
                if chunk.size():
                    self.send_native(bytearray(chunk.get_memview().view()), stats)
        finally:
            if not exhausted:
                with contextlib.suppress(RuntimeError):
                    conn.streaming_cancel_query(stream)

    def send_native(self, data: bytearray, stats: _QueryStats) -> None:
        for block in split_native(data):
            if not stats.header_sent:
                self.fix_datetime_types(block, stats)
                self.send_data([header_block([(c.name, c.type_name) for c in block.columns])])
                stats.header_sent = True
            elif stats.type_overrides:
                for index, type_name in stats.type_overrides.items():
                    block.columns[index].retype(type_name)
            self.send_data(block.protocol_pieces())
            stats.rows += block.rows
            stats.blocks += 1
            stats.bytes += block.nbytes

    def fix_datetime_types(self, block: NativeBlock, stats: _QueryStats) -> None:
        """Put back the time zone the Native format drops from top-level DateTime('tz').

        ClickHouse omits it for clients older than revision 54337, which chDB's Native
        output format is; clickhouse-driver would then return naive datetimes in the
        server zone instead of aware ones in the column's zone.
        """
        bare = [i for i, c in enumerate(block.columns) if c.type_name == "DateTime"]
        if not bare or stats.describe is None:
            return
        described = self.describe_result(*stats.describe)
        if described is None or len(described) != len(block.columns):
            return
        for index in bare:
            type_name = described[index][1]
            if type_name.startswith("DateTime("):
                stats.type_overrides[index] = type_name
                block.columns[index].retype(type_name)

    def describe_result(self, sql: str, params: dict[str, str]) -> list[tuple[str, str]] | None:
        body = sql.strip().rstrip(";")
        try:
            raw = (
                self.aux_connection()
                .query(
                    f"DESCRIBE TABLE (\n{body}\n) SETTINGS print_pretty_type_names = 0",
                    "JSONCompact",
                    params=params,
                )
                .bytes()
            )
            return [(row[0], row[1]) for row in json.loads(raw)["data"]]
        except (RuntimeError, ValueError, KeyError, IndexError):
            return None

    def send_describe_header(self, stats: _QueryStats) -> None:
        """An empty result has no Native block, but clients still expect the header."""
        if stats.describe is None:
            return
        described = self.describe_result(*stats.describe)
        if described is not None:
            self.send_data([header_block(described)])
            stats.header_sent = True

    # -- INSERT with data from the client

    def describe_table(self, conn: Any, table: str) -> list[tuple[str, str, str]]:
        try:
            raw = conn.query(
                f"DESCRIBE TABLE {table} SETTINGS print_pretty_type_names = 0", "JSONCompact"
            ).bytes()
        except RuntimeError as exc:
            raise error_from_chdb(exc) from exc
        return [(row[0], row[1], row[2]) for row in json.loads(raw)["data"]]

    def insert_columns(self, conn: Any, plan: InsertPlan) -> list[tuple[str, str]]:
        if plan.input_structure is not None:
            columns = []
            for item in split_args(plan.input_structure):
                name, type_name = split_element(item)
                if not name:
                    raise ServerError.own(
                        INCORRECT_DATA, f"cannot parse input() structure {plan.input_structure!r}"
                    )
                columns.append((name, type_name))
            return columns
        described = self.describe_table(conn, plan.table)
        if plan.columns is None:
            return [(n, t) for n, t, kind in described if kind in ("", "DEFAULT")]
        types = {n: t for n, t, _kind in described}
        missing = [c for c in plan.columns if c not in types]
        if missing:
            raise ServerError.own(
                NO_SUCH_COLUMN_IN_TABLE,
                f"No such column {missing[0]} in table {plan.table}",
            )
        return [(c, types[c]) for c in plan.columns]

    def run_insert(self, conn: Any, plan: InsertPlan, params: dict[str, str]) -> None:
        columns = self.insert_columns(conn, plan)
        staging: str | None = None
        if plan.input_structure is not None and plan.input_span is not None:
            # chDB's streaming insert cannot run INSERT ... SELECT: stage the client's
            # rows in a temporary table and run the statement with input() replaced.
            staging = f"_input_{self.number}_{int(time.monotonic_ns())}"
            structure = ", ".join(f"{quote_identifier(n)} {t}" for n, t in columns)
            try:
                conn.query(f"CREATE TEMPORARY TABLE {staging} ({structure}) ENGINE = Memory", "TSV")
            except RuntimeError as exc:
                raise error_from_chdb(exc) from exc
            start, end = plan.input_span
            final_sql = plan.chdb_sql[:start] + staging + plan.chdb_sql[end:]
            insert_sql = f"INSERT INTO {staging}"
        else:
            final_sql = None
            insert_sql = plan.chdb_sql
            if plan.columns is None:
                names = ", ".join(quote_identifier(n) for n, _t in columns)
                head, tail = plan.chdb_sql[: plan.table_end], plan.chdb_sql[plan.table_end :]
                insert_sql = f"{head} ({names}){tail}"
        try:
            self.send_data([header_block(columns)])
            written = self.receive_insert_blocks(conn, insert_sql)
            if final_sql is not None:
                self.begin_query()
                try:
                    result = conn.query(final_sql, "TSV", params=params)
                    written = (result.rows_written(), result.bytes_written())
                except RuntimeError as exc:
                    raise error_from_chdb(exc) from exc
                finally:
                    self.end_query()
        finally:
            if staging is not None:
                with contextlib.suppress(RuntimeError):
                    conn.query(f"DROP TEMPORARY TABLE IF EXISTS {staging}", "TSV")
        self.send_profile_events()
        self.progress_payload = None
        self.progress_sent = _Progress()
        self.finish_query(_QueryStats(), written)

    def receive_insert_blocks(self, conn: Any, insert_sql: str) -> tuple[int, int]:
        worker = _InsertWorker(conn, insert_sql)
        try:
            while True:
                packet = self.reader.read_varint()
                if packet == ClientPacket.CANCEL:
                    worker.abort()
                    raise ServerError.own(QUERY_WAS_CANCELLED, "INSERT was cancelled", fatal=True)
                if packet != ClientPacket.DATA:
                    raise ServerError.own(
                        UNEXPECTED_PACKET_FROM_CLIENT,
                        f"expected Data during INSERT, got packet {packet}",
                        fatal=True,
                    )
                _name, block = self.read_data_block()
                if not block.columns:
                    break
                if worker.error is not None:
                    error = error_from_chdb(worker.error)
                    error.fatal = True
                    raise error
                if block.rows:
                    worker.put(block.native_chunks())
                # Ask for the next block at once: chDB keeps writing this one meanwhile.
                self.send_profile_events()
        except BaseException:
            worker.abort()
            raise
        worker.finish()
        if worker.error is not None:
            raise error_from_chdb(worker.error)
        return worker.rows_written, worker.bytes_written


class _Watcher:
    """While a query runs: reads Cancel (or EOF) from the client and sends Progress.

    The connection thread is blocked inside chDB then, so without this a Cancel would
    only be noticed after the query's next block.  Cancellation is a KILL QUERY issued
    from a separate chDB connection, which makes the blocked chDB call return promptly.
    """

    INTERVAL = 0.1

    def __init__(self, session: Session) -> None:
        self.session = session
        self.wake_r, self.wake_w = socket.socketpair()
        self.cond = threading.Condition()
        self.active = False
        self.closed = False
        self.idle = threading.Event()
        self.idle.set()
        self.thread = threading.Thread(
            target=self.loop, name=f"ch-watch-{session.number}", daemon=True
        )
        self.thread.start()

    def activate(self) -> None:
        with self.cond:
            self.active = True
            self.idle.clear()
            self.cond.notify()

    def deactivate(self) -> None:
        with self.cond:
            if not self.active:
                return
            self.active = False
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")
        self.idle.wait()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.active = False
            self.cond.notify()
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)
        self.wake_r.close()
        self.wake_w.close()

    def loop(self) -> None:
        session = self.session
        while True:
            with self.cond:
                while not self.active and not self.closed:
                    self.idle.set()
                    self.cond.wait()
                if self.closed:
                    self.idle.set()
                    return
            next_progress = time.monotonic() + self.INTERVAL
            while self.active:
                watch_socket = session.pending_packet is None and not session.client_gone
                readable = watch_socket and session.reader.has_buffered()
                if not readable:
                    timeout = max(0.0, next_progress - time.monotonic())
                    fds: list[Any] = [self.wake_r]
                    if watch_socket:
                        fds.append(session.sock)
                    try:
                        ready, _, _ = select.select(fds, [], [], timeout)
                    except (OSError, ValueError):
                        ready = []
                        session.client_gone = True
                    if self.wake_r in ready:
                        with contextlib.suppress(OSError):
                            self.wake_r.recv(64)
                    readable = session.sock in ready
                if not self.active:
                    break
                if readable:
                    try:
                        packet = session.reader.read_varint()
                    except (ConnectionClosed, OSError):
                        session.client_gone = True
                        session.request_cancel()
                    else:
                        if packet == ClientPacket.CANCEL:
                            session.request_cancel()
                        else:
                            session.pending_packet = packet
                if time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + self.INTERVAL
                    with contextlib.suppress(OSError):
                        session.flush_progress()


# ======================================================================================
# Server


def _check_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StartupError(
            f"embedded ClickHouse: data directory {path} cannot be created: "
            "a file with that name exists",
            EXIT_BAD_DIRECTORY,
        ) from exc
    except OSError as exc:
        raise StartupError(
            f"embedded ClickHouse: data directory {path} cannot be created: {exc.strerror or exc}",
            EXIT_BAD_DIRECTORY,
        ) from exc
    if not path.is_dir():
        raise StartupError(
            f"embedded ClickHouse: data directory {path} is not a directory", EXIT_BAD_DIRECTORY
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(
            f"embedded ClickHouse: data directory {path} is not writable: Permission denied",
            EXIT_BAD_DIRECTORY,
        )


def _lock_directory(path: Path) -> int:
    lock_path = path / LOCK_FILE_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartupError(
            f"embedded ClickHouse: data directory {path} is not writable: {exc.strerror or exc}",
            EXIT_BAD_DIRECTORY,
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            os.close(fd)
            raise StartupError(
                f"embedded ClickHouse: data directory {path} cannot be locked: "
                f"{exc.strerror or exc}",
                EXIT_BAD_DIRECTORY,
            ) from exc
        try:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip()
        except OSError:
            owner = ""
        os.close(fd)
        who = f"pid {owner}" if owner.isdigit() else "pid unknown"
        raise StartupError(
            f"embedded ClickHouse: data directory {path} is locked by another process ({who})",
            EXIT_LOCKED,
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class EmbeddedServer:
    """The server; normally run as a subprocess via :func:`main`.

    ``start()`` locks the directory, opens chDB, binds and writes the state file;
    ``serve_forever()`` accepts connections until ``shutdown()`` (thread- and
    signal-safe); cleanup happens before ``serve_forever()`` returns.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self.host = host
        self.port = port
        self.state_file = Path(state_file) if state_file else self.path / STATE_FILE_NAME
        self.engine: Engine
        self.listener: socket.socket | None = None
        self.lock_fd: int | None = None
        self.sessions: set[Session] = set()
        self.sessions_lock = threading.Lock()
        self.stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._counter = itertools.count(1)

    @property
    def address(self) -> tuple[str, int]:
        assert self.listener is not None
        host, port = self.listener.getsockname()[:2]
        return host, port

    def start(self) -> None:
        _check_directory(self.path)
        self.lock_fd = _lock_directory(self.path)
        try:
            self.engine = Engine(self.path)
        except RuntimeError as exc:
            self._release_lock()
            text = str(exc)
            if "lock" in text.lower() or "already" in text.lower():
                raise StartupError(
                    f"embedded ClickHouse: data directory {self.path} is locked by another "
                    f"process (chDB: {text.splitlines()[0]})",
                    EXIT_LOCKED,
                ) from exc
            raise StartupError(
                f"embedded ClickHouse: chDB could not open data directory {self.path}: "
                f"{text.splitlines()[0] if text else type(exc).__name__}",
            ) from exc
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
        except OSError as exc:
            self.engine.close()
            self._release_lock()
            raise StartupError(
                f"embedded ClickHouse: cannot listen on {self.host}:{self.port} "
                f"for data directory {self.path}: {exc.strerror or exc}"
            ) from exc
        self.listener = listener
        self._write_state()

    def _write_state(self) -> None:
        host, port = self.address
        state = {
            "pid": os.getpid(),
            "host": host,
            "port": port,
            "path": str(self.path),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "url": f"clickhouse://default@{host}:{port}/default",
            "clickhouse_version": self.engine.version,
            "protocol_revision": SERVER_REVISION,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def _remove_state(self) -> None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        if state.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                self.state_file.unlink()

    def _release_lock(self) -> None:
        if self.lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.lock_fd, 0)
            os.close(self.lock_fd)
            self.lock_fd = None

    def shutdown(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: self.shutdown())

    def forget(self, session: Session) -> None:
        with self.sessions_lock:
            self.sessions.discard(session)

    def serve_forever(self) -> None:
        assert self.listener is not None
        listener = self.listener
        host, port = self.address
        log.info(
            "embedded ClickHouse %s listening on %s:%s (data directory %s, pid %s)",
            self.engine.version,
            host,
            port,
            self.path,
            os.getpid(),
        )
        try:
            while not self.stopping.is_set():
                try:
                    ready, _, _ = select.select([listener, self._wake_r], [], [])
                except InterruptedError:
                    continue
                if self._wake_r in ready:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                if listener not in ready or self.stopping.is_set():
                    continue
                try:
                    sock, _addr = listener.accept()
                except OSError:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                session = Session(self, sock, next(self._counter))
                with self.sessions_lock:
                    self.sessions.add(session)
                session.thread.start()
        finally:
            self._stop()

    def _stop(self) -> None:
        log.info("embedded ClickHouse shutting down")
        if self.listener is not None:
            self.listener.close()
        with self.sessions_lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.shutdown()
        deadline = time.monotonic() + 30
        for session in sessions:
            session.thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self.engine.close()
        self._remove_state()
        self._release_lock()
        self._wake_r.close()
        self._wake_w.close()
        log.info("embedded ClickHouse stopped")


def serve(
    path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: str | os.PathLike[str] | None = None,
) -> None:
    """Run the server in this process until SIGTERM/SIGINT (raises StartupError on failure)."""
    server = EmbeddedServer(path, host, port, state_file)
    server.start()
    server.install_signal_handlers()
    server.serve_forever()


@dataclass
class SpawnedServer:
    """A server started by :func:`spawn` in a child process."""

    process: subprocess.Popen[bytes]
    state_file: Path
    state: dict[str, Any]

    @property
    def host(self) -> str:
        return str(self.state["host"])

    @property
    def port(self) -> int:
        return int(self.state["port"])

    @property
    def url(self) -> str:
        return f"clickhouse://default@{self.host}:{self.port}/default"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code (0 on a clean shutdown)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def spawn(
    path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: str | os.PathLike[str] | None = None,
    log_file: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> SpawnedServer:
    """Start the server as a subprocess and wait until it accepts connections."""
    state_path = Path(state_file) if state_file else Path(path) / STATE_FILE_NAME
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    project_root = Path(__file__).resolve().parents[2]
    command = [
        sys.executable, "-m", "analytics.clickhouse.embedded_server", "--path", str(path),
        "--host", host, "--port", str(port), "--state-file", str(state_path),
    ]  # fmt: skip
    with contextlib.ExitStack() as stack:
        log_target: Any = subprocess.DEVNULL
        if log_file is not None:
            log_target = stack.enter_context(open(log_file, "ab"))
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            cwd=project_root,
            stdin=subprocess.DEVNULL,
            stdout=log_target,
            stderr=log_target,
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            state = None
        if state and state.get("pid") == process.pid:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((state["host"], state["port"]), timeout=1),
            ):
                return SpawnedServer(process, state_path, state)
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            if code is None:
                process.kill()
                process.wait()
            raise RuntimeError(
                f"embedded ClickHouse on {path} did not start (exit code {process.returncode})"
            )
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analytics.clickhouse.embedded_server",
        description="Serve a chDB data directory over ClickHouse's native TCP protocol.",
    )
    parser.add_argument("--path", required=True, help="chDB data directory (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--state-file", default=None, help=f"JSON state file (default: PATH/{STATE_FILE_NAME})"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("TANDEM_CLICKHOUSE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        serve(args.path, args.host, args.port, args.state_file)
    except StartupError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201 - the one-line startup failure report
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
