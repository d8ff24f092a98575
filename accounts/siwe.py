"""Sign-In with Ethereum (EIP-4361): parse, build and verify messages.

Why not the ``siwe`` package (pinned in requirements.txt)? Version 4.4.0 does not import
with the ``abnf`` release our constraints pin (2.9.1 refuses its grammar's redefinition of
the core rule ``ALPHA``), and it drags in ``web3`` for EIP-1271 checks we do not make. This
module follows the EIP-4361 ABNF line by line instead, and borrows the two parts that are
easy to get wrong from ``abnf``'s published grammars: RFC 3986 ``URI``/``authority`` and
RFC 3339 ``date-time``. It passes every shared vector of the reference implementation
(``../shared/data/siwe``; see accounts/tests/test_siwe_vectors.py).

The message is verified exactly as received: the signature is recovered over the text the
wallet signed, never over a re-serialisation of the parsed fields.

Smart-contract wallets (EIP-1271) are not supported: that needs an RPC call to the chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
MAX_MESSAGE_LENGTH = 8192
MAX_RESOURCES = 64

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# statement = 1*( reserved / unreserved / " " )   (RFC 3986 reserved and unreserved)
_STATEMENT = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]+$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_CHAIN_ID = re.compile(r"^[0-9]+$")
# request-id = *pchar
_REQUEST_ID = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


class SiweError(Exception):
    """A message that is malformed or fails a check. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> SiweError:
    return SiweError("invalid_message", message)


@lru_cache(maxsize=1)
def _rfc3986() -> Any:
    from abnf.grammars import rfc3986

    return rfc3986


def _is_uri(value: str) -> bool:
    from abnf import ParseError

    if not value or any(ch.isspace() for ch in value):
        return False
    try:
        _rfc3986().Rule("URI").parse_all(value)
    except ParseError:
        return False
    return True


def _is_authority(value: str) -> bool:
    from abnf import ParseError

    # RFC 3986 lets an authority be empty (reg-name = *( ... )); a sign-in domain may not be.
    if not value or any(ch.isspace() for ch in value):
        return False
    try:
        _rfc3986().Rule("authority").parse_all(value)
    except ParseError:
        return False
    return True


def parse_datetime(value: str, name: str) -> datetime:
    """An RFC 3339 ``date-time`` as an aware datetime; refuses impossible dates (Feb 31)."""
    match = _DATE_TIME.match(value)
    if not match:
        raise _invalid(f"{name} is not an RFC 3339 date-time: {value!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if offset in ("Z", "z"):
        tz: timezone = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise _invalid(f"{name} has an invalid UTC offset: {value!r}")
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise _invalid(f"{name} is not a valid date and time: {value!r}") from exc


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message; times keep the exact text that was signed."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    scheme: str | None = None
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)

    # ------------------------------------------------------------------ derived values

    @property
    def issued_at_dt(self) -> datetime:
        return parse_datetime(self.issued_at, "Issued At")

    @property
    def expiration_time_dt(self) -> datetime | None:
        if self.expiration_time is None:
            return None
        return parse_datetime(self.expiration_time, "Expiration Time")

    @property
    def not_before_dt(self) -> datetime | None:
        if self.not_before is None:
            return None
        return parse_datetime(self.not_before, "Not Before")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ------------------------------------------------------------------ text form

    def prepare_message(self) -> str:
        """The EIP-4361 text a wallet signs (EIP-191 ``personal_sign``)."""
        header = f"{self.domain}{HEADER_SUFFIX}"
        if self.scheme:
            header = f"{self.scheme}://{header}"
        lines = [header, self.address, ""]
        if self.statement:
            lines += [self.statement, ""]
        else:
            lines.append("")
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)

    @classmethod
    def build(cls, **values: Any) -> SiweMessage:
        """A message from field values, validated exactly like a parsed one.

        The values are serialised and parsed back; anything that does not survive the round
        trip unchanged (a statement with a line break, a domain smuggling a second header)
        is refused rather than silently producing a different message.
        """
        missing = [
            name
            for name in ("domain", "address", "uri", "version", "chain_id", "nonce", "issued_at")
            if values.get(name) in (None, "")
        ]
        if missing:
            raise _invalid(f"missing required field(s): {', '.join(missing)}")
        chain_id = values["chain_id"]
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 0:
            raise _invalid(f"Chain ID must be a non-negative integer, got {chain_id!r}")
        resources = values.get("resources") or ()
        if isinstance(resources, str):
            raise _invalid("resources must be a list of URIs")
        try:
            candidate = cls(
                **{**values, "version": str(values["version"]), "resources": tuple(resources)}
            )
        except TypeError as exc:
            raise _invalid(f"unknown field: {exc}") from exc
        parsed = parse_message(candidate.prepare_message())
        if parsed != candidate:
            raise _invalid("a field contains characters that change the message's structure")
        return parsed


