"""Trading API: orders, fills and positions of the signed-in customer.

Thin views: they parse (serializers), read through trading.selectors (scoped to the user, so
another user's object is a 404) and write through trading.services.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from trading import selectors, services
from trading.api.filters import FillFilter, OrderFilter, PositionFilter
from trading.api.serializers import (
    FillSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PositionSerializer,
    ProblemSerializer,
)
from trading.models import Fill, Order, Position

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID) per order you mean to place. Repeating a request with the "
        "same key returns the order the first request created, with status 200 instead of "
        "201 and the header `Idempotent-Replayed: true`, and places nothing. The same key with "
        "a different body is refused with 409 `idempotency_key_reused`."
    ),
)
PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem details (RFC 9457).")


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    ordering_fields = ["created_at"]
    required_scopes = {"GET": "read", "HEAD": "read", "OPTIONS": "read", "POST": "trade"}
    queryset = Order.objects.none()  # schema generation; get_queryset scopes every request

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.order_list(user=self.request.user)  # type: ignore[arg-type]

    def get_object(self) -> Order:
        return selectors.order_get(
            user=self.request.user,  # type: ignore[arg-type]
            order_id=self.kwargs["pk"],
        )

    @extend_schema(
        summary="Place an order",
        request=OrderCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OrderSerializer,
            200: OpenApiResponse(
                OrderSerializer,
                description="Repeated Idempotency-Key: the order the first request placed.",
            ),
            400: PROBLEM,
            403: PROBLEM,
            409: PROBLEM,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = OrderCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        result = services.order_create(
            user=request.user,  # type: ignore[arg-type]
            symbol=data["symbol"],
            side=data["side"],
            quantity=data["quantity"],
            order_type=data["order_type"],
            price=data.get("price"),
            trigger_price=data.get("trigger_price"),
            time_in_force=data.get("time_in_force"),
            reduce_only=data["reduce_only"],
            leverage=data.get("leverage"),
            agent_wallet_id=data.get("agent_wallet"),
            venue=data.get("venue") or None,
            idempotency_key=request.headers.get("Idempotency-Key"),
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
        )
        body = OrderSerializer(result.order, context=self.get_serializer_context()).data
        if result.created:
            return Response(body, status=status.HTTP_201_CREATED)
        return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})

    @extend_schema(
        summary="Cancel an order",
        request=None,
        responses={
            200: OpenApiResponse(OrderSerializer, description="Cancelled before it was sent."),
            202: OpenApiResponse(
                OrderSerializer,
                description="Cancel sent to the venue; "
                "the order turns cancelled when the venue confirms.",
            ),
            404: PROBLEM,
            409: PROBLEM,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        order = self.get_object()
        order = services.order_cancel(
            order=order,
            actor=request.user,  # type: ignore[arg-type]
            request=request._request,
            reason="customer",
        )
        code = status.HTTP_200_OK if order.is_final else status.HTTP_202_ACCEPTED
        return Response(
            OrderSerializer(order, context=self.get_serializer_context()).data, status=code
        )


class FillViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = FillSerializer
    filterset_class = FillFilter
    ordering_fields = ["created_at"]
    required_scopes = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}
    queryset = Fill.objects.none()

    def get_queryset(self) -> QuerySet[Fill]:
        return selectors.fill_list(user=self.request.user)  # type: ignore[arg-type]


class PositionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PositionSerializer
    filterset_class = PositionFilter
    ordering_fields = ["created_at"]
    required_scopes = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}
    queryset = Position.objects.none()

    def get_queryset(self) -> QuerySet[Position]:
        return selectors.position_list(user=self.request.user)  # type: ignore[arg-type]
