"""Accounts portal routes: sign-in, password reset, settings, staff TOTP enrolment."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset by email (console backend unless DJANGO_EMAIL_BACKEND says otherwise).
    path(
        "password-reset/",
        views.PasswordResetView.as_view(
            email_template_name="registration/password_reset_email.html",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            extra_context={"login_url": reverse_lazy("accounts:login")}
        ),
        name="password_reset_complete",
    ),
    # Settings
    path("settings/", views.settings_overview, name="settings"),
    path("settings/sessions/", views.settings_sessions, name="sessions"),
    path("settings/sessions/<uuid:pk>/revoke/", views.session_revoke, name="session_revoke"),
    path("settings/sessions/revoke-all/", views.sessions_revoke_all, name="sessions_revoke_all"),
    path("settings/api-keys/", views.settings_api_keys, name="api_keys"),
    path("settings/api-keys/<uuid:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("settings/agent-wallets/", views.settings_agent_wallets, name="agent_wallets"),
    path("settings/agent-wallets/<uuid:pk>/", views.agent_wallet_detail, name="agent_wallet"),
    path(
        "settings/agent-wallets/<uuid:pk>/approval/",
        views.agent_wallet_approval_new,
        name="agent_wallet_approval",
    ),
    path(
        "settings/agent-wallets/<uuid:pk>/revoke/",
        views.agent_wallet_revoke,
        name="agent_wallet_revoke",
    ),
    path("settings/connections/", views.settings_connections, name="connections"),
    path(
        "settings/connections/<uuid:pk>/toggle/",
        views.connection_toggle,
        name="connection_toggle",
    ),
    path(
        "settings/connections/<uuid:pk>/delete/",
        views.connection_delete,
        name="connection_delete",
    ),
    path("staff/totp/", views.staff_totp_setup, name="staff_totp"),
]
