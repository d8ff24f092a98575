"""Accounts API routes, mounted under /api/v1/ (reverse as ``v1:accounts-api:<name>``)."""

from django.urls import path

from accounts.api import views

app_name = "accounts-api"
urlpatterns = [
    # Sign-in
    path("auth/nonce", views.NonceView.as_view(), name="auth-nonce"),
    path("auth/siwe", views.SiweSignInView.as_view(), name="auth-siwe"),
    path("auth/login", views.PasswordSignInView.as_view(), name="auth-login"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.SignOutView.as_view(), name="auth-logout"),
    path("auth/password", views.CredentialsView.as_view(), name="auth-password"),
    path(
        "auth/password-reset", views.PasswordResetRequestView.as_view(), name="auth-password-reset"
    ),
    # Devices
    path("auth/sessions", views.SessionListView.as_view(), name="auth-sessions"),
    path("auth/sessions/<uuid:pk>", views.SessionDetailView.as_view(), name="auth-session-detail"),
    # Account
    path("me", views.MeView.as_view(), name="me"),
    path("api-keys", views.ApiKeyListCreateView.as_view(), name="api-keys"),
    path("api-keys/<uuid:pk>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("agent-wallets", views.AgentWalletListCreateView.as_view(), name="agent-wallets"),
    path(
        "agent-wallets/<uuid:pk>",
        views.AgentWalletDetailView.as_view(),
        name="agent-wallet-detail",
    ),
    path(
        "agent-wallets/<uuid:pk>/approval",
        views.AgentWalletApprovalView.as_view(),
        name="agent-wallet-approval",
    ),
    path(
        "agent-wallets/<uuid:pk>/approve",
        views.AgentWalletApproveView.as_view(),
        name="agent-wallet-approve",
    ),
    path(
        "exchange-connections",
        views.ExchangeConnectionListCreateView.as_view(),
        name="exchange-connections",
    ),
    path(
        "exchange-connections/<uuid:pk>",
        views.ExchangeConnectionDetailView.as_view(),
        name="exchange-connection-detail",
    ),
]
