"""Billing API routes, mounted under /api/v1/ (namespace ``v1:billing-api``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api.views import (
    FeeSummaryView,
    FeeViewSet,
    PlanListView,
    StatementViewSet,
    SubscriptionCancelView,
    SubscriptionView,
)

app_name = "billing-api"

router = SimpleRouter()
router.register("billing/fees", FeeViewSet, basename="fee")
router.register("billing/statements", StatementViewSet, basename="statement")

urlpatterns = [
    path("billing/plans/", PlanListView.as_view(), name="plans"),
    path("billing/subscription/", SubscriptionView.as_view(), name="subscription"),
    path(
        "billing/subscription/cancel/", SubscriptionCancelView.as_view(), name="subscription-cancel"
    ),
    path("billing/summary/", FeeSummaryView.as_view(), name="summary"),
    *router.urls,
]
