"""ClickHouse ``Native`` column encoding: type parsing, column sizing, block re-framing.

chDB speaks the plain ``Native`` *format* (blocks without block info and without the
per-column custom-serialization byte); the native TCP *protocol* at the revisions we
announce frames every block with block info and puts a serialization-kind byte after
each column's type name.  Converting between the two needs each column's byte length,
which the Native encoding does not store, so this module sizes columns by walking
their encoding: O(1) for fixed-width types, a C-accelerated scan (clickhouse-driver's
``BufferedReader.read_strings_arrow``) for strings, recursion for composite types.

Nothing here executes queries; the server and the client module both import it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from clickhouse_driver.bufferedreader import BufferedReader

__all__ = [
    "BLOCK_INFO",
    "ByteStream",
    "ConnectionClosed",
    "NativeBlock",
    "NativeFormatError",
    "ShortReadError",
    "TypeSpec",
    "UnsupportedTypeError",
    "codec_for",
    "decimal_width",
    "encode_str",
    "encode_varint",
    "header_block",
    "parse_type",
    "split_args",
    "split_element",
    "split_native",
    "strip_nullable",
]

_U64 = struct.Struct("<Q")

# Protocol block info as written by ClickHouse and clickhouse-driver: field 1
# (is_overflows=0), field 2 (bucket_num=-1), terminator.
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

# Direct reads of at least this many bytes bypass the socket buffer, so large
# fixed-width columns land in their own buffer with a single kernel copy.
_DIRECT_READ_MIN = 64 * 1024


Piece = bytes | bytearray | memoryview


class NativeFormatError(Exception):
    """Native data is malformed or uses an encoding this module cannot size."""


class UnsupportedTypeError(NativeFormatError):
    """A column type whose Native encoding cannot be sized."""

    def __init__(self, type_name: str, reason: str = "") -> None:
        self.type_name = type_name
        detail = f": {reason}" if reason else ""
        super().__init__(f"column type {type_name} is not supported by the embedded server{detail}")


class ShortReadError(NativeFormatError):
    """An in-memory buffer ended in the middle of a block."""


class ConnectionClosed(Exception):
    """The peer closed the socket."""


# --------------------------------------------------------------------------------------
# Small encoders


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_str(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return encode_varint(len(raw)) + raw


# --------------------------------------------------------------------------------------
# Type names


@dataclass(frozen=True)
class TypeSpec:
    """A parsed type name: ``Decimal(18, 8)`` -> name ``Decimal``, args ``('18', '8')``."""

    name: str
    args: tuple[str, ...]
    full: str


def split_args(inner: str) -> list[str]:
    """Split a type's argument list on top-level commas (quotes and parens respected)."""
    args: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(inner):
        ch = inner[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
        i += 1
    tail = inner[start:].strip()
    if tail or args:
        args.append(tail)
    return args


@lru_cache(maxsize=4096)
def parse_type(type_name: str) -> TypeSpec:
    text = type_name.strip()
    paren = text.find("(")
    if paren < 0:
        return TypeSpec(text, (), text)
    if not text.endswith(")"):
        raise UnsupportedTypeError(type_name, "unbalanced parentheses")
    return TypeSpec(text[:paren].strip(), tuple(split_args(text[paren + 1 : -1])), text)


def split_element(arg: str) -> tuple[str | None, str]:
    """``a UInt8`` -> ('a', 'UInt8'); ``UInt8`` -> (None, 'UInt8') (Tuple/Nested elements)."""
    arg = arg.strip()
    if arg.startswith("`") or arg.startswith('"'):
        quote = arg[0]
        i = 1
        while i < len(arg):
            if arg[i] == "\\":
                i += 2
                continue
            if arg[i] == quote:
                break
            i += 1
        return arg[1:i], arg[i + 1 :].strip()
    depth = 0
    quote = ""
    for i, ch in enumerate(arg):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch.isspace() and depth == 0:
            return arg[:i], arg[i:].strip()
    return None, arg


def strip_nullable(type_name: str) -> str:
    spec = parse_type(type_name)
    return spec.args[0] if spec.name == "Nullable" and spec.args else type_name


def decimal_width(spec: TypeSpec) -> int:
    """Bytes per value of a Decimal type (4/8/16/32 by precision)."""
    fixed = {"Decimal32": 4, "Decimal64": 8, "Decimal128": 16, "Decimal256": 32}
    if spec.name in fixed:
        return fixed[spec.name]
    if not spec.args:
        raise UnsupportedTypeError(spec.full, "Decimal without precision")
    precision = int(spec.args[0])
    if precision <= 9:
        return 4
    if precision <= 18:
        return 8
    if precision <= 38:
        return 16
    return 32


# --------------------------------------------------------------------------------------
# Column codecs: walk a column's Native encoding to find where it ends.


class Codec:
    """Consumes one column's bytes from a :class:`ByteStream`."""

    __slots__ = ()

    def skip_prefix(self, stream: ByteStream) -> None:
        """Serialization state prefix, written once per column before the data."""

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        raise NotImplementedError


class _Fixed(Codec):
    __slots__ = ("width",)

    def __init__(self, width: int) -> None:
        self.width = width

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        if rows:
            stream.skip(rows * self.width)


class _Strings(Codec):
    __slots__ = ()

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        if rows:
            stream.skip_strings(rows)


class _Nullable(Codec):
    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def skip_prefix(self, stream: ByteStream) -> None:
        self.inner.skip_prefix(stream)

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        if rows:
            stream.skip(rows)
            self.inner.skip_data(stream, rows)


class _Array(Codec):
    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def skip_prefix(self, stream: ByteStream) -> None:
        self.inner.skip_prefix(stream)

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        if not rows:
            return
        # Offsets are cumulative, so the last one is the nested row count.
        stream.skip((rows - 1) * 8)
        nested = stream.read_u64()
        self.inner.skip_data(stream, nested)


class _Tuple(Codec):
    __slots__ = ("elements",)

    def __init__(self, elements: list[Codec]) -> None:
        self.elements = elements

    def skip_prefix(self, stream: ByteStream) -> None:
        for element in self.elements:
            element.skip_prefix(stream)

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        for element in self.elements:
            element.skip_data(stream, rows)


_LC_NEED_GLOBAL_DICTIONARY = 1 << 8
_LC_HAS_ADDITIONAL_KEYS = 1 << 9
_LC_INDEX_WIDTH = {0: 1, 1: 2, 2: 4, 3: 8}


class _LowCardinality(Codec):
    __slots__ = ("keys", "type_name")

    def __init__(self, keys: Codec, type_name: str) -> None:
        self.keys = keys
        self.type_name = type_name

    def skip_prefix(self, stream: ByteStream) -> None:
        version = stream.read_u64()
        if version != 1:  # SharedDictionariesWithAdditionalKeys
            raise UnsupportedTypeError(self.type_name, f"dictionary key version {version}")
        self.keys.skip_prefix(stream)

    def skip_data(self, stream: ByteStream, rows: int) -> None:
        # A column may be split in several dictionary granules; Native writes one,
        # but the loop costs nothing and keeps us correct if that ever changes.
        left = rows
        while left > 0:
            flags = stream.read_u64()
            if flags & _LC_NEED_GLOBAL_DICTIONARY:
                raise UnsupportedTypeError(self.type_name, "global dictionaries")
            width = _LC_INDEX_WIDTH.get(flags & 0xFF)
            if width is None:
                raise NativeFormatError(f"{self.type_name}: bad index type in flags {flags:#x}")
            if flags & _LC_HAS_ADDITIONAL_KEYS:
                self.keys.skip_data(stream, stream.read_u64())
            count = stream.read_u64()
            if count == 0 or count > left:
                raise NativeFormatError(f"{self.type_name}: bad index count {count}")
            stream.skip(count * width)
            left -= count


_FIXED_WIDTHS = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1, "Nothing": 1,
    "UInt16": 2, "Int16": 2, "Date": 2, "Enum16": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "Date32": 4, "DateTime": 4, "IPv4": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16,
    "UInt256": 32, "Int256": 32,
}  # fmt: skip

