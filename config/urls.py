"""Top-level routes: portal pages, /admin/, the versioned API, its schema and docs, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import health, views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("copytrade.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("analytics.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("accounts/", include("accounts.urls")),
    path("trading/", include("trading.urls")),
    path("copy/", include("copytrade.urls")),
    path("billing/", include("billing.urls")),
    path("analytics/", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "v1"))),
    path("api/schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

admin.site.site_header = "Tandem back office"
admin.site.site_title = "Tandem"
admin.site.index_title = "Operations"
