"""Copy trading API: public traders and the leaderboard; the signed-in customer's strategies,
allocations, versions, decisions, simulations and follows.

Thin views: they parse (serializers), read through copytrade.selectors (scoped to the user, so
another user's strategy or decision is a 404) and write through copytrade.services (a refused
input is a 400 naming the field, and nothing is written). Reads need the ``read`` scope, every
write ``trade`` (it changes what is copied into the account).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import AUTHENTICATED_PROBLEMS, problems
from copytrade import selectors, services
from copytrade.api.serializers import (
    AlignmentSerializer,
    AllocationSerializer,
    AllocationsInputSerializer,
    AllocationWeightSerializer,
    DecisionFilterSerializer,
    DecisionSerializer,
    FollowSerializer,
    LatencySerializer,
    RollbackSerializer,
    SimulationQuerySerializer,
    SimulationRequestSerializer,
    SimulationSerializer,
    StatusChangeSerializer,
    StrategyCreateSerializer,
    StrategySerializer,
    StrategySettingsSerializer,
    TraderDetailSerializer,
    TraderRankingQuerySerializer,
    TraderRankingSerializer,
    TraderSerializer,
    VersionSerializer,
)
from copytrade.models import CopyDecision, CopyStrategy, Trader

TAGS = ["copy trading"]
READ = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}
WRITE_ACTIONS = (
    "create", "partial_update", "activate", "resume", "pause", "terminate", "allocations",
    "allocation", "rollback",
)  # fmt: skip
IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID) per strategy you mean to create. Repeating the request "
        "with the same key returns the strategy the first request created (200, header "
        "`Idempotent-Replayed: true`) and creates nothing; the same key with a different body "
        "is refused with 409 `idempotency_key_reused`."
    ),
)
OWN = problems(400, 404, *AUTHENTICATED_PROBLEMS)
ALLOCATION_PATH = r"allocations/(?P<trader_id>[0-9a-f-]{36})"


def _parse(serializer_class: type, data: Any, *, partial: bool = False) -> dict[str, Any]:
    form = serializer_class(data=data, partial=partial)
    form.is_valid(raise_exception=True)
    return dict(form.validated_data)


# --------------------------------------------------------------------------- public


class TraderViewSet(viewsets.ReadOnlyModelViewSet):
    """Traders Tandem watches: public (no sign-in), with their open positions and recent fills
    on the detail."""

    permission_classes = [AllowAny]
    serializer_class = TraderSerializer
    queryset = Trader.objects.none()
    ordering_fields = ["created_at"]

    def get_queryset(self) -> QuerySet[Trader]:
        tag = self.request.query_params.get("tag") or None
        traders = selectors.trader_directory(tag=tag)
        search = (self.request.query_params.get("search") or "").strip()[:64]
        if search:
            traders = traders.filter(
                Q(alias__icontains=search) | Q(src_uid__icontains=search.lower())
            )
        return traders

    @extend_schema(
        tags=TAGS,
        summary="Traders",
        parameters=[
            OpenApiParameter("tag", str, description="Only traders with this tag."),
            OpenApiParameter("search", str, description="Alias or address contains."),
        ],
        responses={200: TraderSerializer(many=True), **problems(400, 429)},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="A trader, with open positions and recent fills",
        responses={200: TraderDetailSerializer, **problems(404, 429)},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        trader = selectors.trader_get(trader_id=kwargs["pk"])
        trader.open_positions = list(selectors.trader_positions_open(trader=trader))  # type: ignore[attr-defined]
        trader.recent_fills = list(selectors.trader_fills_recent(trader=trader, limit=50))  # type: ignore[attr-defined]
        return Response(TraderDetailSerializer(trader).data)


class LeaderboardView(APIView):
    """Traders ranked over 1d/7d/30d/all (analytics' KPIs), public."""

    permission_classes = [AllowAny]
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        tags=TAGS,
        summary="Leaderboard",
        parameters=[TraderRankingQuerySerializer],
        responses={200: TraderRankingSerializer, **problems(400, 429)},
    )
    def get(self, request: Request) -> Response:
        query = _parse(TraderRankingQuerySerializer, request.query_params)
        board = selectors.leaderboard(**query)
        body = {
            "period": query["period"],
            "metric": query["metric"],
            "kpis_available": board["kpis_available"],
            "results": board["entries"],
        }
        return Response(TraderRankingSerializer(body).data)


