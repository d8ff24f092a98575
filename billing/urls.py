"""Billing portal routes (mounted at /billing/)."""

from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("cancel/", views.cancel, name="cancel"),
    path("statements/", views.statements, name="statements"),
    path("statements/<str:month>/", views.statement, name="statement"),
    path("statements/<str:month>/csv/", views.statement_csv, name="statement-csv"),
    path("statements/<str:month>/pdf/", views.statement_pdf, name="statement-pdf"),
]
