"""Copy trading API serializers: they parse and present; every rule lives in copytrade.services
(a refusal there is a 400 naming the field, whatever the shape of the request)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from copytrade.models import (
    AllocationStatus,
    CopyAllocation,
    CopyDecision,
    CopyStrategy,
    DecisionKind,
    DecisionOutcome,
    SizeMode,
    StrategyMode,
    StrategyStatus,
    StrategyVersion,
    Trader,
    TraderEvent,
    TraderPosition,
)


def _amount(*, allow_null: bool = True, read_only: bool = True, **kw: Any) -> Any:
    """A decimal string, never a float."""
    return serializers.DecimalField(
        max_digits=24,
        decimal_places=8,
        coerce_to_string=True,
        allow_null=allow_null,
        read_only=read_only,
        **kw,
    )


def _input_amount(help_text: str = "") -> Any:
    return serializers.DecimalField(
        max_digits=24, decimal_places=8, required=False, allow_null=True, help_text=help_text
    )


# --------------------------------------------------------------------------- traders


class TraderSerializer(serializers.ModelSerializer):
    address = serializers.CharField(source="addr", read_only=True)
    followers = serializers.IntegerField(read_only=True)
    public_score = _amount()

    class Meta:
        model = Trader
        fields = ("id", "alias", "address", "exchange", "tags", "public_score", "followers",
                  "is_active", "source", "created_at")  # fmt: skip
        read_only_fields = fields


class TraderPositionSerializer(serializers.ModelSerializer):
    quantity = _amount(allow_null=False)
    entry_price = _amount()
    leverage = _amount()
    opened_at = serializers.IntegerField(source="opened_at_ms", allow_null=True, read_only=True)

    class Meta:
        model = TraderPosition
        fields = ("coin", "quantity", "entry_price", "leverage", "opened_at")
        read_only_fields = fields


class TraderFillSerializer(serializers.ModelSerializer):
    price = _amount(allow_null=False)
    size = _amount(allow_null=False)
    start_position = _amount()
    closed_pnl = _amount(allow_null=False)
    time = serializers.IntegerField(source="time_ms", read_only=True)

    class Meta:
        model = TraderEvent
        fields = ("id", "coin", "side", "price", "size", "start_position", "direction",
                  "closed_pnl", "time", "filled_at")  # fmt: skip
        read_only_fields = fields


class TraderDetailSerializer(TraderSerializer):
    account_value = _amount()
    open_positions = TraderPositionSerializer(many=True, read_only=True)
    recent_fills = TraderFillSerializer(many=True, read_only=True)

    class Meta:
        model = Trader
        fields: tuple[str, ...] = (
            *TraderSerializer.Meta.fields, "account_value", "open_positions", "recent_fills",
        )  # fmt: skip
        read_only_fields = fields


class FollowSerializer(serializers.Serializer):
    trader = serializers.UUIDField(required=False, help_text="A trader Tandem watches.")
    address = serializers.CharField(
        required=False, help_text="Or an account address to watch and follow (0x + 40 hex)."
    )
    exchange = serializers.CharField(required=False, default="hyperliquid")
    copy_pct = serializers.DecimalField(
        max_digits=9, decimal_places=4, help_text="Percentage of the proportional size to copy."
    )
    agent_wallet = serializers.UUIDField(required=False, allow_null=True)
    auto_copy = serializers.BooleanField(
        default=False, help_text="Start copying at once (every activation check applies)."
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)


# --------------------------------------------------------------------------- leaderboard


class TraderRankingQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["1d", "7d", "30d", "all"], default="30d")
    metric = serializers.ChoiceField(
        choices=["pnl", "roi", "win_rate", "sharpe", "drawdown", "copy_score", "followers"],
        default="copy_score",
    )
    tag = serializers.RegexField(r"^[a-z0-9][a-z0-9_-]{0,31}$", required=False)
    min_days = serializers.IntegerField(min_value=0, max_value=36_500, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class TraderRankingEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    trader_id = serializers.UUIDField()
    alias = serializers.CharField()
    exchange = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    followers = serializers.IntegerField()
    pnl = _amount(required=False)
    roi = serializers.FloatField(allow_null=True, required=False)
    win_rate = serializers.FloatField(allow_null=True, required=False)
    sharpe = serializers.FloatField(allow_null=True, required=False)
    max_drawdown = serializers.FloatField(allow_null=True, required=False)
    copy_score = _amount(required=False)
    trade_count = serializers.IntegerField(required=False)
    history_days = serializers.IntegerField(required=False)


class TraderRankingSerializer(serializers.Serializer):
    period = serializers.CharField()
    metric = serializers.CharField()
    kpis_available = serializers.BooleanField(
        help_text="False when the KPI store did not answer: traders are then listed by public "
        "score and followers."
    )
    results = TraderRankingEntrySerializer(many=True)


# --------------------------------------------------------------------------- strategies


class AllocationSerializer(serializers.ModelSerializer):
    trader = serializers.UUIDField(source="trader_id", read_only=True)
    trader_alias = serializers.CharField(source="trader.alias", read_only=True)
    weight = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    status = serializers.ChoiceField(choices=AllocationStatus.choices, read_only=True)
    allocated_pnl = _amount(allow_null=False)

    class Meta:
        model = CopyAllocation
        fields = ("trader", "trader_alias", "weight", "status", "allocated_pnl", "updated_at")
        read_only_fields = fields


class AllocationInputSerializer(serializers.Serializer):
    trader = serializers.UUIDField()
    weight = serializers.DecimalField(
        max_digits=12, decimal_places=8, help_text="In (0, 1]; a strategy's weights sum to <= 1."
    )


class AllocationsInputSerializer(serializers.Serializer):
    allocations = AllocationInputSerializer(many=True)


class AllocationWeightSerializer(serializers.Serializer):
    weight = serializers.DecimalField(max_digits=12, decimal_places=8)


class StrategySerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=StrategyStatus.choices, read_only=True)
    mode = serializers.ChoiceField(choices=StrategyMode.choices, read_only=True)
    size_mode = serializers.ChoiceField(choices=SizeMode.choices, read_only=True)
    agent_wallet = serializers.UUIDField(source="agent_wallet_id", read_only=True, allow_null=True)
    version = serializers.IntegerField(source="version.number", read_only=True, allow_null=True)
    allocations = AllocationSerializer(many=True, read_only=True)
    copy_pct = _amount(allow_null=False)
    fixed_notional_usd = _amount()
    multiplier = _amount()
    max_leverage = _amount(allow_null=False)
    max_position_usd = _amount()
    min_order_usd = _amount(allow_null=False)
    total_pnl = _amount(allow_null=False)
    total_fees = _amount(allow_null=False)
    alignment_rate = _amount(allow_null=False)

    class Meta:
        model = CopyStrategy
        fields = (
            "id", "name", "description", "status", "status_reason", "mode", "size_mode",
            "copy_pct", "fixed_notional_usd", "multiplier", "inverse", "max_leverage",
            "max_position_usd", "slippage_bps", "min_order_usd", "follow_new_entries_only",
            "auto_rebalance", "rebalance_threshold_bps", "agent_wallet", "version",
            "allocations", "total_pnl", "total_fees", "alignment_rate", "started_at",
            "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields = fields


class StrategySettingsSerializer(serializers.Serializer):
    """Settings as sent; ranges and combinations are the service's to check (400 by field)."""

    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    mode = serializers.ChoiceField(choices=StrategyMode.choices, required=False)
    size_mode = serializers.ChoiceField(choices=SizeMode.choices, required=False)
    copy_pct = _input_amount("Percentage of the proportional size, in (0, 1000].")
    fixed_notional_usd = _input_amount("USD per copied trade (fixed sizing).")
    multiplier = _input_amount("Multiple of the leader's size (multiplier sizing).")
    inverse = serializers.BooleanField(required=False)
    max_leverage = _input_amount()
    max_position_usd = _input_amount()
    slippage_bps = serializers.IntegerField(required=False)
    min_order_usd = _input_amount()
    follow_new_entries_only = serializers.BooleanField(required=False)
    auto_rebalance = serializers.BooleanField(required=False)
    rebalance_threshold_bps = serializers.IntegerField(required=False)
    agent_wallet = serializers.UUIDField(required=False, allow_null=True)


