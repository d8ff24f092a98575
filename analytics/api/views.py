"""Analytics API: thin views over analytics.selectors.

Candles, funding, the liquidation heatmap, the leaderboard and trader KPIs are public market
information: readable without signing in (``AllowAny``, GET only; the anonymous throttle
applies) and cached in Redis for a few seconds by the selectors. Copy performance is private:
signed in (or an API key with ``read``), and only the caller's own strategies.

Bad input is refused with 400 naming the parameter (RFC 9457 problem details); a value is
never part of SQL text (see analytics.selectors).
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import ScopePermission
from accounts.api.serializers import AUTHENTICATED_PROBLEMS, problems
from analytics import selectors
from analytics.api.serializers import (
    CandleQuerySerializer,
    CandlesSerializer,
    CopyPerformanceListSerializer,
    CopyPerformanceQuerySerializer,
    EquityCurveSerializer,
    EquityQuerySerializer,
    FundingSerializer,
    HeatmapSerializer,
    LeaderboardQuerySerializer,
    LeaderboardSerializer,
    MarketQuerySerializer,
    TraderKpisSerializer,
)

TAGS = ["analytics"]
PUBLIC_PROBLEMS = problems(400, 429)
TRADER_ID = OpenApiParameter("trader_id", type=uuid.UUID, location=OpenApiParameter.PATH)


def _parse(serializer_class: type, request: Request) -> dict[str, Any]:
    form = serializer_class(data=request.query_params)
    form.is_valid(raise_exception=True)
    return dict(form.validated_data)


class PublicView(APIView):
    """Public market information: anyone may read it."""

    permission_classes = [AllowAny]
    http_method_names = ["get", "head", "options"]


class CandleView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="OHLCV candles of a market",
        parameters=[CandleQuerySerializer],
        responses={200: CandlesSerializer, **PUBLIC_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        query = _parse(CandleQuerySerializer, request)
        candles = selectors.candles(**query)
        body = {
            "symbol": query["symbol"],
            "exchange": query["exchange"],
            "interval": query["interval"],
            "source": query["source"],
            "candles": candles,
        }
        return Response(CandlesSerializer(body).data)


class FundingView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="Funding rates of a market",
        parameters=[MarketQuerySerializer],
        responses={200: FundingSerializer, **PUBLIC_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        query = _parse(MarketQuerySerializer, request)
        rates = selectors.funding_rates(**query)
        body = {"symbol": query["symbol"], "exchange": query["exchange"], "rates": rates}
        return Response(FundingSerializer(body).data)


class HeatmapView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="Estimated liquidation levels of tracked positions",
        description="Hourly snapshots binned by estimated liquidation price (method in "
        "analytics.heatmap); at most 7 days per request.",
        parameters=[MarketQuerySerializer],
        responses={200: HeatmapSerializer, **PUBLIC_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        query = _parse(MarketQuerySerializer, request)
        bins = selectors.liq_heatmap(**query)
        body = {"symbol": query["symbol"], "exchange": query["exchange"], "bins": bins}
        return Response(HeatmapSerializer(body).data)


class LeaderboardView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="Traders ranked by a metric over a period",
        parameters=[LeaderboardQuerySerializer],
        responses={200: LeaderboardSerializer, **PUBLIC_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        query = _parse(LeaderboardQuerySerializer, request)
        results = selectors.leaderboard(**query)
        body = {"period": query["period"], "metric": query["metric"], "results": results}
        return Response(LeaderboardSerializer(body).data)


class TraderKpisView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="A trader's KPIs over 1d, 7d, 30d and all",
        parameters=[TRADER_ID],
        responses={200: TraderKpisSerializer, **problems(404, 429)},
    )
    def get(self, request: Request, trader_id: uuid.UUID) -> Response:
        return Response(TraderKpisSerializer(selectors.trader_kpis(trader_id=trader_id)).data)


class TraderEquityView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="A trader's daily equity curve",
        parameters=[TRADER_ID, EquityQuerySerializer],
        responses={200: EquityCurveSerializer, **problems(400, 404, 429)},
    )
    def get(self, request: Request, trader_id: uuid.UUID) -> Response:
        query = _parse(EquityQuerySerializer, request)
        points = selectors.trader_equity_curve(trader_id=trader_id, **query)
        return Response(EquityCurveSerializer({"trader_id": trader_id, "points": points}).data)


class CopyPerformanceView(APIView):
    """The signed-in customer's own strategies only."""

    permission_classes = [IsAuthenticated, ScopePermission]
    required_scopes = "read"
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        tags=TAGS,
        summary="Copy-trading performance of your strategies",
        description="Latency, slippage, alignment, fills, failures, realised PnL and fees of "
        "your strategies' copy-trade events (last 30 days by default, at most 31).",
        parameters=[CopyPerformanceQuerySerializer],
        responses={200: CopyPerformanceListSerializer, **problems(400, *AUTHENTICATED_PROBLEMS)},
    )
    def get(self, request: Request) -> Response:
        query = _parse(CopyPerformanceQuerySerializer, request)
        strategies = selectors.copy_performance(
            user=request.user,  # type: ignore[arg-type]
            strategy_id=query.get("strategy"),
            start=query.get("start"),
            end=query.get("end"),
        )
        return Response(CopyPerformanceListSerializer({"strategies": strategies}).data)
