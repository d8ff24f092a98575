"""Traders: added by staff, by a customer following an address, imported in bulk, simulated
(demo); their account state (positions, leverage, account value) and public score."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log_record
from config.errors import ValidationFailed
from copytrade.live import leaderboard_scores_publish_on_commit
from copytrade.models import (
    SizeMode,
    StrategyMode,
    Trader,
    TraderPosition,
    TraderSource,
)
from copytrade.services.common import parse_decimal

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
EXCHANGES = ("hyperliquid", "paper")


def _clean_address(value: Any, field_name: str = "address") -> str:
    text = str(value or "").strip()
    if not ADDRESS.match(text):
        raise ValidationFailed(
            "Enter an account address (0x followed by 40 hexadecimal digits).",
            field=field_name,
            code="invalid_address",
        )
    return text.lower()


def _clean_tags(values: Iterable[Any]) -> list[str]:
    tags = []
    for value in values:
        tag = str(value).strip().lower()
        if not tag:
            continue
        if not TAG.match(tag):
            raise ValidationFailed(
                f"Tag {tag!r}: letters, digits, '-' and '_', at most 32.", field="tags"
            )
        if tag not in tags:
            tags.append(tag)
    return tags[:20]


def _clean_alias(value: Any, address: str) -> str:
    alias = str(value or "").strip() or f"{address[:6]}…{address[-4:]}"
    if len(alias) > 64:
        raise ValidationFailed("An alias has at most 64 characters.", field="alias")
    return alias


def trader_create(
    *,
    address: str,
    alias: str = "",
    exchange: str = "hyperliquid",
    tags: Sequence[str] = (),
    source: str = TraderSource.STAFF,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> tuple[Trader, bool]:
    """Create the trader watching ``address`` on ``exchange``, or return the existing one
    (unique per venue). Returns (trader, created)."""
    if exchange not in EXCHANGES:
        raise ValidationFailed(f"Venue is one of {', '.join(EXCHANGES)}.", field="exchange")
    if source not in TraderSource.values:
        raise ValidationFailed("Unknown source.", field="source")
    uid = _clean_address(address)
    cleaned_tags = _clean_tags(tags)
    with transaction.atomic():
        trader, created = Trader.objects.get_or_create(
            exchange=exchange,
            src_uid=uid,
            defaults={
                "alias": _clean_alias(alias, uid),
                "addr": uid,
                "tags": cleaned_tags,
                "source": source,
            },
        )
        if created:
            audit_log_record(
                action="trader_create",
                actor=actor,
                resource_type="trader",
                resource_id=trader.pk,
                request=request,
                new_values={"address": uid, "exchange": exchange, "source": source},
            )
    return trader, created


def trader_update(
    *,
    trader: Trader,
    alias: str | None = None,
    tags: Sequence[str] | None = None,
    is_active: bool | None = None,
    actor: User | None = None,
) -> Trader:
    with transaction.atomic():
        locked = Trader.objects.select_for_update().get(pk=trader.pk)
        if alias is not None:
            locked.alias = _clean_alias(alias, locked.src_uid)
        if tags is not None:
            locked.tags = _clean_tags(tags)
        if is_active is not None:
            locked.is_active = bool(is_active)
        locked.save()
        audit_log_record(
            action="trader_update",
            actor=actor,
            resource_type="trader",
            resource_id=locked.pk,
            new_values={"alias": locked.alias, "tags": locked.tags, "is_active": locked.is_active},
        )
    return locked


def trader_follow(
    *,
    user: User,
    copy_pct: Decimal | str,
    address: str | None = None,
    trader_id: uuid.UUID | str | None = None,
    exchange: str = "hyperliquid",
    agent_wallet_id: uuid.UUID | str | None = None,
    auto_copy: bool = False,
    name: str = "",
    idempotency_key: str | None = None,
    actor: User | None = None,
    request: HttpRequest | None = None,
    **settings: Any,
) -> Any:
    """Follow one trader with a copy percentage: a single-trader proportional strategy (seed
    001's follow relationship). By ``trader_id`` (a known, active trader) or by ``address``
    (the trader is created, source ``follow``, when Tandem does not watch it yet).
    ``auto_copy`` starts copying at once; a refused start writes nothing."""
    from copytrade.services.strategies import strategy_create

    pct = parse_decimal(
        copy_pct, "copy_pct", minimum=Decimal(0), exclusive_minimum=True, maximum=Decimal(1000)
    )
    with transaction.atomic():
        if trader_id is not None:
            try:
                trader = Trader.objects.get(pk=uuid.UUID(str(trader_id)))
            except (Trader.DoesNotExist, ValueError) as exc:
                raise ValidationFailed(
                    "Unknown trader.", field="trader", code="unknown_trader"
                ) from exc
        elif address:
            uid = _clean_address(address)
            trader = (
                Trader.objects.filter(exchange=exchange, src_uid=uid).first()
                or (
                    trader_create(
                        address=uid, exchange=exchange, source=TraderSource.FOLLOW, actor=actor
                    )[0]
                )
            )
        else:
            raise ValidationFailed(
                "Give the trader or an address to follow.", field="trader", code="required"
            )
        if not trader.is_active:
            raise ValidationFailed(
                "This trader is not active and cannot be followed.",
                field="trader",
                code="trader_inactive",
            )
        result = strategy_create(
            user=user,
            name=name or f"Follow {trader.alias}",
            mode=StrategyMode.SINGLE_TRADER,
            size_mode=settings.pop("size_mode", SizeMode.PROPORTIONAL),
            copy_pct=pct,
            allocations=[{"trader": trader.pk, "weight": Decimal(1)}],
            agent_wallet_id=agent_wallet_id,
            idempotency_key=idempotency_key,
            actor=actor or user,
            request=request,
            activate=auto_copy,
            **settings,
        )
    return result


# --------------------------------------------------------------------------- bulk import


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def traders_import(
    *, rows: Iterable[Mapping[str, Any]], actor: User | None = None, dry_run: bool = False
) -> ImportResult:
    """Create or update traders from rows ``{address, alias, exchange, tags}`` (tags a list
    or a ``;``/``,`` separated string). Every row is checked first; any bad row and nothing
    is written (the errors say which rows)."""
    result = ImportResult()
    cleaned = []
    for number, row in enumerate(rows, start=1):
        try:
            exchange = str(row.get("exchange") or "hyperliquid").strip()
            if exchange not in EXCHANGES:
                raise ValidationFailed(f"unknown venue {exchange!r}", field="exchange")
            uid = _clean_address(row.get("address") or row.get("src_uid"))
            raw_tags = row.get("tags") or []
            if isinstance(raw_tags, str):
                raw_tags = re.split(r"[;,|]", raw_tags)
            cleaned.append(
                (exchange, uid, _clean_alias(row.get("alias"), uid), _clean_tags(raw_tags))
            )
        except ValidationFailed as exc:
            result.errors.append(f"row {number}: {exc.message}")
    if result.errors or dry_run:
        return result
    with transaction.atomic():
        existing = {
            (t.exchange, t.src_uid): t
            for t in Trader.objects.select_for_update().filter(
                src_uid__in=[uid for _, uid, _, _ in cleaned]
            )
        }
        for exchange, uid, alias, tags in cleaned:
            trader = existing.get((exchange, uid))
            if trader is None:
                existing[(exchange, uid)] = Trader.objects.create(
                    exchange=exchange, src_uid=uid, addr=uid, alias=alias, tags=tags,
                    source=TraderSource.IMPORT,
                )  # fmt: skip
                result.created += 1
            else:
                trader.alias, trader.tags = alias, sorted({*trader.tags, *tags})
                trader.save(update_fields=["alias", "tags", "updated_at"])
                result.updated += 1
        audit_log_record(
            action="traders_import",
            actor=actor,
            resource_type="trader",
            new_values={"created": result.created, "updated": result.updated},
        )
    return result


def traders_import_file(*, content: str, name: str, actor: User | None = None) -> ImportResult:
    """A CSV (header: address,alias,exchange,tags) or JSON (a list of such objects) file."""
    if name.lower().endswith(".json"):
        try:
            rows = json.loads(content)
        except ValueError as exc:
            raise ValidationFailed(f"Not JSON: {exc}", field="file") from exc
        if not isinstance(rows, list):
            raise ValidationFailed("A JSON import is a list of traders.", field="file")
    else:
        rows = list(csv.DictReader(io.StringIO(content)))
    return traders_import(rows=rows, actor=actor)


# --------------------------------------------------------------------------- account state


def trader_state_sync(
    *,
    trader: Trader,
    state: Mapping[str, Any] | None = None,
    portfolio: Sequence[Any] | None = None,
    at: datetime | None = None,
) -> Trader:
    """Take a leader's account state from the venue's shapes: ``clearinghouseState`` (positions,
    leverage per coin, account value) and/or ``portfolio`` (the newest account value). Fills
    stay the source of truth for positions that fills have moved since (newer ``time``)."""
    from trading.exchanges import hlformat

    now = at or timezone.now()
    now_ms = int(now.timestamp() * 1000)
    with transaction.atomic():
        locked = Trader.objects.select_for_update().get(pk=trader.pk)
        value: Decimal | None = None
        if state is not None:
            account = hlformat.parse_clearinghouse_state(dict(state))
            value = account.account_value
            held = {p.symbol: p for p in account.positions}
            existing = {p.coin: p for p in TraderPosition.objects.filter(trader=locked)}
            for coin in set(held) | set(existing):
                venue = held.get(coin)
                position = existing.get(coin) or TraderPosition(trader=locked, coin=coin)
                if position.pk and position.last_time_ms > now_ms:
                    continue  # a fill newer than this snapshot already moved it
                quantity = venue.quantity if venue else Decimal(0)
                if position.quantity == 0 and quantity != 0:
                    position.opened_at_ms = None  # open before Tandem saw it open
                position.quantity = quantity
                position.entry_price = venue.entry_price if venue else None
                position.leverage = (
                    venue.leverage if venue and venue.leverage else position.leverage
                )
                position.last_time_ms = max(position.last_time_ms, now_ms)
                position.save()
        if portfolio is not None:
            newest = _portfolio_value(portfolio)
            if newest is not None:
                value = newest
        if value is not None:
            locked.account_value = max(value, Decimal(0))
            locked.account_value_at = now
            locked.save(update_fields=["account_value", "account_value_at", "updated_at"])
    return locked


def _portfolio_value(portfolio: Sequence[Any]) -> Decimal | None:
    newest: tuple[int, Decimal] | None = None
    for _window, body in portfolio:
        for ms, value in (body or {}).get("accountValueHistory", []):
            if newest is None or int(ms) > newest[0]:
                newest = (int(ms), Decimal(str(value)))
    return newest[1] if newest else None


def trader_scores_update(*, scores: Mapping[uuid.UUID, Decimal]) -> int:
    """Set ``Trader.public_score`` from analytics' copy scores (0-100, two decimals).

    Called by ``analytics.services.trader_scores_publish``; traders not in ``scores`` keep
    their score. Returns how many traders changed.
    """
    changed = []
    with transaction.atomic():
        for trader in Trader.objects.select_for_update().filter(pk__in=list(scores)):
            score = min(max(Decimal(scores[trader.pk]), Decimal(0)), Decimal(100))
            score = score.quantize(Decimal("0.01"))
            if trader.public_score != score:
                trader.public_score = score
                trader.updated_at = timezone.now()
                changed.append(trader)
        Trader.objects.bulk_update(changed, ["public_score", "updated_at"])
        leaderboard_scores_publish_on_commit({str(t.pk): str(t.public_score) for t in changed})
    return len(changed)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