class StrategyCreateSerializer(StrategySettingsSerializer):
    name = serializers.CharField(max_length=200)
    allocations = AllocationInputSerializer(many=True, required=False)
    activate = serializers.BooleanField(
        default=False, help_text="Start copying at once (every activation check applies)."
    )


class StatusChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = StrategyVersion
        fields = ("number", "config", "reason", "created_by", "created_at")
        read_only_fields = fields


class DecisionSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=DecisionKind.choices, read_only=True)
    outcome = serializers.ChoiceField(choices=DecisionOutcome.choices, read_only=True)
    strategy = serializers.UUIDField(source="strategy_id", read_only=True)
    trader = serializers.UUIDField(source="trader_id", read_only=True, allow_null=True)
    trader_alias = serializers.CharField(source="trader.alias", read_only=True, default=None)
    order = serializers.UUIDField(source="order_id", read_only=True, allow_null=True)
    order_status = serializers.CharField(source="order.status", read_only=True, default=None)
    leader_size = _amount(allow_null=False)
    leader_price = _amount()
    leader_before = _amount()
    leader_after = _amount()
    quantity = _amount()
    desired_quantity = _amount(allow_null=False)
    limit_price = _amount()
    leverage = _amount()
    remainder_before = _amount(allow_null=False)
    remainder_after = _amount(allow_null=False)
    follower_equity = _amount()
    leader_equity = _amount()
    weight = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)

    class Meta:
        model = CopyDecision
        fields = (
            "id", "strategy", "kind", "outcome", "reason_code", "reason", "source_event_id",
            "trader", "trader_alias", "version_number", "coin", "leader_side", "leader_size",
            "leader_price", "leader_before", "leader_after", "leader_time", "seen_at", "side",
            "quantity", "desired_quantity", "limit_price", "leverage", "reduce_only", "capped",
            "remainder_before", "remainder_after", "follower_equity", "leader_equity", "weight",
            "order", "order_status", "details", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class DecisionFilterSerializer(serializers.Serializer):
    strategy = serializers.UUIDField(required=False)
    outcome = serializers.ChoiceField(choices=DecisionOutcome.choices, required=False)
    reason_code = serializers.CharField(required=False, max_length=48)


# --------------------------------------------------------------------------- simulation, stats


class SimulationQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    equity = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, help_text="Starting equity (USD)."
    )


