"""Analytics API routes, mounted under /api/v1/."""

from django.urls import path

from analytics.api import views

app_name = "analytics-api"
urlpatterns = [
    path("analytics/candles/", views.CandleView.as_view(), name="candles"),
    path("analytics/funding/", views.FundingView.as_view(), name="funding"),
    path("analytics/heatmap/", views.HeatmapView.as_view(), name="heatmap"),
    path("analytics/leaderboard/", views.LeaderboardView.as_view(), name="leaderboard"),
    path(
        "analytics/traders/<uuid:trader_id>/kpis/",
        views.TraderKpisView.as_view(),
        name="trader-kpis",
    ),
    path(
        "analytics/traders/<uuid:trader_id>/equity/",
        views.TraderEquityView.as_view(),
        name="trader-equity",
    ),
    path(
        "analytics/copy-performance/",
        views.CopyPerformanceView.as_view(),
        name="copy-performance",
    ),
]
