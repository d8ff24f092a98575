"""Portal pages: sign-in, account settings (credentials, devices, API keys, agent wallets,
exchange connections), staff TOTP enrolment, and the lockout answer. Thin: forms parse,
services decide, a domain error becomes a form error."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import (
    AgentWalletCreateForm,
    ApiKeyForm,
    ApprovalChainForm,
    CredentialsForm,
    ExchangeConnectionForm,
    PasswordResetForm,
    SignatureForm,
    SignInForm,
    TotpConfirmForm,
)
from accounts.models import User
from config.errors import DomainError


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # login_required ran first; this is for the type checker
        raise DjangoPermissionDenied
    return user


def _form_error(form: Form, exc: DomainError) -> None:
    if not exc.fields:
        form.add_error(None, exc.message)
    for field, problems in exc.fields.items():
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)


# --------------------------------------------------------------------------- sign-in


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["siwe"] = services.siwe_expectations()
        return context


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm

    def get_success_url(self) -> str:
        return reverse("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def get_success_url(self) -> str:
        return reverse("accounts:password_reset_complete")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """What django-axes answers once an email is locked out (AXES_LOCKOUT_CALLABLE)."""
    retry_after = services.lockout_retry_after(request)
    detail = "Too many failed sign-in attempts; try again later."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "type": "https://tandem.local/problems/locked_out",
                "title": "Too many requests",
                "status": 429,
                "code": "locked_out",
                "detail": detail,
            },
            status=429,
            content_type="application/problem+json",
        )
    else:
        response = render(
            request,
            "accounts/locked_out.html",
            {"retry_after_minutes": max(1, retry_after // 60)},
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response


# --------------------------------------------------------------------------- settings


@sensitive_post_parameters("current_password", "new_password", "confirm_password")
@login_required
def settings_overview(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = CredentialsForm(request.POST or None, initial={"email": user.email})
    if request.method == "POST" and form.is_valid():
        try:
            services.user_credentials_set(
                user=user,
                email=form.cleaned_data["email"],
                new_password=form.cleaned_data["new_password"],
                current_password=form.cleaned_data["current_password"],
                request=request,
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            # A changed password would otherwise end this very session.
            from django.contrib.auth import update_session_auth_hash

            user.refresh_from_db()
            update_session_auth_hash(request, user)
            messages.success(request, "Email and password saved.")
            return redirect("accounts:settings")
    return render(
        request,
        "accounts/settings/overview.html",
        {
            "form": form,
            "tab": "overview",
            "equity_cap": selectors.kyc_equity_cap(user),
            "recent_activity": selectors.audit_log_for_user(user=user)[:10],
        },
    )


@login_required
def settings_sessions(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    current = request.session.get(services.SESSION_SID_KEY)
    return render(
        request,
        "accounts/settings/sessions.html",
        {"tab": "sessions", "sessions": selectors.auth_session_list(user=user, current_id=current)},
    )


@login_required
@require_POST
def session_revoke(request: HttpRequest, pk: str) -> HttpResponse:
    user = _user(request)
    try:
        services.auth_session_revoke(user=user, auth_session_id=pk, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:sessions")
    if str(pk) == request.session.get(services.SESSION_SID_KEY):
        logout(request)
        return redirect("accounts:login")
    messages.success(request, "That device is signed out.")
    return redirect("accounts:sessions")


@login_required
@require_POST
def sessions_revoke_all(request: HttpRequest) -> HttpResponse:
    services.auth_sessions_revoke_all(user=_user(request), request=request)
    logout(request)
    messages.success(request, "You are signed out everywhere.")
    return redirect("accounts:login")


@login_required
def settings_api_keys(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ApiKeyForm(request.POST or None)
    new_key: str | None = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_key = services.api_key_create(
                user=user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
                allowed_ips=form.cleaned_data["allowed_ips"],
                request=request,
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            form = ApiKeyForm()
    response = render(
        request,
        "accounts/settings/api_keys.html",
        {
            "tab": "api_keys",
            "form": form,
            # Rendered into this one response only: never stored, never in a message cookie.
            "new_key": new_key,
            "api_keys": selectors.api_key_list(user=user),
        },
    )
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        services.api_key_revoke(user=_user(request), api_key_id=pk, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "API key revoked.")
    return redirect("accounts:api_keys")


@sensitive_post_parameters("private_key")
@login_required
def settings_agent_wallets(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = AgentWalletCreateForm(
        request.POST or None, initial={"exchange": settings.TANDEM["DEFAULT_VENUE"]}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["mode"] == "generate":
                approval = services.agent_wallet_generate(
                    user=user, name=data["name"], exchange=data["exchange"], request=request
                )
            else:
                approval = services.agent_wallet_register(
                    user=user,
                    address=data["address"],
                    private_key=data["private_key"] or None,
                    name=data["name"],
                    exchange=data["exchange"],
                    request=request,
                )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Agent wallet created: approve it with your wallet.")
            return redirect("accounts:agent_wallet", pk=approval.agent_wallet.pk)
    return render(
        request,
        "accounts/settings/agent_wallets.html",
        {"tab": "agent_wallets", "form": form, "wallets": selectors.agent_wallet_list(user=user)},
    )


@login_required
def agent_wallet_detail(request: HttpRequest, pk: str) -> HttpResponse:
    user = _user(request)
    try:
        wallet = selectors.agent_wallet_get(user=user, agent_wallet_id=pk)
    except DomainError as exc:
        return render(request, "accounts/not_found.html", {"detail": exc.message}, status=404)
    form = SignatureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.agent_wallet_approve(
                user=user,
                agent_wallet_id=wallet.pk,
                signature=form.cleaned_data["signature"],
                request=request,
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Agent wallet approved and active.")
            return redirect("accounts:agent_wallet", pk=wallet.pk)
    approval = selectors.agent_wallet_approval_current(agent_wallet=wallet)
    return render(
        request,
        "accounts/settings/agent_wallet_detail.html",
        {
            "tab": "agent_wallets",
            "wallet": wallet,
            "form": form,
            "approval": approval,
            "typed_data_json": json.dumps(approval.typed_data, indent=2) if approval else "",
            "approval_api_url": reverse(
                "v1:accounts-api:agent-wallet-approval", kwargs={"pk": wallet.pk}
            ),
        },
    )


@login_required
@require_POST
def agent_wallet_approval_new(request: HttpRequest, pk: str) -> HttpResponse:
    form = ApprovalChainForm(request.POST)
    chain_id = form.cleaned_data["signature_chain_id"] if form.is_valid() else None
    try:
        services.agent_wallet_approval_prepare(
            user=_user(request), agent_wallet_id=pk, signature_chain_id=chain_id, request=request
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:agent_wallet", pk=pk)


@login_required
@require_POST
def agent_wallet_revoke(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        services.agent_wallet_revoke(user=_user(request), agent_wallet_id=pk, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Agent wallet revoked. Its address can never be reused.")
    return redirect("accounts:agent_wallets")


@sensitive_post_parameters("api_key", "api_secret", "passphrase")
@login_required
def settings_connections(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ExchangeConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.exchange_connection_create(
                user=user,
                exchange_name=data["exchange_name"],
                label=data["label"],
                api_key=data["api_key"],
                api_secret=data["api_secret"],
                passphrase=data["passphrase"] or None,
                request=request,
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Connection saved. Its secret is encrypted.")
            return redirect("accounts:connections")
    return render(
        request,
        "accounts/settings/connections.html",
        {
            "tab": "connections",
            "form": form,
            "connections": selectors.exchange_connection_list(user=user),
        },
    )


@login_required
@require_POST
def connection_toggle(request: HttpRequest, pk: str) -> HttpResponse:
    user = _user(request)
    try:
        connection = selectors.exchange_connection_get(user=user, connection_id=pk)
        services.exchange_connection_update(
            user=user, connection_id=pk, is_active=not connection.is_active, request=request
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:connections")


@login_required
@require_POST
def connection_delete(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        services.exchange_connection_delete(user=_user(request), connection_id=pk, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Connection deleted.")
    return redirect("accounts:connections")


# --------------------------------------------------------------------------- staff TOTP


@sensitive_post_parameters("token")
@login_required
def staff_totp_setup(request: HttpRequest) -> HttpResponseBase:
    """Enrol a TOTP device: for a staff member signed in with a password and no device yet.

    The device is created unconfirmed; it counts (and the admin opens) only once the staff
    member proves the authenticator works by entering a code from it.
    """
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _user(request)
    if not user.is_staff:
        raise DjangoPermissionDenied
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return render(request, "accounts/staff_totp.html", {"enrolled": True})
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                services.audit_log_record(
                    action="staff_totp_enrol",
                    actor=user,
                    resource_type="user",
                    resource_id=user.pk,
                    new_values={"device": device.name},
                    request=request,
                )
            otp_login(request, device)
            messages.success(request, "Authenticator enrolled.")
            return redirect("admin:index")
        form.add_error("token", "That code is not valid; check the time on your phone.")
    return render(
        request,
        "accounts/staff_totp.html",
        {"form": form, "otpauth_uri": device.config_url, "qr_svg": _qr_svg(device.config_url)},
    )


def _qr_svg(data: str) -> str:
    """An inline SVG QR code (no CDN, no image file)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")