_ALIASES = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)",
    "LineString": "Array(Point)",
    "MultiLineString": "Array(LineString)",
    "Polygon": "Array(Ring)",
    "MultiPolygon": "Array(Polygon)",
}


@lru_cache(maxsize=4096)
def codec_for(type_name: str) -> Codec:
    """The sizing codec for a type name; raises UnsupportedTypeError if it has none."""
    spec = parse_type(type_name)
    name = spec.name
    if name in _FIXED_WIDTHS:
        return _Fixed(_FIXED_WIDTHS[name])
    if name.startswith("Interval"):
        return _Fixed(8)
    if name.startswith("Decimal"):
        return _Fixed(decimal_width(spec))
    if name == "String":
        return _Strings()
    if name == "FixedString":
        return _Fixed(int(spec.args[0]))
    if name in _ALIASES and not spec.args:
        return codec_for(_ALIASES[name])
    if name == "Nullable":
        return _Nullable(codec_for(spec.args[0]))
    if name == "Array":
        return _Array(codec_for(spec.args[0]))
    if name == "Tuple":
        return _Tuple([codec_for(split_element(arg)[1]) for arg in spec.args])
    if name == "Nested":
        return _Array(_Tuple([codec_for(split_element(arg)[1]) for arg in spec.args]))
    if name == "Map":
        return _Array(_Tuple([codec_for(spec.args[0]), codec_for(spec.args[1])]))
    if name == "LowCardinality":
        return _LowCardinality(codec_for(strip_nullable(spec.args[0])), type_name)
    if name == "SimpleAggregateFunction":
        return codec_for(spec.args[-1])
    raise UnsupportedTypeError(type_name)


