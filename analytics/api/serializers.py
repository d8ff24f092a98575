"""Analytics API: query-parameter parsers and response shapes (decimals as strings)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.conf import setting
from analytics.kpis import PERIODS
from analytics.selectors import INTERVALS, METRICS, SOURCES

SYMBOL_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,31}$"
EXCHANGE_REGEX = r"^[a-z0-9_]{2,32}$"
TAG_REGEX = r"^[\w .:/+-]{1,32}$"


def _default_exchange() -> str:
    from django.conf import settings

    return str(getattr(settings, "TANDEM", {}).get("MARKET_DATA_VENUE") or "hyperliquid")


class MarketQuerySerializer(serializers.Serializer):
    symbol = serializers.RegexField(
        SYMBOL_REGEX, max_length=32, help_text="The venue's coin name, e.g. BTC or kPEPE."
    )
    exchange = serializers.RegexField(
        EXCHANGE_REGEX,
        max_length=32,
        required=False,
        help_text="Venue (default: the deployment's market-data venue).",
    )
    start = serializers.DateTimeField(
        required=False, help_text="ISO 8601; default depends on the endpoint."
    )
    end = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive; default now.")
    limit = serializers.IntegerField(min_value=1, required=False)

    def validate_limit(self, value: int) -> int:
        maximum = int(setting("API_MAX_ROWS"))
        if value > maximum:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {maximum}."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("exchange", _default_exchange())
        return attrs


class CandleQuerySerializer(MarketQuerySerializer):
    interval = serializers.ChoiceField(choices=list(INTERVALS))
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field named "source"
        choices=list(SOURCES),
        default="trades",
        help_text="trades: Tandem's candles from ingested ticks; venue: the venue's candles.",
    )


class CandleSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="Start of the bucket (UTC).")
    open = serializers.DecimalField(max_digits=30, decimal_places=8)
    high = serializers.DecimalField(max_digits=30, decimal_places=8)
    low = serializers.DecimalField(max_digits=30, decimal_places=8)
    close = serializers.DecimalField(max_digits=30, decimal_places=8)
    volume = serializers.DecimalField(max_digits=38, decimal_places=8)
    trade_count = serializers.IntegerField()
    vwap = serializers.DecimalField(max_digits=30, decimal_places=8, allow_null=True)
    change = serializers.DecimalField(max_digits=30, decimal_places=8, help_text="close - open")
    change_pct = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)


class CandlesSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    interval = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named "source"
    candles = CandleSerializer(many=True)


class FundingRateSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    funding_rate = serializers.DecimalField(max_digits=20, decimal_places=10)
    premium = serializers.DecimalField(max_digits=20, decimal_places=10)


class FundingSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    rates = FundingRateSerializer(many=True)


class HeatmapBinSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="Snapshot instant (end of an hour).")
    side = serializers.ChoiceField(choices=["long", "short"])
    price = serializers.DecimalField(max_digits=30, decimal_places=8, help_text="Bin centre.")
    width = serializers.DecimalField(max_digits=30, decimal_places=8)
    volume = serializers.DecimalField(max_digits=38, decimal_places=8)
    notional = serializers.DecimalField(max_digits=38, decimal_places=8)
    positions = serializers.IntegerField()
    confidence = serializers.DecimalField(max_digits=6, decimal_places=4)
    method_version = serializers.IntegerField()


class HeatmapSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    bins = HeatmapBinSerializer(many=True)


class KpiSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    as_of = serializers.DateField()
    start_date = serializers.DateField()
    days = serializers.IntegerField()
    history_days = serializers.IntegerField()
    pnl = serializers.DecimalField(max_digits=38, decimal_places=8, help_text="Net of fees, USD.")
    volume = serializers.DecimalField(max_digits=38, decimal_places=8)
    trade_count = serializers.IntegerField()
    roi = serializers.FloatField(help_text="Compounded daily returns, a fraction.")
    win_rate = serializers.FloatField(allow_null=True)
    sharpe = serializers.FloatField(allow_null=True)
    sortino = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField()
    var_95 = serializers.FloatField(allow_null=True)
    profit_factor = serializers.FloatField(allow_null=True)
    avg_leverage = serializers.FloatField(allow_null=True)
    copy_score = serializers.DecimalField(max_digits=5, decimal_places=2)


class TraderKpisSerializer(serializers.Serializer):
    trader_id = serializers.UUIDField()
    alias = serializers.CharField()
    periods = serializers.DictField(child=KpiSerializer(), help_text="1d, 7d, 30d, all.")


class EquityQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)


class EquityPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    equity_start = serializers.DecimalField(max_digits=38, decimal_places=8)
    net_pnl = serializers.DecimalField(max_digits=38, decimal_places=8)
    equity_end = serializers.DecimalField(max_digits=38, decimal_places=8)
    # "return" is a Python keyword; the field is declared in get_fields.

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["return"] = serializers.FloatField(help_text="net_pnl / equity_start")
        return fields


class EquityCurveSerializer(serializers.Serializer):
    trader_id = serializers.UUIDField()
    points = EquityPointSerializer(many=True)


class LeaderboardQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS), default="30d")
    metric = serializers.ChoiceField(choices=list(METRICS), default="copy_score")
    tag = serializers.RegexField(TAG_REGEX, max_length=32, required=False)
    min_days = serializers.IntegerField(min_value=0, max_value=36_500, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class LeaderboardEntrySerializer(KpiSerializer):
    rank = serializers.IntegerField()
    trader_id = serializers.UUIDField()
    alias = serializers.CharField()
    exchange = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    followers = serializers.IntegerField()


class LeaderboardSerializer(serializers.Serializer):
    period = serializers.CharField()
    metric = serializers.CharField()
    results = LeaderboardEntrySerializer(many=True)


class CopyPerformanceQuerySerializer(serializers.Serializer):
    strategy = serializers.UUIDField(required=False, help_text="One of your strategies.")
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)


class CopyPerformanceSerializer(serializers.Serializer):
    strategy_id = serializers.UUIDField()
    events = serializers.IntegerField()
    fills = serializers.IntegerField()
    failures = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    avg_latency_ms = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.FloatField(allow_null=True)
    avg_slippage_bps = serializers.FloatField(allow_null=True)
    avg_alignment_rate = serializers.FloatField(allow_null=True)
    realized_pnl = serializers.DecimalField(max_digits=38, decimal_places=8)
    fees = serializers.DecimalField(max_digits=38, decimal_places=8)
    notional = serializers.DecimalField(max_digits=38, decimal_places=8)
    first_event = serializers.DateTimeField()
    last_event = serializers.DateTimeField()


class CopyPerformanceListSerializer(serializers.Serializer):
    strategies = CopyPerformanceSerializer(many=True)
