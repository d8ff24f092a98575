"""Copy trading API routes, mounted under /api/v1/ (namespace ``v1:copytrade-api``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from copytrade.api.views import (
    DecisionViewSet,
    FollowView,
    LeaderboardView,
    StrategyViewSet,
    TraderViewSet,
)

app_name = "copytrade-api"

router = SimpleRouter()
router.register("traders", TraderViewSet, basename="trader")
router.register("strategies", StrategyViewSet, basename="strategy")
router.register("decisions", DecisionViewSet, basename="decision")

urlpatterns = [
    path("leaderboard/", LeaderboardView.as_view(), name="leaderboard"),
    path("follows/", FollowView.as_view(), name="follow"),
    path("traders/<uuid:trader_id>/follow/", FollowView.as_view(), name="trader-follow"),
    *router.urls,
]
