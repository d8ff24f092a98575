"""Signing in and out: wallet (SIWE) and password sign-in, portal sessions and JWT families.

Every sign-in, successful or not, leaves an ``audit_logs`` row. A refused attempt writes
nothing else: the nonce stays unused, no user is created, no session opened.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, timedelta
from importlib import import_module
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import login as django_login
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import siwe
from accounts.errors import LockedOut, SignInFailed
from accounts.models import (
    ActorType,
    AuditStatus,
    AuthMethod,
    AuthSession,
    AuthSessionKind,
    SiweNonce,
    User,
)
from accounts.services.audit import audit_log_record, client_ip, user_agent
from config import streams
from config.errors import NotFound, PermissionDenied, ValidationFailed

# The claim in every access and refresh token that names its AuthSession row.
SID_CLAIM = "sid"
# The session key under which a portal session remembers its AuthSession row.
SESSION_SID_KEY = "tandem_auth_session"
SIGN_IN_MODES = ("session", "jwt")
SIWE_STATEMENT = "Sign in to Tandem."
# A wallet's clock may run a little ahead of ours; further than this is refused.
SIWE_ISSUED_AT_SKEW = timedelta(minutes=5)
# last_used_at is a hint for people, not an accounting record: at most one write a minute.
TOUCH_INTERVAL_SECONDS = 60
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
_NONCE_ALPHABET = string.ascii_letters + string.digits

# How a refused wallet sign-in is answered: malformed or mis-addressed messages are the
# client's bug (400); a message that does not prove the signer's identity is 401.
_SIWE_FAILURE_STATUS = {
    "invalid_message": 400,
    "wrong_domain": 400,
    "wrong_uri": 400,
    "wrong_chain": 400,
    "bad_signature": 401,
    "expired": 401,
    "not_yet_valid": 401,
    "nonce_mismatch": 401,
    "nonce_unknown": 401,
    "nonce_reused": 401,
    "nonce_expired": 401,
    "account_inactive": 403,
}


@dataclass(frozen=True)
class SiweExpectations:
    """What a sign-in message must say to be accepted here; clients build messages from it."""

    domain: str
    scheme: str
    uri: str
    chain_ids: tuple[int, ...]
    statement: str
    version: str = "1"


@dataclass(frozen=True)
class SignInResult:
    user: User
    created: bool
    auth_session: AuthSession
    # Only for mode "jwt": {"access": ..., "refresh": ...}
    tokens: dict[str, str] | None = None


def siwe_expectations() -> SiweExpectations:
    site = urlsplit(settings.SITE_URL)
    return SiweExpectations(
        domain=site.netloc,
        scheme=site.scheme,
        uri=f"{site.scheme}://{site.netloc}",
        chain_ids=tuple(int(c) for c in settings.TANDEM["SIWE_CHAIN_IDS"]),
        statement=SIWE_STATEMENT,
    )


# --------------------------------------------------------------------------- SIWE


def siwe_nonce_issue(*, request: HttpRequest | None = None) -> SiweNonce:
    """A fresh single-use nonce (24 alphanumerics, ~143 bits) that expires after the TTL."""
    ttl = int(settings.TANDEM["SIWE_NONCE_TTL_SECONDS"])
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(24))
    with transaction.atomic():
        return SiweNonce.objects.create(
            nonce=nonce,
            expires_at=timezone.now() + timedelta(seconds=ttl),
            ip_address=client_ip(request),
        )


def siwe_challenge_issue(
    *, address: str, chain_id: int | None = None, request: HttpRequest | None = None
) -> tuple[SiweNonce, str]:
    """A nonce and the exact EIP-4361 text for ``address`` to sign with it.

    A convenience for clients without EIP-55 or message code (a browser with only
    ``window.ethereum``); the signed text is verified like any other message.
    """
    from accounts.models import checksum_address

    expected = siwe_expectations()
    try:
        clean_address = checksum_address(address)
    except ValidationError as exc:
        raise ValidationFailed(
            "Enter a valid address.", code="invalid_address", field="address"
        ) from exc
    chain = expected.chain_ids[0] if chain_id is None else chain_id
    if chain not in expected.chain_ids:
        raise ValidationFailed(
            f"Chain {chain} is not accepted.", code="wrong_chain", field="chain_id"
        )
    nonce = siwe_nonce_issue(request=request)

    def stamp(moment: Any) -> str:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    message = siwe.SiweMessage.build(
        domain=expected.domain,
        address=clean_address,
        statement=expected.statement,
        uri=expected.uri,
        version=expected.version,
        chain_id=chain,
        nonce=nonce.nonce,
        issued_at=stamp(nonce.created_at),
        expiration_time=stamp(nonce.expires_at),
    )
    return nonce, message.prepare_message()


def siwe_nonces_purge(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete nonces that expired long enough ago that a replay needs no recognising."""
    with transaction.atomic():
        deleted, _ = SiweNonce.objects.filter(expires_at__lt=timezone.now() - older_than).delete()
    return deleted


