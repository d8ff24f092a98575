"""Billing API: the signed-in customer's fees, statements, plan and subscription.

Thin views: they parse (serializers), read through billing.selectors (scoped to the user, so
another user's fee or statement is a 404) and write through billing.services.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import documents, selectors, services
from billing.api.filters import FeeFilter
from billing.api.serializers import (
    FeeSerializer,
    FeeSummarySerializer,
    PlanSerializer,
    ProblemSerializer,
    StatementSerializer,
    SubscribeSerializer,
    SubscriptionSerializer,
    SubscriptionStateSerializer,
)
from billing.api.throttling import with_plan_rate
from billing.models import FeeLedgerEntry, Statement
from config.api import CreatedCursorPagination

PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem details (RFC 9457).")
READ = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}
# The plan's API rate on top of the general throttles (billing/api/throttling.py).
THROTTLES = with_plan_rate()


class _DocumentRenderer(BaseRenderer):
    """Lets a client ask for the document's type; problem details still render as JSON."""

    charset = None
    format = ""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class CSVRenderer(_DocumentRenderer):
    media_type = "text/csv"
    format = "csv"


class PDFRenderer(_DocumentRenderer):
    media_type = "application/pdf"
    format = "pdf"


class FeeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fees charged (and reversed), newest first, cursor-paginated."""

    throttle_classes = THROTTLES

    serializer_class = FeeSerializer
    filterset_class = FeeFilter
    ordering_fields = ["created_at"]
    required_scopes = READ
    queryset = FeeLedgerEntry.objects.none()  # schema generation; get_queryset scopes

    def get_queryset(self) -> QuerySet[FeeLedgerEntry]:
        return selectors.fee_list(user=self.request.user)  # type: ignore[arg-type]

    def get_object(self) -> FeeLedgerEntry:
        return selectors.fee_get(user=self.request.user, fee_id=self.kwargs["pk"])  # type: ignore[arg-type]


class StatementPagination(CreatedCursorPagination):
    ordering = ("-month", "-id")


class StatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Closed monthly statements, newest month first, with CSV and PDF downloads."""

    throttle_classes = THROTTLES

    serializer_class = StatementSerializer
    pagination_class = StatementPagination
    filter_backends: list[Any] = []
    required_scopes = READ
    queryset = Statement.objects.none()

    def get_queryset(self) -> QuerySet[Statement]:
        return selectors.statement_list(user=self.request.user)  # type: ignore[arg-type]

    def get_object(self) -> Statement:
        return selectors.statement_get(
            user=self.request.user,  # type: ignore[arg-type]
            statement_id=self.kwargs["pk"],
        )

    @extend_schema(
        summary="Download a statement as CSV (every fee row of the month)",
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            (404, "application/problem+json"): PROBLEM,
        },
    )
    @action(
        detail=True, methods=["get"], renderer_classes=[CSVRenderer, JSONRenderer], url_name="csv"
    )
    def csv(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        statement = self.get_object()
        response = StreamingHttpResponse(
            documents.statement_csv_rows(user=request.user, month=statement.month),  # type: ignore[arg-type]
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="tandem-statement-{statement.month:%Y-%m}.csv"'
        )
        return response

    @extend_schema(
        summary="Download a statement as PDF",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="PDF"),
            (404, "application/problem+json"): PROBLEM,
        },
    )
    @action(
        detail=True, methods=["get"], renderer_classes=[PDFRenderer, JSONRenderer], url_name="pdf"
    )
    def pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        statement = self.get_object()
        body = documents.statement_pdf(user=request.user, month=statement.month)  # type: ignore[arg-type]
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="tandem-statement-{statement.month:%Y-%m}.pdf"'
        )
        return response


class PlanListView(APIView):
    throttle_classes = THROTTLES
    required_scopes = READ

    @extend_schema(summary="The plans on offer", responses={200: PlanSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(PlanSerializer(selectors.plan_list(), many=True).data)


def _state(user: Any) -> dict[str, Any]:
    subscription = selectors.subscription_current(user=user)
    plan = subscription.plan if subscription is not None else selectors.default_plan()
    limits = selectors.plan_limits(user)
    return {
        "plan": plan,
        "subscription": subscription,
        "limits": {
            "strategies": limits.strategies,
            "traders_per_portfolio": limits.traders_per_portfolio,
            "api_keys": limits.api_keys,
            "api_rate_per_minute": limits.api_rate_per_minute,
        },
        "usage": selectors.plan_usage_summary(user=user),
    }


class SubscriptionView(APIView):
    throttle_classes = THROTTLES
    required_scopes = {**READ, "POST": "manage"}

    @extend_schema(
        summary="My plan, subscription, limits and usage",
        responses={200: SubscriptionStateSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(SubscriptionStateSerializer(_state(request.user)).data)

    @extend_schema(
        summary="Subscribe to a plan, or change plan",
        description=(
            "From the default plan, a period of the chosen plan starts now and is charged in "
            "advance (201). With a subscription in force, the change is scheduled for the end "
            "of the current period, or a pending cancellation is undone (200). Choosing the "
            "default plan cancels at the period's end."
        ),
        request=SubscribeSerializer,
        responses={
            201: OpenApiResponse(SubscriptionSerializer, description="A new period started."),
            200: OpenApiResponse(SubscriptionSerializer, description="Change scheduled."),
            400: PROBLEM,
        },
    )
    def post(self, request: Request) -> Response:
        form = SubscribeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = services.subscription_subscribe(
            user=request.user,  # type: ignore[arg-type]
            plan_code=form.validated_data["plan"],
            request=request._request,
        )
        code = status.HTTP_201_CREATED if result.started else status.HTTP_200_OK
        return Response(SubscriptionSerializer(result.subscription).data, status=code)


class SubscriptionCancelView(APIView):
    throttle_classes = THROTTLES
    required_scopes = "manage"

    @extend_schema(
        summary="Cancel at the end of the current period",
        request=None,
        responses={200: SubscriptionSerializer, 400: PROBLEM},
    )
    def post(self, request: Request) -> Response:
        subscription = services.subscription_cancel(
            user=request.user,  # type: ignore[arg-type]
            request=request._request,
        )
        return Response(SubscriptionSerializer(subscription).data)


class FeeSummaryView(APIView):
    throttle_classes = THROTTLES
    required_scopes = READ

    @extend_schema(
        summary="Fees today and this month, and the balance owed",
        responses={200: FeeSummarySerializer},
    )
    def get(self, request: Request) -> Response:
        user = request.user
        totals = selectors.fee_totals(user=user)  # type: ignore[arg-type]
        balances = selectors.receivable_balance(user=user)  # type: ignore[arg-type]
        data = {
            **totals,
            "balances": [{"currency": c, "balance": b} for c, b in sorted(balances.items())],
        }
        return Response(FeeSummarySerializer(data).data)