def _take(lines: list[str], index: int, prefix: str, name: str) -> str:
    if index >= len(lines) or not lines[index].startswith(prefix):
        raise _invalid(f"expected the {name} line ({prefix.strip()!r}) at line {index + 1}")
    return lines[index][len(prefix) :]


def parse_message(text: str) -> SiweMessage:
    """Parse the EIP-4361 text form, refusing anything the ABNF does not allow."""
    if not isinstance(text, str) or not text:
        raise _invalid("the message is empty")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise _invalid(f"the message is longer than {MAX_MESSAGE_LENGTH} characters")
    if "\r" in text:
        raise _invalid("lines must end with LF only")
    lines = text.split("\n")

    # [ scheme "://" ] domain %s" wants you to sign in with your Ethereum account:" LF
    header = lines[0]
    if not header.endswith(HEADER_SUFFIX):
        raise _invalid("the first line must end with" + HEADER_SUFFIX)
    origin = header[: -len(HEADER_SUFFIX)]
    scheme: str | None = None
    if "://" in origin:
        scheme, origin = origin.split("://", 1)
        if not _SCHEME.match(scheme):
            raise _invalid(f"invalid scheme {scheme!r}")
    if not _is_authority(origin):
        raise _invalid(f"the domain {origin!r} is not an RFC 3986 authority")

    # address LF LF
    if len(lines) < 3:
        raise _invalid("the message ends before the address")
    address = lines[1]
    if not _ADDRESS.match(address):
        raise _invalid("the address must be 0x followed by 40 hex digits")
    if not is_checksum_address(address):
        raise _invalid("the address must be in EIP-55 checksum form")
    if lines[2] != "":
        raise _invalid("a blank line must follow the address")

    # [ statement LF ] LF
    index = 3
    statement: str | None = None
    if index < len(lines) and lines[index] != "":
        statement = lines[index]
        if not _STATEMENT.match(statement):
            raise _invalid("the statement contains characters EIP-4361 does not allow")
        index += 1
    if index >= len(lines) or lines[index] != "":
        raise _invalid("a blank line must precede the URI (a statement is one line)")
    index += 1

    uri = _take(lines, index, "URI: ", "URI")
    if not _is_uri(uri):
        raise _invalid(f"the URI {uri!r} is not an RFC 3986 URI")
    version = _take(lines, index + 1, "Version: ", "Version")
    if version != "1":
        raise _invalid(f"unsupported version {version!r}; only 1 is defined")
    chain_text = _take(lines, index + 2, "Chain ID: ", "Chain ID")
    if not _CHAIN_ID.match(chain_text):
        raise _invalid(f"the chain id {chain_text!r} is not a number")
    nonce = _take(lines, index + 3, "Nonce: ", "Nonce")
    if not _NONCE.match(nonce):
        raise _invalid("the nonce must be at least 8 letters or digits")
    issued_at = _take(lines, index + 4, "Issued At: ", "Issued At")
    parse_datetime(issued_at, "Issued At")
    index += 5

    optional: dict[str, str] = {}
    for key, prefix in (
        ("expiration_time", "Expiration Time: "),
        ("not_before", "Not Before: "),
        ("request_id", "Request ID: "),
    ):
        if index < len(lines) and lines[index].startswith(prefix):
            optional[key] = lines[index][len(prefix) :]
            index += 1
    if "expiration_time" in optional:
        parse_datetime(optional["expiration_time"], "Expiration Time")
    if "not_before" in optional:
        parse_datetime(optional["not_before"], "Not Before")
    if "request_id" in optional and not _REQUEST_ID.match(optional["request_id"]):
        raise _invalid("the request id contains characters EIP-4361 does not allow")

    resources: list[str] = []
    if index < len(lines) and lines[index] == "Resources:":
        index += 1
        while index < len(lines) and lines[index].startswith("- "):
            resource = lines[index][2:]
            if not _is_uri(resource):
                raise _invalid(f"the resource {resource!r} is not an RFC 3986 URI")
            resources.append(resource)
            index += 1
            if len(resources) > MAX_RESOURCES:
                raise _invalid(f"more than {MAX_RESOURCES} resources")
    if index != len(lines):
        raise _invalid(f"unexpected content at line {index + 1}: fields out of order or unknown")

    return SiweMessage(
        scheme=scheme,
        domain=origin,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_text),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=optional.get("expiration_time"),
        not_before=optional.get("not_before"),
        request_id=optional.get("request_id"),
        resources=tuple(resources),
    )