def _refuse_sign_in(
    *,
    code: str,
    detail: str,
    request: HttpRequest | None,
    method: str,
    address: str | None = None,
    status: int | None = None,
    signature_verified: bool = False,
) -> NoReturn:
    """Audit a refused sign-in (in its own transaction: the caller writes nothing) and raise.

    The account the message names is the row's resource; it is also the actor only once the
    signature proved the wallet's owner made the attempt (anyone can name any address).
    """
    target = User.objects.filter(wallet_addr=address).first() if address else None
    audit_log_record(
        action="sign_in",
        actor=target if signature_verified else None,
        actor_type=ActorType.USER if signature_verified and target else ActorType.SYSTEM,
        resource_type="user",
        resource_id=target.pk if target else None,
        status=AuditStatus.FAILURE,
        error_code=code,
        error_message=detail,
        request=request,
        metadata={"method": method, "address": address or ""},
        immediate=True,
    )
    status = status or _SIWE_FAILURE_STATUS.get(code, 401)
    if status == 400:
        raise ValidationFailed(detail, code=code, field="message")
    if status == 403:
        raise PermissionDenied(detail, code=code)
    raise SignInFailed(detail, code=code)


def _check_mode(mode: str) -> None:
    if mode not in SIGN_IN_MODES:
        raise ValidationFailed(
            "mode must be 'session' or 'jwt'.", code="invalid_mode", field="mode"
        )


def siwe_sign_in(*, message: str, signature: str, mode: str, request: HttpRequest) -> SignInResult:
    """Verify an EIP-4361 message and its signature, consume its nonce, and sign the user in.

    The wallet's first sign-in creates the user (KYC level 0). ``mode`` "session" opens a
    portal session on ``request``; "jwt" returns an access/refresh pair for mobile clients.
    """
    _check_mode(mode)
    expected = siwe_expectations()
    address: str | None = None
    try:
        parsed = siwe.parse_message(message)
        address = parsed.address
        siwe.verify(
            parsed,
            text=message,
            signature=signature,
            domain=expected.domain,
            scheme=expected.scheme,
            uri_origin=expected.uri,
            chain_ids=expected.chain_ids,
            issued_at_skew=SIWE_ISSUED_AT_SKEW,
        )
    except siwe.SiweError as exc:
        _refuse_sign_in(
            code=exc.code, detail=exc.message, request=request, method="siwe", address=address
        )

    now = timezone.now()
    refusal: tuple[str, str] | None = None
    created = False
    user: User | None = None
    with transaction.atomic():
        # The row lock makes consumption atomic: of two concurrent uses, one waits and then
        # sees used_at set.
        row = SiweNonce.objects.select_for_update().filter(nonce=parsed.nonce).first()
        if row is None:
            refusal = ("nonce_unknown", "Tandem did not issue this nonce: request a new one.")
        elif row.used_at is not None:
            refusal = ("nonce_reused", "This nonce has already been used: request a new one.")
        elif row.expires_at <= now:
            refusal = ("nonce_expired", "This nonce has expired: request a new one.")
        else:
            user = User.objects.filter(wallet_addr=parsed.address).first()
            if user is not None and not user.is_active:
                refusal = ("account_inactive", f"This account is {user.status}.")
            else:
                row.used_at = now
                row.used_by_address = parsed.address
                row.save(update_fields=["used_at", "used_by_address"])
                if user is None:
                    user, created = _user_for_new_wallet(parsed.address)
                audit_log_record(
                    action="sign_in",
                    actor=user,
                    resource_type="user",
                    resource_id=user.pk,
                    new_values={"created": created} if created else None,
                    request=request,
                    metadata={
                        "method": "siwe",
                        "mode": mode,
                        "address": parsed.address,
                        "chain_id": parsed.chain_id,
                    },
                )
    if refusal is not None or user is None:
        code, detail = refusal or ("nonce_unknown", "Request a new nonce.")
        _refuse_sign_in(
            code=code,
            detail=detail,
            request=request,
            method="siwe",
            address=parsed.address,
            signature_verified=True,
        )
    return _open_session(
        user=user, created=created, mode=mode, method=AuthMethod.SIWE, request=request
    )


