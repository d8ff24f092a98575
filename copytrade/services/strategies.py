"""Copy strategies: creation, settings, allocations, versions, and the status machine.

Status machine (``STRATEGY_TRANSITIONS``)::

    paused  -> active (activate / resume: every activation check passes), terminated
    active  -> paused (customer, staff, a risk limit), error (the engine), terminated
    error   -> active (resume, checks again), paused, terminated
    terminated: final

Every change of settings or allocations writes a new immutable :class:`StrategyVersion` and
points the strategy at it; the engine records the version each decision was sized with. A
rollback to version N restores N's settings and weights and points the strategy back at N, so
the next copied order records N.

Allocations: weights in (0, 1], summing to at most 1. The services lock the strategy row before
reading or changing weights; migration 0002's trigger re-checks the sum under the same lock, so
even a path around the services cannot exceed 1.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError, QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import AgentWallet, User
from accounts.services import audit_log_record
from config.errors import Conflict, NotFound, ValidationFailed
from copytrade.live import strategy_publish_on_commit
from copytrade.models import (
    AllocationStatus,
    CopyAllocation,
    CopySlot,
    CopyStrategy,
    SizeMode,
    StrategyMode,
    StrategyStatus,
    StrategyVersion,
    Trader,
    TraderPosition,
)
from copytrade.services.common import (
    fingerprint,
    jsonable,
    parse_bool,
    parse_decimal,
    parse_int,
)

ONE = Decimal(1)
ZERO = Decimal(0)

STRATEGY_TRANSITIONS: dict[str, frozenset[str]] = {
    StrategyStatus.PAUSED: frozenset({StrategyStatus.ACTIVE, StrategyStatus.TERMINATED}),
    StrategyStatus.ACTIVE: frozenset(
        {StrategyStatus.PAUSED, StrategyStatus.ERROR, StrategyStatus.TERMINATED}
    ),
    StrategyStatus.ERROR: frozenset(
        {StrategyStatus.ACTIVE, StrategyStatus.PAUSED, StrategyStatus.TERMINATED}
    ),
    StrategyStatus.TERMINATED: frozenset(),
}

# Settings a customer may set, with their parser. Order is the order errors are reported in.
SETTING_FIELDS = (
    "name",
    "description",
    "mode",
    "size_mode",
    "copy_pct",
    "fixed_notional_usd",
    "multiplier",
    "inverse",
    "max_leverage",
    "max_position_usd",
    "slippage_bps",
    "min_order_usd",
    "follow_new_entries_only",
    "auto_rebalance",
    "rebalance_threshold_bps",
)
# What a version snapshots (and a rollback restores); name/description are labels, not settings
# the engine uses, but customers expect a rollback to bring them back too.
VERSIONED_FIELDS = SETTING_FIELDS


def _clean_setting(name: str, value: Any) -> Any:
    if name == "name":
        text = str(value or "").strip()
        if not 1 <= len(text) <= 100:
            raise ValidationFailed("A name has 1 to 100 characters.", field="name")
        return text
    if name == "description":
        text = str(value or "").strip()
        if len(text) > 2000:
            raise ValidationFailed("At most 2000 characters.", field="description")
        return text
    if name == "mode":
        if value not in StrategyMode.values:
            raise ValidationFailed(
                f"Mode is one of {', '.join(StrategyMode.values)}.", field="mode"
            )
        return value
    if name == "size_mode":
        if value not in SizeMode.values:
            raise ValidationFailed(
                f"Size mode is one of {', '.join(SizeMode.values)}.", field="size_mode"
            )
        return value
    if name == "copy_pct":
        return parse_decimal(
            value, name, minimum=ZERO, exclusive_minimum=True, maximum=Decimal(1000)
        )
    if name in ("fixed_notional_usd", "multiplier", "max_position_usd"):
        return parse_decimal(
            value,
            name,
            minimum=ZERO,
            exclusive_minimum=True,
            maximum=Decimal("1e10"),
            allow_none=True,
        )
    if name == "max_leverage":
        return parse_decimal(
            value, name, minimum=ZERO, exclusive_minimum=True, maximum=Decimal(100)
        )
    if name == "min_order_usd":
        return parse_decimal(
            value, name, minimum=ZERO, exclusive_minimum=True, maximum=Decimal("1e9")
        )
    if name == "slippage_bps":
        return parse_int(value, name, minimum=0, maximum=1000)
    if name == "rebalance_threshold_bps":
        return parse_int(value, name, minimum=0, maximum=10_000)
    if name in ("inverse", "follow_new_entries_only", "auto_rebalance"):
        return parse_bool(value, name)
    raise ValidationFailed(f"Unknown setting {name}.", field=name)


def _check_consistency(values: Mapping[str, Any]) -> None:
    if values.get("size_mode") == SizeMode.FIXED and not values.get("fixed_notional_usd"):
        raise ValidationFailed(
            "Fixed sizing needs a notional per trade.", field="fixed_notional_usd"
        )
    if values.get("size_mode") == SizeMode.MULTIPLIER and not values.get("multiplier"):
        raise ValidationFailed("Multiplier sizing needs a multiplier.", field="multiplier")


@dataclass(frozen=True)
class AllocationInput:
    trader_id: uuid.UUID
    weight: Decimal


def _clean_allocations(raw: Iterable[Any], *, mode: str) -> list[AllocationInput]:
    """Each {trader, weight}: a known active trader, a weight in (0, 1], no trader twice, the
    sum at most 1, and one trader at most for a single-trader strategy."""
    cleaned: list[AllocationInput] = []
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(raw):
        field = f"allocations[{index}]"
        trader_value = item.get("trader") if isinstance(item, Mapping) else None
        if trader_value is None and isinstance(item, Mapping):
            trader_value = item.get("trader_id")
        try:
            trader_id = uuid.UUID(str(trader_value))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(
                "Choose a trader.", field=f"{field}.trader", code="unknown_trader"
            ) from exc
        weight = parse_decimal(
            item.get("weight") if isinstance(item, Mapping) else None,
            f"{field}.weight",
            minimum=ZERO,
            exclusive_minimum=True,
            maximum=ONE,
        )
        assert weight is not None
        if weight != weight.quantize(Decimal("0.0001")):
            raise ValidationFailed(
                "A weight has at most 4 decimals.", field=f"{field}.weight", code="invalid_number"
            )
        if trader_id in seen:
            raise ValidationFailed(
                "This trader is listed twice.", field=f"{field}.trader", code="duplicate_trader"
            )
        seen.add(trader_id)
        cleaned.append(AllocationInput(trader_id, weight))
    total = sum((a.weight for a in cleaned), ZERO)
    if total > ONE:
        raise ValidationFailed(
            f"Weights add up to {total.normalize()}; together they may be at most 1.",
            field="allocations",
            code="weights_over_one",
        )
    if mode == StrategyMode.SINGLE_TRADER and len(cleaned) > 1:
        raise ValidationFailed(
            "A single-trader strategy follows one trader.",
            field="allocations",
            code="single_trader",
        )
    if cleaned:
        known = dict(Trader.objects.filter(pk__in=list(seen)).values_list("pk", "is_active"))
        for index, allocation in enumerate(cleaned):
            if allocation.trader_id not in known:
                raise ValidationFailed(
                    "Unknown trader.", field=f"allocations[{index}].trader", code="unknown_trader"
                )
            if not known[allocation.trader_id]:
                raise ValidationFailed(
                    "This trader is not active and cannot be followed.",
                    field=f"allocations[{index}].trader",
                    code="trader_inactive",
                )
    return cleaned


def _wallet_for(user: User, agent_wallet_id: Any) -> AgentWallet | None:
    if agent_wallet_id in (None, ""):
        return None
    from accounts.selectors import agent_wallet_get

    try:
        return agent_wallet_get(user=user, agent_wallet_id=agent_wallet_id)
    except NotFound as exc:
        raise ValidationFailed(
            "Agent wallet not found.", field="agent_wallet", code="unknown_agent_wallet"
        ) from exc


# --------------------------------------------------------------------------- versions


def _config(strategy: CopyStrategy) -> dict[str, Any]:
    allocations = [
        {"trader_id": str(a.trader_id), "weight": str(a.weight), "status": a.status}
        for a in strategy.allocations.order_by("trader_id")
    ]
    settings = {name: getattr(strategy, name) for name in VERSIONED_FIELDS}
    settings["agent_wallet_id"] = str(strategy.agent_wallet_id or "")
    return {"settings": jsonable(settings), "allocations": allocations}


def _version_write(
    strategy: CopyStrategy, *, actor: User | None, reason: str
) -> StrategyVersion | None:
    """A new version when the settings or allocations differ from the current version."""
    config = _config(strategy)
    current = strategy.version
    if current is not None and current.config == config:
        return None
    number = (
        StrategyVersion.objects.filter(strategy=strategy).aggregate(n=Max("number"))["n"] or 0
    ) + 1
    version = StrategyVersion.objects.create(
        strategy=strategy, number=number, config=config, reason=reason, created_by=actor
    )
    strategy.version = version
    CopyStrategy.objects.filter(pk=strategy.pk).update(version=version, updated_at=timezone.now())
    return version


# --------------------------------------------------------------------------- creation


@dataclass(frozen=True)
class StrategyCreateResult:
    strategy: CopyStrategy
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def _plan_check(
    user: User, *, resource: str, adding: int, current: int | None = None, strategy: Any = None
) -> None:
    """Billing's plan limits (``billing.services.plan_limit_check``: how many strategies, how
    many traders in one portfolio). A 400 naming the resource when the plan says no."""
    try:
        from billing import services as billing_services
    except ImportError:  # pragma: no cover - billing is an installed app
        return
    check = getattr(billing_services, "plan_limit_check", None)
    if check is not None:
        check(user=user, resource=resource, adding=adding, current=current, strategy=strategy)


DEFAULTS: dict[str, Any] = {
    "description": "",
    "mode": StrategyMode.PORTFOLIO,
    "size_mode": SizeMode.PROPORTIONAL,
    "copy_pct": Decimal(100),
    "fixed_notional_usd": None,
    "multiplier": None,
    "inverse": False,
    "max_leverage": Decimal(5),
    "max_position_usd": None,
    "slippage_bps": 10,
    "min_order_usd": Decimal(5),
    "follow_new_entries_only": True,
    "auto_rebalance": True,
    "rebalance_threshold_bps": 50,
}


def _allocations_delete(allocations: QuerySet[CopyAllocation]) -> None:
    """Remove allocations, unless fees were already attributed to them: the ledger keeps its
    references (billing protects them), so the customer lowers or pauses the share instead."""
    try:
        with transaction.atomic():
            allocations.delete()
    except ProtectedError as exc:
        raise ValidationFailed(
            "Fees were charged to this trader's share; lower its weight instead of removing it.",
            field="allocations",
            code="allocation_has_fees",
        ) from exc


def strategy_create(
    *,
    user: User,
    name: str,
    allocations: Sequence[Mapping[str, Any]] = (),
    agent_wallet_id: uuid.UUID | str | None = None,
    idempotency_key: str | None = None,
    actor: User | None = None,
    request: HttpRequest | None = None,
    activate: bool = False,
    **settings: Any,
) -> StrategyCreateResult:
    """Create a (paused) strategy with its allocations and version 1; ``activate`` also starts
    it, in the same transaction (a refused activation writes nothing)."""
    unknown = set(settings) - set(SETTING_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown settings: {', '.join(sorted(unknown))}.", field="settings")
    raw = {**DEFAULTS, **settings, "name": name}
    values = {field: _clean_setting(field, raw[field]) for field in SETTING_FIELDS}
    _check_consistency(values)
    cleaned = _clean_allocations(allocations, mode=values["mode"])
    wallet = _wallet_for(user, agent_wallet_id)
    request_print = fingerprint(
        {
            **values,
            "allocations": [(str(a.trader_id), str(a.weight)) for a in cleaned],
            "agent_wallet": str(wallet.pk if wallet else ""),
            "activate": activate,
        }
    )
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not 1 <= len(idempotency_key) <= 255:
            raise ValidationFailed(
                "An Idempotency-Key has 1 to 255 characters.", field="idempotency_key"
            )
        earlier = CopyStrategy.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return _replay(earlier, request_print)
    try:
        with transaction.atomic():
            # One creation at a time per customer: the plan's strategy count is then exact.
            User.objects.select_for_update().filter(pk=user.pk).first()
            _plan_check(user, resource="strategies", adding=1)
            if cleaned:
                _plan_check(user, resource="traders_per_portfolio", adding=len(cleaned), current=0)
            strategy = CopyStrategy.objects.create(
                user=user,
                agent_wallet=wallet,
                idempotency_key=idempotency_key or None,
                request_fingerprint=request_print if idempotency_key else "",
                **values,
            )
            CopyAllocation.objects.bulk_create(
                CopyAllocation(strategy=strategy, trader_id=a.trader_id, weight=a.weight)
                for a in cleaned
            )
            _version_write(strategy, actor=actor or user, reason="created")
            audit_log_record(
                action="strategy_create",
                actor=actor or user,
                resource_type="strategy",
                resource_id=strategy.pk,
                request=request,
                new_values=jsonable({**values, "allocations": [a.__dict__ for a in cleaned]}),
            )
            if activate:
                strategy = strategy_activate(
                    strategy=strategy, actor=actor or user, request=request
                )
            _publish(strategy)
    except IntegrityError:
        if idempotency_key:
            earlier = CopyStrategy.objects.filter(
                user=user, idempotency_key=idempotency_key
            ).first()
            if earlier is not None:
                return _replay(earlier, request_print)
        raise
    return StrategyCreateResult(strategy=strategy, created=True)


def _replay(earlier: CopyStrategy, request_print: str) -> StrategyCreateResult:
    if earlier.request_fingerprint and earlier.request_fingerprint != request_print:
        raise Conflict(
            "This Idempotency-Key was used with a different strategy.",
            code="idempotency_key_reused",
            field="idempotency_key",
        )
    return StrategyCreateResult(strategy=earlier, created=False)


def _locked(strategy: CopyStrategy) -> CopyStrategy:
    locked = (
        CopyStrategy.objects.select_for_update(of=("self",))
        .select_related("version", "agent_wallet", "user")
        .get(pk=strategy.pk)
    )
    if locked.status == StrategyStatus.TERMINATED:
        raise Conflict(
            "This strategy is terminated and can no longer change.",
            code="strategy_terminated",
            field="status",
        )
    return locked


def strategy_update(
    *,
    strategy: CopyStrategy,
    actor: User | None = None,
    request: HttpRequest | None = None,
    agent_wallet_id: uuid.UUID | str | None = None,
    **changes: Any,
) -> CopyStrategy:
    """Change settings (a new version when anything differs). The agent wallet can change only
    while the strategy is not running."""
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown settings: {', '.join(sorted(unknown))}.", field="settings")
    cleaned = {field: _clean_setting(field, value) for field, value in changes.items()}
    with transaction.atomic():
        locked = _locked(strategy)
        values = {field: getattr(locked, field) for field in SETTING_FIELDS} | cleaned
        _check_consistency(values)
        if values["mode"] == StrategyMode.SINGLE_TRADER and locked.allocations.count() > 1:
            raise ValidationFailed(
                "A single-trader strategy follows one trader.", field="mode", code="single_trader"
            )
        old = {field: getattr(locked, field) for field in cleaned}
        for field, value in cleaned.items():
            setattr(locked, field, value)
        fields = [*cleaned, "updated_at"]
        if agent_wallet_id is not None:
            wallet = _wallet_for(locked.user, agent_wallet_id)
            if wallet is not None and wallet.pk != locked.agent_wallet_id:
                if locked.status == StrategyStatus.ACTIVE:
                    raise ValidationFailed(
                        "Pause the strategy before changing its agent wallet.",
                        field="agent_wallet",
                        code="strategy_active",
                    )
                old["agent_wallet"] = locked.agent_wallet_id
                locked.agent_wallet = wallet
                fields.append("agent_wallet")
        locked.save(update_fields=fields)
        version = _version_write(locked, actor=actor, reason="settings")
        if version is not None:
            audit_log_record(
                action="strategy_update",
                actor=actor,
                resource_type="strategy",
                resource_id=locked.pk,
                request=request,
                old_values=jsonable(old),
                new_values=jsonable({**cleaned, "version": version.number}),
            )
            _publish(locked)
    return locked


# --------------------------------------------------------------------------- allocations


def _allocations_apply(
    locked: CopyStrategy, wanted: Sequence[AllocationInput], *, statuses: Mapping[str, str] = {}
) -> None:
    """Make the strategy's allocations exactly ``wanted`` (the caller holds the row lock).
    Removals and decreases first, so the running sum never passes 1 on the way."""
    current = {a.trader_id: a for a in locked.allocations.all()}
    target = {a.trader_id: a for a in wanted}
    if len(target) > len(current):
        _plan_check(locked.user, resource="traders_per_portfolio", adding=len(target), current=0)
    removed = [pk for pk in current if pk not in target]
    if removed:
        _allocations_delete(CopyAllocation.objects.filter(strategy=locked, trader_id__in=removed))
    ordered = sorted(
        target.values(),
        key=lambda a: a.weight - (current[a.trader_id].weight if a.trader_id in current else 0),
    )
    for allocation in ordered:
        status = statuses.get(str(allocation.trader_id), AllocationStatus.ACTIVE)
        existing = current.get(allocation.trader_id)
        if existing is None:
            CopyAllocation.objects.create(
                strategy=locked, trader_id=allocation.trader_id, weight=allocation.weight,
                status=status,
            )  # fmt: skip
        elif existing.weight != allocation.weight or existing.status != status:
            existing.weight = allocation.weight
            existing.status = status
            existing.save(update_fields=["weight", "status", "updated_at"])


def allocations_replace(
    *,
    strategy: CopyStrategy,
    allocations: Sequence[Mapping[str, Any]],
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> CopyStrategy:
    """Set all of a strategy's allocations at once (the portal's builder)."""
    with transaction.atomic():
        locked = _locked(strategy)
        cleaned = _clean_allocations(allocations, mode=locked.mode)
        if locked.status == StrategyStatus.ACTIVE and not cleaned:
            raise ValidationFailed(
                "A running strategy needs at least one trader; pause it first.",
                field="allocations",
                code="strategy_active",
            )
        _allocations_apply(locked, cleaned)
        _allocations_changed(locked, actor=actor, request=request)
    return locked


def allocation_set(
    *,
    strategy: CopyStrategy,
    trader_id: uuid.UUID | str,
    weight: Decimal | str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> CopyAllocation:
    """Add a trader or change its weight. The strategy row is locked first, so concurrent
    writers queue and each sees the sums the previous one committed."""
    with transaction.atomic():
        locked = _locked(strategy)
        others = [
            {"trader": str(a.trader_id), "weight": a.weight}
            for a in locked.allocations.exclude(trader_id=str(trader_id))
        ]
        # The new weight is validated with the others: over 1 together -> 400.
        cleaned = _clean_allocations(
            [*others, {"trader": trader_id, "weight": weight}], mode=locked.mode
        )
        _allocations_apply(locked, cleaned)
        _allocations_changed(locked, actor=actor, request=request)
        return CopyAllocation.objects.get(strategy=locked, trader_id=cleaned[-1].trader_id)


def allocation_remove(
    *,
    strategy: CopyStrategy,
    trader_id: uuid.UUID | str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> None:
    with transaction.atomic():
        locked = _locked(strategy)
        remaining = list(locked.allocations.exclude(trader_id=str(trader_id)))
        if len(remaining) == locked.allocations.count():
            raise NotFound("This trader is not in the strategy.", field="trader")
        if locked.status == StrategyStatus.ACTIVE and not remaining:
            raise ValidationFailed(
                "A running strategy needs at least one trader; pause it first.",
                field="allocations",
                code="strategy_active",
            )
        _allocations_delete(
            CopyAllocation.objects.filter(strategy=locked, trader_id=str(trader_id))
        )
        _allocations_changed(locked, actor=actor, request=request)


def _allocations_changed(
    locked: CopyStrategy, *, actor: User | None, request: HttpRequest | None
) -> None:
    version = _version_write(locked, actor=actor, reason="allocations")
    if version is None:
        return
    audit_log_record(
        action="strategy_allocations",
        actor=actor,
        resource_type="strategy",
        resource_id=locked.pk,
        request=request,
        new_values={"allocations": version.config["allocations"], "version": version.number},
    )
    # A running strategy's new trader gains a follower (a removed one is counted again when
    # its next score or strategy change is published).
    _publish(locked, followers_changed=locked.status == StrategyStatus.ACTIVE)


def strategy_rollback(
    *,
    strategy: CopyStrategy,
    number: int,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> CopyStrategy:
    """Restore version ``number``'s settings and weights; the strategy points at that version
    again, so the next decisions record it."""
    with transaction.atomic():
        locked = _locked(strategy)
        version = StrategyVersion.objects.filter(strategy=locked, number=number).first()
        if version is None:
            raise NotFound(f"Version {number} does not exist.", field="version")
        settings = version.config["settings"]
        values = {field: _clean_setting(field, settings.get(field, DEFAULTS.get(field)))
                  for field in SETTING_FIELDS}  # fmt: skip
        wanted = _clean_allocations(
            [
                {"trader": a["trader_id"], "weight": a["weight"]}
                for a in version.config["allocations"]
            ],
            mode=values["mode"],
        )
        if locked.status == StrategyStatus.ACTIVE and not wanted:
            raise ValidationFailed(
                "That version follows no trader; pause the strategy before rolling back to it.",
                field="version",
                code="strategy_active",
            )
        old_number = locked.version.number if locked.version else None
        for field, value in values.items():
            setattr(locked, field, value)
        locked.version = version
        locked.save(update_fields=[*SETTING_FIELDS, "version", "updated_at"])
        _allocations_apply(
            locked,
            wanted,
            statuses={
                a["trader_id"]: a.get("status", "active") for a in version.config["allocations"]
            },
        )
        audit_log_record(
            action="strategy_rollback",
            actor=actor,
            resource_type="strategy",
            resource_id=locked.pk,
            request=request,
            old_values={"version": old_number},
            new_values={"version": number},
        )
        _publish(locked)
    return locked


# --------------------------------------------------------------------------- status machine


def _move(locked: CopyStrategy, to: str) -> None:
    if to not in STRATEGY_TRANSITIONS[locked.status]:
        raise Conflict(
            f"A {locked.status} strategy cannot become {to}.",
            code="illegal_strategy_transition",
            field="status",
        )


def activation_block_reason(strategy: CopyStrategy) -> tuple[str, str, str] | None:
    """Why ``strategy`` may not start copying now: (field, code, message), or None.

    In order: a trader to follow; an agent wallet of the owner, active, allowed to trade, used by
    no other running strategy; the owner's account status and KYC level for the equity under
    copy (accounts.policy); the risk limits (a loss limit already reached, a leverage above
    the account's leverage limit). ``strategy_activate`` also applies the plan's limits
    (billing's ``plan_limit_check``).
    """
    from accounts.policy import copy_block_reason

    allocations = list(
        strategy.allocations.filter(status=AllocationStatus.ACTIVE).select_related("trader")
    )
    if not allocations:
        return "allocations", "no_allocations", "Add at least one trader to follow."
    inactive = [a.trader.alias for a in allocations if not a.trader.is_active]
    if inactive:
        return (
            "allocations",
            "trader_inactive",
            f"{', '.join(inactive)} can no longer be followed; remove them first.",
        )
    wallet = strategy.agent_wallet
    if wallet is None or wallet.user_id != strategy.user_id:
        return (
            "agent_wallet",
            "no_active_agent_wallet",
            "Choose an agent wallet: copying places orders through it.",
        )
    if not wallet.can_trade:
        return (
            "agent_wallet",
            "no_active_agent_wallet",
            f"Agent wallet {wallet.addr} is {wallet.status} and may not trade; authorise it first.",
        )
    busy = (
        CopyStrategy.objects.filter(agent_wallet=wallet, status=StrategyStatus.ACTIVE)
        .exclude(pk=strategy.pk)
        .first()
    )
    if busy is not None:
        return (
            "agent_wallet",
            "agent_wallet_in_use",
            f"This agent wallet already copies for '{busy.name}': one running strategy per "
            "wallet keeps positions apart.",
        )
    from copytrade.services.equity import follower_equity

    equity = follower_equity(agent_wallet=wallet) or ZERO
    others = (
        CopyStrategy.objects.filter(user=strategy.user, status=StrategyStatus.ACTIVE)
        .exclude(pk=strategy.pk)
        .exclude(agent_wallet=wallet)
        .values_list("agent_wallet_id", flat=True)
    )
    from copytrade.models import FollowerEquity

    under_copy = equity + (
        FollowerEquity.objects.filter(agent_wallet_id__in=list(others)).aggregate(
            total=Sum("account_value")
        )["total"]
        or ZERO
    )
    reason = copy_block_reason(strategy.user, equity_under_copy_usd=under_copy)
    if reason:
        return "account", "copy_not_allowed", f"Copying is not allowed: {reason}."
    risk = _risk_block_reason(strategy, wallet)
    if risk:
        return "risk_limit", "risk_limit", risk
    return None


def _risk_block_reason(strategy: CopyStrategy, wallet: AgentWallet) -> str | None:
    from trading.models import Symbol
    from trading.services.risk import ProposedOrder, risk_check_order, risk_limits_for

    limits = risk_limits_for(user=strategy.user, strategy=strategy)
    for limit in limits:
        if limit.max_leverage is not None and strategy.max_leverage > limit.max_leverage:
            return (
                f"The strategy's leverage of {strategy.max_leverage.normalize()}x is above your "
                f"risk limit of {limit.max_leverage.normalize()}x."
            )
    if not limits:
        return None
    symbol = Symbol.objects.filter(venue=wallet.exchange).order_by("name").first()
    if symbol is None:
        return None
    breach = risk_check_order(
        proposed=ProposedOrder(
            user=strategy.user,
            agent_wallet=wallet,
            symbol=symbol,
            strategy=strategy,
            side="buy",
            quantity=symbol.lot_size,
            reference_price=None,
            leverage=None,
            reduce_only=False,
        ),
        limits=limits,
    )
    return f"A risk limit is reached: {breach.reason}" if breach else None


def strategy_activate(
    *,
    strategy: CopyStrategy,
    actor: User | None = None,
    request: HttpRequest | None = None,
    started_at: datetime | None = None,
) -> CopyStrategy:
    """paused/error -> active, when every activation check passes (400 with the reason
    otherwise, nothing written). ``started_at`` (default now) is when copying starts; replays
    and backtests set it in the past. With ``follow_new_entries_only`` off, positions the
    follower already holds in coins its leaders hold are adopted as its share of them."""
    with transaction.atomic():
        locked = _locked(strategy)
        _move(locked, StrategyStatus.ACTIVE)
        _plan_check(
            locked.user,
            resource="traders_per_portfolio",
            adding=locked.allocations.count(),
            current=0,
        )
        blocked = activation_block_reason(locked)
        if blocked is not None:
            field, code, message = blocked
            raise ValidationFailed(message, field=field, code=code)
        old = locked.status
        locked.status = StrategyStatus.ACTIVE
        locked.status_reason = ""
        locked.started_at = started_at or timezone.now()
        locked.save(update_fields=["status", "status_reason", "started_at", "updated_at"])
        adopted = {} if locked.follow_new_entries_only else _adopt_positions(locked)
        audit_log_record(
            action="strategy_activate",
            actor=actor,
            resource_type="strategy",
            resource_id=locked.pk,
            request=request,
            old_values={"status": old},
            new_values={"status": locked.status, "adopted": jsonable(adopted)},
        )
        _publish(locked, followers_changed=True)
    return locked


def strategy_resume(
    *, strategy: CopyStrategy, actor: User | None = None, request: HttpRequest | None = None
) -> CopyStrategy:
    return strategy_activate(strategy=strategy, actor=actor, request=request)


def strategy_pause(
    *,
    strategy: CopyStrategy,
    reason: str,
    actor: User | None = None,
    status: str = StrategyStatus.PAUSED,
    request: HttpRequest | None = None,
) -> CopyStrategy:
    """Stop copying for one strategy (a risk limit hit, the user, staff, an error)."""
    if status not in (StrategyStatus.PAUSED, StrategyStatus.ERROR):
        raise ValueError("strategy_pause sets paused or error only")
    with transaction.atomic():
        locked = CopyStrategy.objects.select_for_update().get(pk=strategy.pk)
        if locked.status in (StrategyStatus.TERMINATED, status):
            return locked
        if status not in STRATEGY_TRANSITIONS[locked.status]:
            return locked  # paused -> error: nothing is running to fail
        old = locked.status
        locked.status = status
        locked.status_reason = reason[:255]
        locked.updated_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_log_record(
            action="strategy_pause",
            actor=actor,
            resource_type="strategy",
            resource_id=locked.pk,
            request=request,
            old_values={"status": old},
            new_values={"status": status, "reason": reason},
        )
        _publish(locked, followers_changed=True)
    return locked


def strategies_pause_for_user(*, user: User, reason: str, actor: User | None = None) -> int:
    """Pause every running strategy of ``user`` (suspension, KYC downgrade). Returns the count."""
    count = 0
    with transaction.atomic():
        running = CopyStrategy.objects.select_for_update().filter(
            user=user, status__in=[StrategyStatus.ACTIVE, StrategyStatus.ERROR]
        )
        for strategy in running:
            strategy_pause(strategy=strategy, reason=reason, actor=actor)
            count += 1
    return count


def strategy_terminate(
    *,
    strategy: CopyStrategy,
    reason: str = "",
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> CopyStrategy:
    """End a strategy for good. Its positions stay open at the venue (closing them is the
    customer's decision); its history stays readable."""
    with transaction.atomic():
        locked = _locked(strategy)
        _move(locked, StrategyStatus.TERMINATED)
        old = locked.status
        locked.status = StrategyStatus.TERMINATED
        locked.status_reason = (reason or "terminated")[:255]
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_log_record(
            action="strategy_terminate",
            actor=actor,
            resource_type="strategy",
            resource_id=locked.pk,
            request=request,
            old_values={"status": old},
            new_values={"status": locked.status, "reason": reason},
        )
        _publish(locked, followers_changed=True)
    return locked


# --------------------------------------------------------------------------- adoption


def _adopt_positions(locked: CopyStrategy) -> dict[str, str]:
    """Positions the follower holds that no slot accounts for become its share of the leaders'
    positions in the same coin and direction, split by each leader's weight x position."""
    from trading.models import Position

    wallet = locked.agent_wallet
    assert wallet is not None
    positions = (
        Position.objects.filter(agent_wallet=wallet).exclude(quantity=0).select_related("symbol")
    )
    allocations = {a.trader_id: a.weight for a in locked.allocations.filter(status="active")}
    adopted: dict[str, str] = {}
    for position in positions:
        slots = {
            s.trader_id: s
            for s in CopySlot.objects.select_for_update().filter(
                strategy=locked, symbol=position.symbol
            )
        }
        attributed = sum((s.attributable for s in slots.values()), ZERO)
        free = position.quantity - attributed
        if free == 0:
            continue
        leaders = {
            tp.trader_id: tp.quantity * allocations[tp.trader_id]
            for tp in TraderPosition.objects.filter(
                trader_id__in=list(allocations), coin=position.symbol.name
            )
            if tp.quantity != 0 and (tp.quantity > 0) == (free > 0)
        }
        total = sum((abs(v) for v in leaders.values()), ZERO)
        if total == 0:
            continue
        for trader_id, share in leaders.items():
            part = free * abs(share) / total
            slot = slots.get(trader_id) or CopySlot.objects.create(
                strategy=locked, trader_id=trader_id, symbol=position.symbol
            )
            slot.base_quantity += part
            slot.save(update_fields=["base_quantity", "updated_at"])
        adopted[position.symbol.name] = str(free)
    return adopted


# --------------------------------------------------------------------------- live updates


def _publish(strategy: CopyStrategy, *, followers_changed: bool = False) -> None:
    strategy_publish_on_commit(strategy, followers_changed=followers_changed)


ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
