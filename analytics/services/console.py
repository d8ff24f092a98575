"""The staff SQL console: read-only ClickHouse queries from the admin, each one audited.

Three fences, any one of which stops a write:

1. a statement allow-list here (one statement; SELECT, WITH, SHOW, DESCRIBE/DESC, EXPLAIN);
2. ``readonly=1`` sent with the query, enforced by the server (it refuses any write, DDL,
   ``SET`` and settings changes, including a ``SETTINGS readonly=0`` clause);
3. result and time limits (``max_result_rows`` with ``result_overflow_mode='throw'``,
   ``max_execution_time``).

Every run -- allowed, refused or failed -- writes an ``audit_logs`` row with the SQL.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from accounts.models import User
from accounts.services import audit_log_record
from analytics.clickhouse.client import ServerException, get_client
from analytics.conf import setting
from config.errors import PermissionDenied, ValidationFailed

ALLOWED_FIRST_WORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
MAX_SQL_LENGTH = 20_000
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.S)
_FIRST_WORD = re.compile(r"^\s*\(*\s*([A-Za-z]+)")
_FORBIDDEN = re.compile(r"\bINTO\s+OUTFILE\b", re.I)


@dataclass(frozen=True)
class ConsoleResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    elapsed_ms: float
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


def sql_statement_check(sql: str) -> str:
    """The statement, stripped, if the allow-list admits it; else ValidationFailed."""
    text = sql.strip()
    if not text:
        raise ValidationFailed("Enter a statement.", field="sql")
    if len(text) > MAX_SQL_LENGTH:
        raise ValidationFailed(f"At most {MAX_SQL_LENGTH} characters.", field="sql")
    skeleton = _STRING.sub("''", _COMMENT.sub(" ", text)).strip()
    if skeleton.endswith(";"):
        skeleton = skeleton[:-1].rstrip()
        text = text.rstrip().rstrip(";").rstrip()
    if ";" in skeleton:
        raise ValidationFailed("One statement at a time.", field="sql")
    match = _FIRST_WORD.match(skeleton)
    word = match.group(1).upper() if match else ""
    if word not in ALLOWED_FIRST_WORDS:
        allowed = ", ".join(sorted(ALLOWED_FIRST_WORDS))
        raise ValidationFailed(f"Only {allowed} statements may run here.", field="sql")
    if _FORBIDDEN.search(skeleton):
        raise ValidationFailed("INTO OUTFILE is not allowed.", field="sql")
    return text


def sql_console_run(*, user: User, sql: str, request: HttpRequest | None = None) -> ConsoleResult:
    """Run one read-only statement for a staff member; audited whatever happens."""
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("The SQL console is for staff.")
    limit = int(setting("CONSOLE_MAX_ROWS"))
    try:
        statement = sql_statement_check(sql)
    except ValidationFailed as exc:
        _audit(user, sql, request, status="failure", error=exc.message)
        raise
    started = time.perf_counter()
    try:
        client = get_client()
        limits = {
            "readonly": 1,
            "max_result_rows": limit,
            "result_overflow_mode": "throw",
            "max_execution_time": int(setting("CONSOLE_MAX_EXECUTION_SECONDS")),
        }
        with client.connection() as conn:
            rows, types = conn.execute(
                statement, settings={**client.settings, **limits}, with_column_types=True
            )
        columns = [name for name, _type in types]
    except ServerException as exc:
        message = str(exc).split("Stack trace", 1)[0].strip()[:1000]
        _audit(user, statement, request, status="failure", error=message, code=exc.code)
        raise ValidationFailed(f"ClickHouse refused the query: {message}", field="sql") from exc
    elapsed = (time.perf_counter() - started) * 1000
    _audit(user, statement, request, status="success", rows=len(rows), elapsed_ms=elapsed)
    return ConsoleResult(columns=columns, rows=rows, elapsed_ms=round(elapsed, 1))


def _audit(
    user: User,
    sql: str,
    request: HttpRequest | None,
    *,
    status: str,
    error: str = "",
    code: int | None = None,
    rows: int | None = None,
    elapsed_ms: float | None = None,
) -> None:
    values: dict[str, Any] = {"sql": sql[:MAX_SQL_LENGTH]}
    if rows is not None:
        values["rows"] = rows
    if elapsed_ms is not None:
        values["elapsed_ms"] = round(elapsed_ms, 1)
    audit_log_record(
        action="analytics_sql_console",
        actor=user,
        resource_type="clickhouse",
        new_values=values,
        status=status,
        error_code=str(code or ""),
        error_message=error,
        request=request,
        immediate=True,
    )