def _user_for_new_wallet(address: str) -> tuple[User, bool]:
    try:
        with transaction.atomic():
            return User.objects.create_user(wallet_addr=address), True
    except (IntegrityError, ValidationError):
        # Two first sign-ins of one wallet at once: the other one created the row.
        return User.objects.get(wallet_addr=address), False


# --------------------------------------------------------------------------- password


@sensitive_variables("password")
def password_sign_in(*, email: str, password: str, mode: str, request: HttpRequest) -> SignInResult:
    """Email + password through Django's backends, so django-axes counts and locks out.

    Refusals are audited by the ``user_login_failed`` receiver (accounts.receivers), which
    sees every failed password attempt, from the API, the portal and the admin alike.
    """
    _check_mode(mode)
    user = authenticate(request, username=(email or "").strip().lower(), password=password)
    if getattr(request, "axes_locked_out", False):
        raise LockedOut(
            "Too many failed sign-in attempts; try again later.",
            retry_after=lockout_retry_after(request),
        )
    if not isinstance(user, User):
        raise SignInFailed("The email or password is incorrect.", code="invalid_credentials")
    audit_log_record(
        action="sign_in",
        actor=user,
        resource_type="user",
        resource_id=user.pk,
        request=request,
        metadata={"method": "password", "mode": mode},
    )
    return _open_session(
        user=user, created=False, mode=mode, method=AuthMethod.PASSWORD, request=request
    )


def lockout_retry_after(request: HttpRequest | None = None) -> int:
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    return max(1, int(cool_off.total_seconds())) if cool_off else 60


def _open_session(
    *, user: User, created: bool, mode: str, method: str, request: HttpRequest
) -> SignInResult:
    if mode == "session":
        # The user_logged_in receiver records the AuthSession; the sign-in row is ours.
        request._tandem_sign_in_method = method  # type: ignore[attr-defined]
        request._tandem_sign_in_audited = True  # type: ignore[attr-defined]
        django_login(request, user, backend=MODEL_BACKEND)
        auth_session = AuthSession.objects.get(pk=request.session[SESSION_SID_KEY])
        return SignInResult(user=user, created=created, auth_session=auth_session)
    auth_session, tokens = jwt_pair_issue(user=user, method=method, request=request)
    return SignInResult(user=user, created=created, auth_session=auth_session, tokens=tokens)


# --------------------------------------------------------------------------- sessions


def auth_session_open_portal(*, user: User, request: HttpRequest, method: str) -> AuthSession:
    """Record the portal session ``login()`` just opened (called by the user_logged_in receiver).

    A re-login on the same browser keeps its row (Django cycles the key but keeps the data).
    """
    now = timezone.now()
    session = request.session
    if session.session_key is None:
        session.save()
    expires_at = session.get_expiry_date()
    with transaction.atomic():
        existing_id = session.get(SESSION_SID_KEY)
        row = None
        if existing_id:
            row = (
                AuthSession.objects.select_for_update()
                .filter(pk=existing_id, user=user, revoked_at__isnull=True)
                .first()
            )
        if row is None:
            row = AuthSession(user=user, kind=AuthSessionKind.PORTAL, method=method)
        row.session_key = session.session_key
        row.method = method
        row.user_agent = user_agent(request)
        row.ip_address = client_ip(request)
        row.last_used_at = now
        row.expires_at = expires_at
        row.save()
    session[SESSION_SID_KEY] = str(row.pk)
    return row


