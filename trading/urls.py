"""Trading portal routes."""

from django.urls import path

from trading import views

app_name = "trading"
urlpatterns = [
    path("", views.overview, name="overview"),
]