# --------------------------------------------------------------------------- follows


class FollowView(APIView):
    """Follow one trader with a copy percentage: a single-trader strategy."""

    required_scopes = {**READ, "POST": "trade"}
    http_method_names = ["post", "options"]

    @extend_schema(
        tags=TAGS,
        summary="Follow a trader",
        description="By trader id, or by address (Tandem starts watching it). Creates a "
        "single-trader proportional strategy copying `copy_pct` %; `auto_copy` starts it.",
        request=FollowSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: StrategySerializer, 200: StrategySerializer, **OWN, **problems(409)},
    )
    def post(self, request: Request, trader_id: uuid.UUID | None = None) -> Response:
        data = _parse(FollowSerializer, request.data)
        result = services.trader_follow(
            user=request.user,  # type: ignore[arg-type]
            copy_pct=data["copy_pct"],
            trader_id=trader_id or data.get("trader"),
            address=data.get("address"),
            exchange=data.get("exchange") or "hyperliquid",
            agent_wallet_id=data.get("agent_wallet"),
            auto_copy=data["auto_copy"],
            name=data.get("name") or "",
            idempotency_key=request.headers.get("Idempotency-Key"),
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
        )
        return _created(result)


def _created(result: services.StrategyCreateResult) -> Response:
    strategy = selectors.strategy_get(user=result.strategy.user, strategy_id=result.strategy.pk)
    body = StrategySerializer(strategy).data
    if result.created:
        return Response(body, status=status.HTTP_201_CREATED)
    return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})


# --------------------------------------------------------------------------- strategies


class StrategyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = StrategySerializer
    queryset = CopyStrategy.objects.none()
    # Methods win over actions (accounts/api/permissions.py): reads by method, writes by action,
    # so the draft simulation (a POST that writes nothing) needs only ``read``.
    required_scopes = {
        **READ,
        **dict.fromkeys(WRITE_ACTIONS, "trade"),
        "simulate": "read",
    }

    def get_queryset(self) -> QuerySet[CopyStrategy]:
        return selectors.strategy_list(user=self.request.user)

    def get_object(self) -> CopyStrategy:
        return selectors.strategy_get(user=self.request.user, strategy_id=self.kwargs["pk"])

    def _answer(self, strategy: CopyStrategy, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.strategy_get(user=self.request.user, strategy_id=strategy.pk)
        return Response(StrategySerializer(fresh).data, status=code)

    @extend_schema(tags=TAGS, summary="Your strategies")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(tags=TAGS, summary="A strategy", responses={200: StrategySerializer, **OWN})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="Create a strategy",
        description="Created paused unless `activate` is true. Weights are in (0, 1] and add "
        "up to at most 1. Version 1 records the settings.",
        request=StrategyCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: StrategySerializer,
            200: OpenApiResponse(StrategySerializer, description="Repeated Idempotency-Key."),
            **OWN,
            **problems(409),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _parse(StrategyCreateSerializer, request.data)
        allocations = data.pop("allocations", [])
        wallet = data.pop("agent_wallet", None)
        activate = data.pop("activate")
        name = data.pop("name")
        result = services.strategy_create(
            user=request.user,  # type: ignore[arg-type]
            name=name,
            allocations=allocations,
            agent_wallet_id=wallet,
            idempotency_key=request.headers.get("Idempotency-Key"),
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
            activate=activate,
            **data,
        )
        return _created(result)

    @extend_schema(
        tags=TAGS,
        summary="Change settings",
        description="Any subset of the settings; a new version when anything changes.",
        request=StrategySettingsSerializer,
        responses={200: StrategySerializer, **OWN, **problems(409)},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        strategy = self.get_object()
        data = _parse(StrategySettingsSerializer, request.data, partial=True)
        wallet = data.pop("agent_wallet", None)
        updated = services.strategy_update(
            strategy=strategy,
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
            agent_wallet_id=wallet,
            **data,
        )
        return self._answer(updated)

    def _status(self, request: Request, operation: str) -> Response:
        strategy = self.get_object()
        reason = _parse(StatusChangeSerializer, request.data).get("reason") or ""
        actor: Any = request.user
        context = {"strategy": strategy, "actor": actor, "request": request._request}
        if operation == "activate":
            changed = services.strategy_activate(**context)
        elif operation == "resume":
            changed = services.strategy_resume(**context)
        elif operation == "pause":
            changed = services.strategy_pause(reason=reason or "paused by the customer", **context)
        else:
            changed = services.strategy_terminate(reason=reason, **context)
        return self._answer(changed)

    @extend_schema(
        tags=TAGS,
        summary="Start copying",
        description="Checks, in order: a trader to follow, an active agent wallet allowed to "
        "trade (not used by another running strategy), the account's status and KYC level for "
        "the equity under copy, the risk limits, the plan's limits. 400 with the reason "
        "otherwise.",
        request=None,
        responses={200: StrategySerializer, **OWN, **problems(409)},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        return self._status(request, "activate")

    @extend_schema(
        tags=TAGS, summary="Resume copying (the activation checks again)", request=None,
        responses={200: StrategySerializer, **OWN, **problems(409)},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._status(request, "resume")

    @extend_schema(
        tags=TAGS, summary="Pause copying", request=StatusChangeSerializer,
        responses={200: StrategySerializer, **OWN},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._status(request, "pause")

    @extend_schema(
        tags=TAGS,
        summary="Terminate (final)",
        description="Stops copying for good. Open positions stay open at the venue.",
        request=StatusChangeSerializer,
        responses={200: StrategySerializer, **OWN, **problems(409)},
    )
    @action(detail=True, methods=["post"])
    def terminate(self, request: Request, pk: str | None = None) -> Response:
        return self._status(request, "terminate")

    @extend_schema(
        tags=TAGS,
        summary="Allocations (GET) / replace them all (PUT)",
        request=AllocationsInputSerializer,
        responses={200: AllocationSerializer(many=True), **OWN, **problems(409)},
    )
    @action(detail=True, methods=["get", "put"])
    def allocations(self, request: Request, pk: str | None = None) -> Response:
        strategy = self.get_object()
        if request.method == "PUT":
            data = _parse(AllocationsInputSerializer, request.data)
            strategy = services.allocations_replace(
                strategy=strategy,
                allocations=data["allocations"],
                actor=request.user,  # type: ignore[arg-type]
                request=request._request,
            )
        rows = selectors.strategy_allocations(strategy=strategy)
        return Response(AllocationSerializer(rows, many=True).data)

    @extend_schema(
        methods=["PUT"],
        operation_id="strategies_allocation_set",
        tags=TAGS,
        summary="Add a trader or set its weight",
        request=AllocationWeightSerializer,
        parameters=[OpenApiParameter("trader_id", uuid.UUID, location=OpenApiParameter.PATH)],
        responses={200: AllocationSerializer(many=True), **OWN, **problems(409)},
    )
    @extend_schema(
        methods=["DELETE"],
        operation_id="strategies_allocation_remove",
        tags=TAGS,
        summary="Remove a trader from the strategy",
        request=None,
        parameters=[OpenApiParameter("trader_id", uuid.UUID, location=OpenApiParameter.PATH)],
        responses={200: AllocationSerializer(many=True), **OWN, **problems(409)},
    )
    @action(
        detail=True, methods=["put", "delete"], url_path=r"allocations/(?P<trader_id>[0-9a-f-]{36})"
    )
    def allocation(self, request: Request, pk: str | None = None, trader_id: str = "") -> Response:
        strategy = self.get_object()
        if request.method == "DELETE":
            services.allocation_remove(
                strategy=strategy, trader_id=trader_id, actor=request.user,  # type: ignore[arg-type]
                request=request._request,
            )  # fmt: skip
        else:
            data = _parse(AllocationWeightSerializer, request.data)
            services.allocation_set(
                strategy=strategy, trader_id=trader_id, weight=data["weight"],
                actor=request.user, request=request._request,  # type: ignore[arg-type]
            )  # fmt: skip
        rows = selectors.strategy_allocations(strategy=strategy)
        return Response(AllocationSerializer(rows, many=True).data)

    @extend_schema(
        tags=TAGS, summary="Versions, newest first",
        responses={200: VersionSerializer(many=True), **OWN},
    )  # fmt: skip
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        rows = selectors.strategy_versions(strategy=self.get_object())
        return Response(VersionSerializer(rows, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Roll back to a version",
        description="Restores version N's settings and weights; the next decisions record N.",
        request=RollbackSerializer,
        responses={200: StrategySerializer, **OWN, **problems(409)},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(RollbackSerializer, request.data)
        strategy = services.strategy_rollback(
            strategy=self.get_object(),
            number=data["version"],
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
        )
        return self._answer(strategy)

    @extend_schema(
        tags=TAGS,
        summary="The engine's decisions for this strategy (placed and skipped, with reasons)",
        parameters=[DecisionFilterSerializer],
        responses={200: DecisionSerializer(many=True), **OWN},
    )
    @action(detail=True, methods=["get"])
    def decisions(self, request: Request, pk: str | None = None) -> Response:
        strategy = self.get_object()
        query = _parse(DecisionFilterSerializer, request.query_params)
        query.pop("strategy", None)
        rows = selectors.decision_list(user=request.user, strategy_id=strategy.pk, **query)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DecisionSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="What this strategy would have done over the last N days",
        parameters=[SimulationQuerySerializer],
        responses={200: SimulationSerializer, **OWN},
    )
    @action(detail=True, methods=["get"])
    def simulation(self, request: Request, pk: str | None = None) -> Response:
        strategy = self.get_object()
        query = _parse(SimulationQuerySerializer, request.query_params)
        equity = query.get("equity")
        if equity is None and strategy.agent_wallet is not None:
            equity = services.follower_equity(agent_wallet=strategy.agent_wallet)
        result = services.copy_simulate(
            allocations=[
                {"trader": a.trader_id, "weight": a.weight} for a in strategy.allocations.all()
            ],
            settings={name: getattr(strategy, name) for name in _SIMULATED},
            days=query["days"],
            equity=equity,
            venue=strategy.agent_wallet.exchange if strategy.agent_wallet else None,
        )
        return Response(SimulationSerializer(result.as_dict()).data)

    @extend_schema(
        tags=TAGS,
        summary="Simulate a draft strategy (nothing is saved)",
        request=SimulationRequestSerializer,
        responses={200: SimulationSerializer, **problems(400, *AUTHENTICATED_PROBLEMS)},
    )
    @action(detail=False, methods=["post"])
    def simulate(self, request: Request) -> Response:
        data = _parse(SimulationRequestSerializer, request.data)
        result = services.copy_simulate(
            allocations=data.pop("allocations"),
            days=data.pop("days"),
            equity=data.pop("equity", None),
            settings={k: v for k, v in data.items() if k in _SIMULATED and v is not None},
        )
        return Response(SimulationSerializer(result.as_dict()).data)

    @extend_schema(
        tags=TAGS,
        summary="Alignment now: target vs held per coin, and the rate",
        responses={200: AlignmentSerializer, **OWN},
    )
    @action(detail=True, methods=["get"])
    def alignment(self, request: Request, pk: str | None = None) -> Response:
        report = services.strategy_alignment(strategy=self.get_object())
        return Response(AlignmentSerializer(report).data)

    @extend_schema(
        tags=TAGS,
        summary="Copy latency and slippage (last 30 days)",
        responses={200: LatencySerializer, **OWN},
    )
    @action(detail=True, methods=["get"])
    def latency(self, request: Request, pk: str | None = None) -> Response:
        return Response(
            LatencySerializer(selectors.strategy_latency(strategy=self.get_object())).data
        )


_SIMULATED = (
    "size_mode", "copy_pct", "fixed_notional_usd", "multiplier", "inverse", "max_leverage",
    "max_position_usd", "slippage_bps", "min_order_usd", "follow_new_entries_only",
)  # fmt: skip


class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every decision of every strategy of yours."""

    serializer_class = DecisionSerializer
    queryset = CopyDecision.objects.none()
    required_scopes = READ

    def get_queryset(self) -> QuerySet[CopyDecision]:
        query = _parse(DecisionFilterSerializer, self.request.query_params)
        return selectors.decision_list(
            user=self.request.user,
            strategy_id=query.get("strategy"),
            outcome=query.get("outcome"),
            reason_code=query.get("reason_code"),
        )

    def get_object(self) -> CopyDecision:
        return selectors.decision_get(user=self.request.user, decision_id=self.kwargs["pk"])

    @extend_schema(tags=TAGS, summary="Decisions", parameters=[DecisionFilterSerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(tags=TAGS, summary="A decision", responses={200: DecisionSerializer, **OWN})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)