# --------------------------------------------------------------------------------------
# Byte source


class ByteStream(BufferedReader):
    """Sequential reader over a socket or one in-memory buffer.

    Subclasses clickhouse-driver's Cython ``BufferedReader`` so string columns are
    scanned in C.  While *capturing*, every consumed byte is also recorded as a list of
    zero-copy pieces (views of the receive buffers plus dedicated buffers for large
    direct reads), which lets the server forward a column without re-encoding it.
    """

    def __init__(
        self,
        sock: socket.socket | None = None,
        data: bytearray | None = None,
        bufsize: int = 1 << 20,
    ) -> None:
        super().__init__(0 if data is not None else bufsize)
        self.sock = sock
        self.bufsize = bufsize
        if data is not None:
            self.buffer = data
            self.current_buffer_size = len(data)
        self.position = 0
        self._pieces: list[Piece] | None = None
        self._capture_from = 0
        # The current buffer is referenced by captured pieces: never overwrite it.
        self._shared = False

    # -- refill (called from C code too, with position == current_buffer_size)

    def read_into_buffer(self) -> None:
        # Must leave self.position alone: the Cython string readers keep their own
        # position while they refill and break if it is reset here.  Python callers
        # use _refill().
        if self.sock is None:
            raise ShortReadError("Native data ended in the middle of a block")
        if self._pieces is not None:
            if self._capture_from < self.current_buffer_size:
                self._pieces.append(
                    memoryview(self.buffer)[self._capture_from : self.current_buffer_size]
                )
                self._shared = True
            self._capture_from = 0
        if self._shared:
            self.buffer = bytearray(self.bufsize)
            self._shared = False
        received = self.sock.recv_into(self.buffer)
        if not received:
            raise ConnectionClosed("peer closed the connection")
        self.current_buffer_size = received

    def _refill(self) -> None:
        self.read_into_buffer()
        self.position = 0

    def has_buffered(self) -> bool:
        return self.position < self.current_buffer_size

    # -- capture

    def begin_capture(self) -> None:
        self._pieces = []
        self._capture_from = self.position

    def end_capture(self) -> list[Piece]:
        pieces = self._pieces
        if pieces is None:
            raise RuntimeError("end_capture without begin_capture")
        if self._capture_from < self.position:
            pieces.append(memoryview(self.buffer)[self._capture_from : self.position])
            self._shared = True
        self._pieces = None
        return pieces

    # -- primitives

    def read_varint(self) -> int:
        buf = self.buffer
        pos = self.position
        size = self.current_buffer_size
        result = 0
        shift = 0
        while True:
            if pos >= size:
                self.position = pos
                self._refill()
                buf = self.buffer
                pos = self.position
                size = self.current_buffer_size
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.position = pos
                return result
            shift += 7
            if shift > 63:
                raise NativeFormatError("varint too long")

    def read_bytes(self, count: int) -> bytes:
        start = self.position
        end = start + count
        if end <= self.current_buffer_size:
            self.position = end
            return bytes(self.buffer[start:end])
        parts = []
        while count:
            if self.position >= self.current_buffer_size:
                self._refill()
            take = min(count, self.current_buffer_size - self.position)
            parts.append(bytes(self.buffer[self.position : self.position + take]))
            self.position += take
            count -= take
        return b"".join(parts)

    def read_str_bytes(self) -> bytes:
        return self.read_bytes(self.read_varint())

    def read_str(self) -> str:
        return self.read_str_bytes().decode("utf-8")

    def read_u8(self) -> int:
        if self.position < self.current_buffer_size:
            value: int = self.buffer[self.position]
            self.position += 1
            return value
        return self.read_bytes(1)[0]

    def read_u64(self) -> int:
        pos = self.position
        if pos + 8 <= self.current_buffer_size:
            self.position = pos + 8
            value: int = _U64.unpack_from(self.buffer, pos)[0]
            return value
        value = _U64.unpack(self.read_bytes(8))[0]
        return value

    def skip(self, count: int) -> None:
        available = self.current_buffer_size - self.position
        if count <= available:
            self.position += count
            return
        if self.sock is None:
            raise ShortReadError("Native data ended in the middle of a column")
        if self._pieces is not None and count - available >= _DIRECT_READ_MIN:
            if self._capture_from < self.current_buffer_size:
                self._pieces.append(
                    memoryview(self.buffer)[self._capture_from : self.current_buffer_size]
                )
                self._shared = True
            # MSG_WAITALL fills a fresh bytes object in one syscall: the column arrives
            # with a single kernel copy and can be handed to chDB without another.
            remaining = count - available
            while remaining:
                chunk = self.sock.recv(remaining, socket.MSG_WAITALL)
                if not chunk:
                    raise ConnectionClosed("peer closed the connection")
                self._pieces.append(chunk)
                remaining -= len(chunk)
            self.position = self.current_buffer_size
            self._capture_from = self.current_buffer_size
            return
        count -= available
        self.position = self.current_buffer_size
        while True:
            self._refill()
            if count <= self.current_buffer_size:
                self.position = count
                return
            count -= self.current_buffer_size
            self.position = self.current_buffer_size

    def skip_strings(self, count: int) -> None:
        self.read_strings_arrow(count)