def recover_address(text: str, signature: str) -> str:
    """The address whose key signed ``text`` with EIP-191 ``personal_sign``."""
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise SiweError("bad_signature", "the signature must be 0x followed by 65 bytes in hex")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception as exc:  # eth-keys raises several types for an unrecoverable signature
        raise SiweError("bad_signature", "the signature cannot be recovered") from exc


def verify(
    message: SiweMessage,
    *,
    text: str,
    signature: str,
    domain: str | None = None,
    scheme: str | None = None,
    uri_origin: str | None = None,
    chain_ids: list[int] | tuple[int, ...] | None = None,
    nonce: str | None = None,
    now: datetime | None = None,
    issued_at_skew: timedelta | None = None,
) -> str:
    """Check ``message`` against what the server expects and return the signer's address.

    ``text`` is the exact signed text (``message`` is its parse). Every expectation that is
    None is not checked, which is how the shared vectors exercise one rule at a time.
    ``issued_at_skew`` (not in the reference verifier) refuses a message claiming to be
    issued further in the future than that: a wallet with a wrong clock, or a forgery.
    """
    if domain is not None and message.domain != domain:
        raise SiweError("wrong_domain", f"the message is for {message.domain}, not {domain}")
    if scheme is not None and message.scheme is not None and message.scheme != scheme:
        raise SiweError("wrong_domain", f"the message is for {message.scheme}://, not {scheme}")
    if uri_origin is not None and not (
        message.uri == uri_origin or message.uri.startswith(uri_origin.rstrip("/") + "/")
    ):
        raise SiweError("wrong_uri", f"the URI must be on {uri_origin}")
    if chain_ids is not None and message.chain_id not in chain_ids:
        allowed = ", ".join(str(c) for c in chain_ids)
        raise SiweError(
            "wrong_chain", f"chain {message.chain_id} is not accepted (accepted: {allowed})"
        )
    if nonce is not None and message.nonce != nonce:
        raise SiweError("nonce_mismatch", "the message does not carry the expected nonce")
    moment = now or datetime.now(UTC)
    expiration = message.expiration_time_dt
    if expiration is not None and moment >= expiration:
        raise SiweError("expired", "the message has expired")
    not_before = message.not_before_dt
    if not_before is not None and moment < not_before:
        raise SiweError("not_yet_valid", "the message is not valid yet (Not Before)")
    if issued_at_skew is not None and message.issued_at_dt > moment + issued_at_skew:
        raise SiweError("not_yet_valid", "the message was issued in the future")
    signer = recover_address(text, signature)
    if signer != message.address:
        raise SiweError("bad_signature", "the signature was not made by the message's address")
    return signer
