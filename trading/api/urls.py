"""Trading API routes, mounted under /api/v1/ (namespace ``v1:trading-api``)."""

from rest_framework.routers import SimpleRouter

from trading.api.views import FillViewSet, OrderViewSet, PositionViewSet

app_name = "trading-api"

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("fills", FillViewSet, basename="fill")
router.register("positions", PositionViewSet, basename="position")

urlpatterns = router.urls