# --------------------------------------------------------------------------------------
# Blocks


@dataclass
class NativeColumn:
    name: str
    type_name: str
    header: bytes  # encoded name + type, as on the wire
    data: list[Piece]

    def retype(self, type_name: str) -> None:
        """Change the announced type (only to one with the same encoding)."""
        self.type_name = type_name
        self.header = encode_str(self.name) + encode_str(type_name)


@dataclass
class NativeBlock:
    rows: int
    columns: list[NativeColumn]

    @property
    def nbytes(self) -> int:
        return sum(len(piece) for column in self.columns for piece in column.data)

    def protocol_pieces(self) -> list[Piece]:
        """Block info + header + per column (name, type, serialization byte 0, data)."""
        pieces: list[Piece] = [
            BLOCK_INFO + encode_varint(len(self.columns)) + encode_varint(self.rows)
        ]
        for column in self.columns:
            pieces.append(column.header + b"\x00")
            pieces.extend(column.data)
        return pieces

    def native_pieces(self) -> list[Piece]:
        """Plain Native format, as chDB's ``Native`` input format reads it."""
        pieces: list[Piece] = [encode_varint(len(self.columns)) + encode_varint(self.rows)]
        for column in self.columns:
            pieces.append(column.header)
            pieces.extend(column.data)
        return pieces

    def native_chunks(self, coalesce: int = 1 << 20) -> list[bytes]:
        """The Native encoding as ``bytes`` chunks: large received columns are passed on
        as they are, small pieces are merged (chDB's insert API takes ``bytes``)."""
        chunks: list[bytes] = []
        pending: list[Piece] = []
        pending_size = 0
        for piece in self.native_pieces():
            if isinstance(piece, bytes) and len(piece) >= coalesce:
                if pending:
                    chunks.append(b"".join(pending))
                    pending, pending_size = [], 0
                chunks.append(piece)
                continue
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= coalesce:
                chunks.append(b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            chunks.append(b"".join(pending))
        return chunks


def read_block(stream: ByteStream, *, block_info: bool, serialization_flags: bool) -> NativeBlock:
    """Read one block from *stream*, capturing each column's data bytes.

    With ``block_info``/``serialization_flags`` it reads the protocol framing (client
    Data packets); without, the plain Native format (chDB output).
    """
    if block_info:
        while True:
            field = stream.read_varint()
            if field == 0:
                break
            if field == 1:
                stream.skip(1)
            elif field == 2:
                stream.skip(4)
            else:
                raise NativeFormatError(f"unknown block info field {field}")
    ncols = stream.read_varint()
    rows = stream.read_varint()
    columns: list[NativeColumn] = []
    for _ in range(ncols):
        raw_name = stream.read_str_bytes()
        raw_type = stream.read_str_bytes()
        type_name = raw_type.decode("utf-8")
        if serialization_flags and stream.read_u8():
            raise UnsupportedTypeError(type_name, "custom (sparse) serialization")
        data: list[Piece] = []
        if rows:
            codec = codec_for(type_name)
            stream.begin_capture()
            try:
                codec.skip_prefix(stream)
                codec.skip_data(stream, rows)
            finally:
                data = stream.end_capture()
        columns.append(
            NativeColumn(
                raw_name.decode("utf-8", "replace"),
                type_name,
                encode_str(raw_name) + encode_str(raw_type),
                data,
            )
        )
    return NativeBlock(rows, columns)


def split_native(data: bytearray) -> Iterator[NativeBlock]:
    """Split chDB ``Native`` output (one or more concatenated blocks) into blocks."""
    stream = ByteStream(data=data)
    while stream.position < stream.current_buffer_size:
        yield read_block(stream, block_info=False, serialization_flags=False)


def header_block(columns: list[tuple[str, str]]) -> bytes:
    """A protocol block with the given columns and no rows (query header / insert sample)."""
    out = bytearray(BLOCK_INFO)
    out += encode_varint(len(columns))
    out += encode_varint(0)
    for name, type_name in columns:
        out += encode_str(name)
        out += encode_str(type_name)
        out += b"\x00"
    return bytes(out)