def auth_session_end_portal(*, request: HttpRequest) -> None:
    """Mark the portal session ended on sign-out (called by the user_logged_out receiver)."""
    session_id = request.session.get(SESSION_SID_KEY) if hasattr(request, "session") else None
    if not session_id:
        return
    with transaction.atomic():
        AuthSession.objects.filter(pk=session_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


def jwt_pair_issue(
    *, user: User, method: str, request: HttpRequest | None = None
) -> tuple[AuthSession, dict[str, str]]:
    """Open a JWT family: an AuthSession row and a refresh token that names it (``sid``)."""
    now = timezone.now()
    with transaction.atomic():
        auth_session = AuthSession.objects.create(
            user=user,
            kind=AuthSessionKind.JWT,
            method=method,
            user_agent=user_agent(request),
            ip_address=client_ip(request),
            last_used_at=now,
            expires_at=now + jwt_settings.REFRESH_TOKEN_LIFETIME,
        )
        refresh = RefreshToken()
        refresh[jwt_settings.USER_ID_CLAIM] = str(user.pk)
        refresh[SID_CLAIM] = str(auth_session.pk)
        refresh.outstand()
        auth_session.refresh_jti = str(refresh[jwt_settings.JTI_CLAIM])
        auth_session.save(update_fields=["refresh_jti"])
        User.objects.filter(pk=user.pk).update(last_login=now)
    return auth_session, {"access": str(refresh.access_token), "refresh": str(refresh)}


def jwt_refresh(*, refresh: str, request: HttpRequest | None = None) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair is returned.

    A refresh token presented again after it was rotated is a sign it was stolen (one of the
    two holders is not the user): the whole family is signed out.
    """
    invalid = SignInFailed(
        "The refresh token is invalid, expired or revoked.", code="token_not_valid"
    )
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError:
        _revoke_family_on_reuse(refresh)
        raise invalid from None
    jti = str(token[jwt_settings.JTI_CLAIM])
    session_id = _uuid_or_none(token.get(SID_CLAIM))
    user_id = _uuid_or_none(token.get(jwt_settings.USER_ID_CLAIM))
    now = timezone.now()
    with transaction.atomic():
        auth_session = (
            AuthSession.objects.select_for_update()
            .select_related("user")
            .filter(pk=session_id, user_id=user_id, kind=AuthSessionKind.JWT)
            .first()
            if session_id and user_id
            else None
        )
        ok = (
            auth_session is not None
            and auth_session.revoked_at is None
            and auth_session.user.is_active
            and auth_session.refresh_jti == jti
        )
        if ok and auth_session is not None:
            token.blacklist()
            token.set_jti()
            token.set_exp()
            token.set_iat()
            token.outstand()
            auth_session.refresh_jti = str(token[jwt_settings.JTI_CLAIM])
            auth_session.last_used_at = now
            auth_session.expires_at = now + jwt_settings.REFRESH_TOKEN_LIFETIME
            auth_session.ip_address = client_ip(request)
            auth_session.user_agent = user_agent(request) or auth_session.user_agent
            auth_session.save(
                update_fields=[
                    "refresh_jti",
                    "last_used_at",
                    "expires_at",
                    "ip_address",
                    "user_agent",
                ]
            )
    if not ok:
        raise invalid
    return {"access": str(token.access_token), "refresh": str(token)}


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _revoke_family_on_reuse(raw: str) -> None:
    try:
        payload = cast(Any, token_backend).decode(raw, verify=True)  # signature and expiry only
    except Exception:
        return
    jti = payload.get(jwt_settings.JTI_CLAIM)
    session_id = _uuid_or_none(payload.get(SID_CLAIM))
    if not (jti and session_id and BlacklistedToken.objects.filter(token__jti=jti).exists()):
        return
    with transaction.atomic():
        auth_session = (
            AuthSession.objects.select_for_update()
            .filter(pk=session_id, revoked_at__isnull=True)
            .first()
        )
        if auth_session is None:
            return
        _revoke([auth_session])
        audit_log_record(
            action="refresh_token_reuse",
            actor=auth_session.user,
            actor_type="system",
            resource_type="auth_session",
            resource_id=auth_session.pk,
            status=AuditStatus.FAILURE,
            error_code="token_reused",
            error_message="A rotated refresh token was presented again; the family is revoked.",
        )


def auth_session_touch(*, auth_session_id: uuid.UUID | str, request: HttpRequest | None) -> bool:
    """Note that a session was used, at most once a minute. False when it has been revoked."""
    if not cache.add(f"accounts:session-touch:{auth_session_id}", 1, TOUCH_INTERVAL_SECONDS):
        return True
    updated = AuthSession.objects.filter(pk=auth_session_id, revoked_at__isnull=True).update(
        last_used_at=timezone.now(), ip_address=client_ip(request)
    )
    return updated > 0


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def _revoke(sessions: Iterable[AuthSession]) -> list[AuthSession]:
    """End sessions: delete their Django sessions and blacklist their refresh tokens."""
    now = timezone.now()
    ended: list[AuthSession] = []
    portal_keys: list[str] = []
    jtis: list[str] = []
    for auth_session in sessions:
        auth_session.revoked_at = now
        auth_session.save(update_fields=["revoked_at"])
        cache.delete(f"accounts:session-touch:{auth_session.pk}")
        if auth_session.kind == AuthSessionKind.PORTAL and auth_session.session_key:
            portal_keys.append(auth_session.session_key)
        if auth_session.refresh_jti:
            jtis.append(auth_session.refresh_jti)
        ended.append(auth_session)
    for outstanding in OutstandingToken.objects.filter(jti__in=jtis):
        BlacklistedToken.objects.get_or_create(token=outstanding)

    # In this transaction, not on commit: the django_session row goes (or stays, on rollback)
    # with the rest; cached_db then reloads from the database, so a rollback stays coherent.
    store = _session_store()
    for key in portal_keys:
        store(session_key=key).delete()
    return ended


def auth_session_revoke(
    *,
    user: User,
    auth_session_id: uuid.UUID | str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> AuthSession:
    """Sign one of ``user``'s devices out. Another user's session is "not found"."""
    session_id = _uuid_or_none(auth_session_id)
    with transaction.atomic():
        auth_session = (
            AuthSession.objects.select_for_update()
            .filter(pk=session_id, user=user, revoked_at__isnull=True)
            .first()
            if session_id
            else None
        )
        if auth_session is None:
            raise NotFound("Session not found.", field="session")
        _revoke([auth_session])
        audit_log_record(
            action="session_revoke",
            actor=actor or user,
            resource_type="auth_session",
            resource_id=auth_session.pk,
            old_values={"kind": auth_session.kind, "device": auth_session.user_agent},
            request=request,
        )
    return auth_session


def auth_sessions_revoke_all(
    *,
    user: User,
    actor: User | None = None,
    request: HttpRequest | None = None,
    reason: str = "sign out everywhere",
) -> int:
    """Sign ``user`` out everywhere: every portal session and every refresh token.

    Refresh tokens not tied to an AuthSession (issued by other means) are blacklisted too.
    """
    with transaction.atomic():
        live = list(
            AuthSession.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        )
        _revoke(live)
        for outstanding in OutstandingToken.objects.filter(
            user=user, blacklistedtoken__isnull=True
        ):
            BlacklistedToken.objects.get_or_create(token=outstanding)
        audit_log_record(
            action="sessions_revoke_all",
            actor=actor or user,
            resource_type="user",
            resource_id=user.pk,
            new_values={"revoked": len(live), "reason": reason},
            request=request,
        )
        streams.access_revoked_on_commit(user.pk)
    return len(live)
