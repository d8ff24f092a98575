"""Analytics portal routes."""

from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("markets/", views.markets, name="markets"),
]
