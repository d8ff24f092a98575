"""Accounts API views: thin. They parse with a serializer, call a service or selector, answer.

Scopes for API keys follow the default (GET needs ``read``, writes need ``manage``); see
accounts/api/permissions.py. Another user's object is always 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import logout
from django.http import HttpRequest
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.api.permissions import NotApiKey, ScopePermission
from accounts.api.throttling import SignInRateThrottle
from accounts.errors import LockedOut
from accounts.forms import PasswordResetForm
from accounts.models import ApiKey, User

TAG_AUTH = ["auth"]
TAG_ACCOUNT = ["account"]
AUTHENTICATED_PROBLEMS = s.AUTHENTICATED_PROBLEMS


def _django_request(request: Request) -> HttpRequest:
    return request._request


def _me(request: Request) -> User:
    """The acting user (IsAuthenticated has run; this narrows the type)."""
    if not isinstance(request.user, User):
        raise exceptions.NotAuthenticated()
    return request.user


def _enforce_csrf(request: Request) -> None:
    """Sign-in views take no credentials, so DRF skips CSRF; a cookie session still needs it
    (otherwise another site could sign a visitor in to the attacker's account)."""

    def no_response(_: HttpRequest) -> None:  # CSRFCheck is a middleware; nothing downstream
        return None

    check = CSRFCheck(no_response)  # type: ignore[arg-type]
    django_request = _django_request(request)
    check.process_request(django_request)
    reason = check.process_view(django_request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise exceptions.PermissionDenied(f"CSRF failed: {reason}", code="csrf_failed")


def _current_session_id(request: Request) -> str | None:
    token = request.auth
    if token is not None and not isinstance(token, ApiKey) and hasattr(token, "get"):
        sid = token.get(services.SID_CLAIM)
        return str(sid) if sid else None
    session = getattr(_django_request(request), "session", None)
    return session.get(services.SESSION_SID_KEY) if session is not None else None


def _sign_in_response(result: services.SignInResult, mode: str, request: Request) -> Response:
    data: dict[str, Any] = {
        "user": result.user,
        "created": result.created,
        "mode": mode,
        "session_id": result.auth_session.pk,
    }
    if result.tokens:
        data.update(result.tokens)
    else:
        get_token(_django_request(request))  # a fresh CSRF cookie for the new session
    return Response(s.SignInResultSerializer(data).data)


class PublicAuthView(APIView):
    """Endpoints that take no credentials: no authentication, tight per-IP throttle."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInRateThrottle]


# --------------------------------------------------------------------------- sign-in


class NonceView(PublicAuthView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_nonce",
        summary="Issue a single-use SIWE nonce (expires in 5 minutes)",
        description="With `address` (and optionally `chain_id`) the answer also carries the "
        "exact EIP-4361 message to sign, so a client needs no EIP-55 or message code.",
        parameters=[s.NonceQuerySerializer],
        responses={200: s.NonceSerializer, **s.problems(400, 429)},
    )
    def get(self, request: Request) -> Response:
        query = s.NonceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        message = None
        if query.validated_data.get("address"):
            nonce, message = services.siwe_challenge_issue(
                address=query.validated_data["address"],
                chain_id=query.validated_data.get("chain_id"),
                request=_django_request(request),
            )
        else:
            nonce = services.siwe_nonce_issue(request=_django_request(request))
        expected = services.siwe_expectations()
        data: dict[str, Any] = {
            "nonce": nonce.nonce,
            "issued_at": nonce.created_at,
            "expires_at": nonce.expires_at,
            "domain": expected.domain,
            "uri": expected.uri,
            "chain_ids": list(expected.chain_ids),
            "version": expected.version,
            "statement": expected.statement,
        }
        if message is not None:
            data["message"] = message
        return Response(s.NonceSerializer(data).data, headers={"Cache-Control": "no-store"})


class SiweSignInView(PublicAuthView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_siwe",
        summary="Sign in with Ethereum (EIP-4361)",
        description=(
            "Verifies the message (domain, URI, chain id, times, nonce) and its signature, "
            "creates the account on a wallet's first sign-in, and opens a portal session "
            "(`mode=session`, CSRF token required) or returns a JWT pair (`mode=jwt`). "
            "Refusals carry a `code`: invalid_message, wrong_domain, wrong_uri, wrong_chain, "
            "bad_signature, expired, not_yet_valid, nonce_unknown, nonce_reused, nonce_expired, "
            "account_inactive."
        ),
        request=s.SiweSignInSerializer,
        responses={200: s.SignInResultSerializer, **s.problems(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.SiweSignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mode = data.validated_data["mode"]
        if mode == "session":
            _enforce_csrf(request)
        result = services.siwe_sign_in(
            message=data.validated_data["message"],
            signature=data.validated_data["signature"],
            mode=mode,
            request=_django_request(request),
        )
        return _sign_in_response(result, mode, request)


class PasswordSignInView(PublicAuthView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_login",
        summary="Sign in with email and password",
        description="Repeated failures lock the email out for a while (429, code locked_out).",
        request=s.PasswordSignInSerializer,
        responses={200: s.SignInResultSerializer, **s.problems(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordSignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mode = data.validated_data["mode"]
        if mode == "session":
            _enforce_csrf(request)
        try:
            result = services.password_sign_in(
                email=data.validated_data["email"],
                password=data.validated_data["password"],
                mode=mode,
                request=_django_request(request),
            )
        except LockedOut as exc:
            raise exceptions.Throttled(
                wait=exc.retry_after, detail=exc.message, code="locked_out"
            ) from exc
        return _sign_in_response(result, mode, request)


class TokenRefreshView(PublicAuthView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_token_refresh",
        summary="Rotate a refresh token",
        description="The presented refresh token is blacklisted; presenting it again signs "
        "the whole device out.",
        request=s.TokenRefreshSerializer,
        responses={200: s.TokenPairSerializer, **s.problems(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.TokenRefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = services.jwt_refresh(
            refresh=data.validated_data["refresh"], request=_django_request(request)
        )
        return Response(s.TokenPairSerializer(tokens).data)


class PasswordResetRequestView(PublicAuthView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_password_reset",
        summary="Email a password-reset link",
        description="Always 202, whether or not the email belongs to an account.",
        request=s.PasswordResetRequestSerializer,
        responses={202: None, **s.problems(400, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordResetRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        form = PasswordResetForm(data={"email": data.validated_data["email"]})
        if form.is_valid():
            form.save(request=_django_request(request), use_https=request.is_secure())
        return Response(status=status.HTTP_202_ACCEPTED)


class SignOutView(APIView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_logout",
        summary="Sign this device out",
        request=None,
        responses={204: None, **s.problems(*AUTHENTICATED_PROBLEMS)},
    )
    def post(self, request: Request) -> Response:
        current = _current_session_id(request)
        if current:
            services.auth_session_revoke(
                user=_me(request), auth_session_id=current, request=_django_request(request)
            )
        if getattr(_django_request(request), "session", None) is not None:
            logout(_django_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- sessions


class SessionListView(APIView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_sessions_list",
        summary="Devices signed in to this account (portal sessions and refresh tokens)",
        responses={200: s.AuthSessionSerializer(many=True), **s.problems(*AUTHENTICATED_PROBLEMS)},
    )
    def get(self, request: Request) -> Response:
        views = selectors.auth_session_list(
            user=_me(request), current_id=_current_session_id(request)
        )
        rows = []
        for view in views:
            row = view.auth_session
            row.current = view.current  # type: ignore[attr-defined]
            rows.append(row)
        return Response(s.AuthSessionSerializer(rows, many=True).data)

    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_sessions_revoke_all",
        summary="Sign out everywhere",
        description="Ends every portal session and blacklists every refresh token, this "
        "device's included.",
        responses={200: s.RevokedCountSerializer, **s.problems(*AUTHENTICATED_PROBLEMS)},
    )
    def delete(self, request: Request) -> Response:
        count = services.auth_sessions_revoke_all(
            user=_me(request), request=_django_request(request)
        )
        if getattr(_django_request(request), "session", None) is not None and not isinstance(
            request.auth, ApiKey
        ):
            logout(_django_request(request))
        return Response(s.RevokedCountSerializer({"revoked": count}).data)


class SessionDetailView(APIView):
    @extend_schema(
        tags=TAG_AUTH,
        operation_id="auth_session_revoke",
        summary="Sign one device out",
        responses={204: None, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.auth_session_revoke(
            user=_me(request), auth_session_id=pk, request=_django_request(request)
        )
        if str(pk) == (_current_session_id(request) or "") and not isinstance(request.auth, ApiKey):
            logout(_django_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- account


class MeView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="me_retrieve",
        summary="The signed-in account",
        responses={200: s.MeSerializer, **s.problems(*AUTHENTICATED_PROBLEMS)},
    )
    def get(self, request: Request) -> Response:
        return Response(s.MeSerializer(_me(request)).data)


class CredentialsView(APIView):
    # Sign-in credentials need the person: a key that could set them (an email and password on
    # a wallet-only account) would turn a leaked, scoped key into the whole account.
    permission_classes = [IsAuthenticated, ScopePermission, NotApiKey]

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="auth_password_set",
        summary="Add or change the email and password sign-in",
        description="current_password is required once a password exists.",
        request=s.CredentialsSerializer,
        responses={200: s.MeSerializer, **s.problems(400, *AUTHENTICATED_PROBLEMS, 409)},
    )
    def post(self, request: Request) -> Response:
        data = s.CredentialsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_credentials_set(
            user=_me(request),
            email=data.validated_data["email"],
            new_password=data.validated_data["new_password"],
            current_password=data.validated_data["current_password"],
            request=_django_request(request),
        )
        return Response(s.MeSerializer(user).data)


# --------------------------------------------------------------------------- API keys


class ApiKeyListCreateView(generics.ListAPIView):
    serializer_class = s.ApiKeySerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.api_key_list(user=_me(self.request))

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="api_keys_list",
        summary="API keys (the secret is never shown again)",
        responses={200: s.ApiKeySerializer(many=True), **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="api_keys_create",
        summary="Create an API key; the response is the only time the key is shown",
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer, **s.problems(400, *AUTHENTICATED_PROBLEMS, 409)},
    )
    def post(self, request: Request) -> Response:
        data = s.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw_key = services.api_key_create(
            user=_me(request),
            request=_django_request(request),
            parent=request.auth if isinstance(request.auth, ApiKey) else None,
            **data.validated_data,
        )
        api_key.key = raw_key  # type: ignore[attr-defined]
        return Response(s.ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="api_keys_retrieve",
        responses={200: s.ApiKeySerializer, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(
            s.ApiKeySerializer(selectors.api_key_get(user=_me(request), api_key_id=pk)).data
        )

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="api_keys_revoke",
        summary="Revoke an API key (it stops working at once)",
        responses={204: None, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.api_key_revoke(user=_me(request), api_key_id=pk, request=_django_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- agent wallets


class AgentWalletListCreateView(generics.ListAPIView):
    serializer_class = s.AgentWalletSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.agent_wallet_list(user=_me(self.request)).select_related("user")

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_list",
        responses={
            200: s.AgentWalletSerializer(many=True),
            **s.problems(*AUTHENTICATED_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_create",
        summary="Generate or register an agent wallet",
        description="The new wallet is pending: sign `approval.typed_data` with your master "
        "wallet (eth_signTypedData_v4) and POST the signature to .../approve.",
        request=s.AgentWalletCreateSerializer,
        responses={201: s.AgentWalletSerializer, **s.problems(400, *AUTHENTICATED_PROBLEMS, 409)},
    )
    def post(self, request: Request) -> Response:
        data = s.AgentWalletCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {
            "user": request.user,
            "name": values["name"],
            "exchange": values["exchange"],
            "signature_chain_id": values["signature_chain_id"],
            "request": _django_request(request),
        }
        if values["mode"] == "generate":
            approval = services.agent_wallet_generate(**common)
        else:
            approval = services.agent_wallet_register(
                address=values.get("address") or "",
                private_key=values.get("private_key") or None,
                **common,
            )
        return Response(
            s.AgentWalletSerializer(approval.agent_wallet).data, status=status.HTTP_201_CREATED
        )


class AgentWalletDetailView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_retrieve",
        responses={200: s.AgentWalletSerializer, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        wallet = selectors.agent_wallet_get(user=_me(request), agent_wallet_id=pk)
        return Response(s.AgentWalletSerializer(wallet).data)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_update",
        summary="Rename or change limits (withdraw can never be granted)",
        request=s.AgentWalletUpdateSerializer,
        responses={200: s.AgentWalletSerializer, **s.problems(400, *AUTHENTICATED_PROBLEMS, 404)},
    )
    def patch(self, request: Request, pk: str) -> Response:
        data = s.AgentWalletUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wallet = services.agent_wallet_update(
            user=_me(request),
            agent_wallet_id=pk,
            request=_django_request(request),
            **data.validated_data,
        )
        return Response(s.AgentWalletSerializer(wallet).data)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_revoke",
        summary="Revoke (soft-delete); the address can never be used again",
        responses={204: None, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.agent_wallet_revoke(
            user=_me(request), agent_wallet_id=pk, request=_django_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentWalletApprovalView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_approval_create",
        summary="A fresh approveAgent payload (new nonce, e.g. for your wallet's chain)",
        request=s.ApprovalRequestSerializer,
        responses={
            200: s.ApprovalSerializer,
            **s.problems(400, *AUTHENTICATED_PROBLEMS, 404, 409),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        data = s.ApprovalRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.agent_wallet_approval_prepare(
            user=_me(request),
            agent_wallet_id=pk,
            signature_chain_id=data.validated_data["signature_chain_id"],
            request=_django_request(request),
        )
        return Response(s.ApprovalSerializer(s.approval_data(approval)).data)


class AgentWalletApproveView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="agent_wallets_approve",
        summary="Submit the master wallet's approveAgent signature; activates the wallet",
        request=s.ApproveSerializer,
        responses={
            200: s.AgentWalletSerializer,
            **s.problems(400, *AUTHENTICATED_PROBLEMS, 404, 409),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        data = s.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wallet = services.agent_wallet_approve(
            user=_me(request),
            agent_wallet_id=pk,
            signature=data.validated_data["signature"],
            request=_django_request(request),
        )
        return Response(s.AgentWalletSerializer(wallet).data)


# --------------------------------------------------------------------------- connections


class ExchangeConnectionListCreateView(generics.ListAPIView):
    serializer_class = s.ExchangeConnectionSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.exchange_connection_list(user=_me(self.request))

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="exchange_connections_list",
        responses={
            200: s.ExchangeConnectionSerializer(many=True),
            **s.problems(*AUTHENTICATED_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="exchange_connections_create",
        summary="Connect a venue account (credentials are encrypted and never shown again)",
        request=s.ExchangeConnectionCreateSerializer,
        responses={
            201: s.ExchangeConnectionSerializer,
            **s.problems(400, *AUTHENTICATED_PROBLEMS, 409),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.ExchangeConnectionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        connection = services.exchange_connection_create(
            user=_me(request),
            exchange_name=values["exchange_name"],
            label=values["label"],
            api_key=values["api_key"],
            api_secret=values["api_secret"],
            passphrase=values["passphrase"] or None,
            request=_django_request(request),
        )
        return Response(
            s.ExchangeConnectionSerializer(connection).data, status=status.HTTP_201_CREATED
        )


class ExchangeConnectionDetailView(APIView):
    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="exchange_connections_retrieve",
        responses={200: s.ExchangeConnectionSerializer, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        connection = selectors.exchange_connection_get(user=_me(request), connection_id=pk)
        return Response(s.ExchangeConnectionSerializer(connection).data)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="exchange_connections_update",
        summary="Relabel, enable/disable, or replace the credentials",
        request=s.ExchangeConnectionUpdateSerializer,
        responses={
            200: s.ExchangeConnectionSerializer,
            **s.problems(400, *AUTHENTICATED_PROBLEMS, 404, 409),
        },
    )
    def patch(self, request: Request, pk: str) -> Response:
        data = s.ExchangeConnectionUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        connection = services.exchange_connection_update(
            user=_me(request),
            connection_id=pk,
            request=_django_request(request),
            **data.validated_data,
        )
        return Response(s.ExchangeConnectionSerializer(connection).data)

    @extend_schema(
        tags=TAG_ACCOUNT,
        operation_id="exchange_connections_delete",
        responses={204: None, **s.problems(*AUTHENTICATED_PROBLEMS, 404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.exchange_connection_delete(
            user=_me(request), connection_id=pk, request=_django_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
