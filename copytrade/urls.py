"""Copy trading portal routes (mounted at /copy/)."""

from django.urls import path

from copytrade import views

app_name = "copytrade"
urlpatterns = [
    path("", views.strategy_list, name="strategy_list"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("traders/<uuid:trader_id>/", views.trader_detail, name="trader_detail"),
    path("traders/<uuid:trader_id>/follow/", views.trader_follow, name="trader_follow"),
    path("strategies/new/", views.strategy_builder, name="strategy_builder"),
    path("strategies/weights/", views.weights_total, name="weights_total"),
    path("strategies/simulate/", views.strategy_simulate, name="strategy_simulate"),
    path("strategies/<uuid:strategy_id>/", views.strategy_detail, name="strategy_detail"),
    path(
        "strategies/<uuid:strategy_id>/<slug:action>/",
        views.strategy_action,
        name="strategy_action",
    ),
]