class SimulationRequestSerializer(StrategySettingsSerializer):
    """A draft strategy (the portal's builder): settings and allocations, nothing saved."""

    allocations = AllocationInputSerializer(many=True)
    days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    equity = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)


class SimulationSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    start = serializers.CharField()
    end = serializers.CharField()
    equity_start = serializers.CharField()
    equity_end = serializers.CharField()
    realized_pnl = serializers.CharField()
    unrealized_pnl = serializers.CharField()
    fees = serializers.CharField()
    total_pnl = serializers.CharField()
    return_pct = serializers.CharField()
    volume = serializers.CharField()
    copied = serializers.IntegerField()
    skipped = serializers.IntegerField()
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())
    max_drawdown_pct = serializers.CharField()
    positions = serializers.DictField(child=serializers.CharField())
    curve = serializers.ListField(child=serializers.DictField())
    assumptions = serializers.ListField(child=serializers.CharField())


class CoinAlignmentSerializer(serializers.Serializer):
    coin = serializers.CharField()
    target = _amount(allow_null=False)
    actual = _amount(allow_null=False)
    price = _amount()
    drift_usd = _amount(allow_null=False)
    drift_bps = _amount()
    tradable = serializers.BooleanField()


class AlignmentSerializer(serializers.Serializer):
    rate = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=True)
    equity = _amount()
    gross_target_usd = _amount(allow_null=False)
    drift_usd = _amount(allow_null=False)
    coins = CoinAlignmentSerializer(many=True)


class LatencySerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    signal_ms_p50 = serializers.IntegerField(allow_null=True)
    decide_ms_p50 = serializers.IntegerField(allow_null=True)
    submit_ms_p50 = serializers.IntegerField(allow_null=True)
    submit_ms_p95 = serializers.IntegerField(allow_null=True)
    fill_ms_p50 = serializers.IntegerField(allow_null=True)
    slippage_bps_avg = serializers.FloatField(allow_null=True)
