"""Mobile JWTs (rotation, blacklist, reuse detection), the device list and signing out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.models import AuthSession, User
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db
REFRESH = "v1:accounts-api:auth-token-refresh"
SESSIONS = "v1:accounts-api:auth-sessions"
ME = "v1:accounts-api:me"


@pytest.fixture
def signed_in(wallet: LocalAccount, siwe_sign_in: Callable[..., Any]) -> dict[str, Any]:
    response = siwe_sign_in(wallet, mode="jwt")
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_refresh_rotates_and_blacklists_the_old_token(signed_in: dict[str, Any]) -> None:
    client = APIClient()
    first = client.post(reverse(REFRESH), {"refresh": signed_in["refresh"]}, format="json")
    assert first.status_code == 200, first.content
    pair = first.json()
    assert pair["refresh"] != signed_in["refresh"]
    assert bearer(APIClient(), pair["access"]).get(reverse(ME)).status_code == 200
    session = AuthSession.objects.get(pk=signed_in["session_id"])
    assert BlacklistedToken.objects.filter(token__jti__isnull=False).count() == 1
    assert OutstandingToken.objects.filter(jti=session.refresh_jti).exists()

    # The new refresh token keeps working...
    second = client.post(reverse(REFRESH), {"refresh": pair["refresh"]}, format="json")
    assert second.status_code == 200


def test_reusing_a_rotated_refresh_token_signs_the_device_out(signed_in: dict[str, Any]) -> None:
    client = APIClient()
    rotated = client.post(reverse(REFRESH), {"refresh": signed_in["refresh"]}, format="json")
    new_pair = rotated.json()
    stolen = client.post(reverse(REFRESH), {"refresh": signed_in["refresh"]}, format="json")
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "token_not_valid"
    # The thief's replay ended the whole family: the legitimate new tokens die too.
    assert AuthSession.objects.get(pk=signed_in["session_id"]).revoked_at is not None
    assert bearer(APIClient(), new_pair["access"]).get(reverse(ME)).status_code == 401
    again = client.post(reverse(REFRESH), {"refresh": new_pair["refresh"]}, format="json")
    assert again.status_code == 401


def test_garbage_refresh_token_is_401(api_client: APIClient) -> None:
    response = api_client.post(reverse(REFRESH), {"refresh": "not-a-token"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_sessions_list_shows_devices_with_the_current_one_marked(
    signed_in: dict[str, Any], wallet: LocalAccount, siwe_sign_in: Callable[..., Any]
) -> None:
    other_device = siwe_sign_in(wallet, mode="jwt").json()
    client = bearer(APIClient(HTTP_USER_AGENT="TandemMobile/1.0"), signed_in["access"])
    response = client.get(reverse(SESSIONS))
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {signed_in["session_id"], other_device["session_id"]}
    assert rows[signed_in["session_id"]]["current"] is True
    assert rows[other_device["session_id"]]["current"] is False
    assert rows[signed_in["session_id"]]["kind"] == "jwt"
    assert rows[signed_in["session_id"]]["ip_address"] == "127.0.0.1"
    assert {"user_agent", "created_at", "last_used_at"} <= set(rows[signed_in["session_id"]])


def test_deleting_a_session_ends_its_access_and_refresh_tokens(
    signed_in: dict[str, Any], wallet: LocalAccount, siwe_sign_in: Callable[..., Any]
) -> None:
    other = siwe_sign_in(wallet, mode="jwt").json()
    me = bearer(APIClient(), signed_in["access"])
    response = me.delete(
        reverse("v1:accounts-api:auth-session-detail", kwargs={"pk": other["session_id"]})
    )
    assert response.status_code == 204
    assert bearer(APIClient(), other["access"]).get(reverse(ME)).status_code == 401
    refresh = APIClient().post(reverse(REFRESH), {"refresh": other["refresh"]}, format="json")
    assert refresh.status_code == 401
    assert me.get(reverse(ME)).status_code == 200  # this device is unaffected


def test_sign_out_everywhere_kills_sessions_and_blacklists_every_refresh_token(
    signed_in: dict[str, Any], wallet: LocalAccount, siwe_sign_in: Callable[..., Any], client: Any
) -> None:
    other = siwe_sign_in(wallet, mode="jwt").json()
    user = User.objects.get(wallet_addr=wallet.address)
    client.force_login(user)
    portal_key = client.session.session_key
    assert Session.objects.filter(session_key=portal_key).exists()

    response = bearer(APIClient(), signed_in["access"]).delete(reverse(SESSIONS))
    assert response.status_code == 200
    assert response.json()["revoked"] == 3
    for pair in (signed_in, other):
        assert bearer(APIClient(), pair["access"]).get(reverse(ME)).status_code == 401
        again = APIClient().post(reverse(REFRESH), {"refresh": pair["refresh"]}, format="json")
        assert again.status_code == 401
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == BlacklistedToken.objects.filter(token__in=outstanding).count()
    assert not Session.objects.filter(session_key=portal_key).exists()
    assert client.get(reverse("accounts:settings")).status_code == 302


def test_another_users_session_is_not_found(signed_in: dict[str, Any], other_user: User) -> None:
    session, _ = services.jwt_pair_issue(user=other_user, method="siwe")
    response = bearer(APIClient(), signed_in["access"]).delete(
        reverse("v1:accounts-api:auth-session-detail", kwargs={"pk": session.pk})
    )
    assert response.status_code == 404
    assert AuthSession.objects.get(pk=session.pk).revoked_at is None


def test_logout_ends_this_device_only(
    signed_in: dict[str, Any], wallet: LocalAccount, siwe_sign_in: Callable[..., Any]
) -> None:
    other = siwe_sign_in(wallet, mode="jwt").json()
    response = bearer(APIClient(), signed_in["access"]).post(reverse("v1:accounts-api:auth-logout"))
    assert response.status_code == 204
    assert bearer(APIClient(), signed_in["access"]).get(reverse(ME)).status_code == 401
    assert bearer(APIClient(), other["access"]).get(reverse(ME)).status_code == 200


def test_suspended_users_tokens_stop_working(signed_in: dict[str, Any], staff_user: User) -> None:
    user = User.objects.get(pk=signed_in["user"]["id"])
    services.user_suspend(user=user, actor=staff_user, reason="fraud review")
    assert bearer(APIClient(), signed_in["access"]).get(reverse(ME)).status_code == 401
    refresh = APIClient().post(reverse(REFRESH), {"refresh": signed_in["refresh"]}, format="json")
    assert refresh.status_code == 401


def test_portal_sessions_are_tracked_listed_and_revocable(client: Any, user: User) -> None:
    client.force_login(user)
    row = AuthSession.objects.get(user=user)
    assert row.kind == "portal"
    assert row.session_key == client.session.session_key
    listed = client.get(reverse(SESSIONS))
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [str(row.pk)]
    assert listed.json()[0]["current"] is True

    other_browser = type(client)()
    other_browser.force_login(user)
    other_row = AuthSession.objects.exclude(pk=row.pk).get(user=user)
    response = client.post(reverse("accounts:session_revoke", kwargs={"pk": other_row.pk}))
    assert response.status_code == 302
    assert other_browser.get(reverse("accounts:settings")).status_code == 302
    assert client.get(reverse("accounts:settings")).status_code == 200


def test_logging_out_of_the_portal_ends_the_session_row(client: Any, user: User) -> None:
    client.force_login(user)
    row = AuthSession.objects.get(user=user)
    client.post(reverse("accounts:logout"))
    row.refresh_from_db()
    assert row.revoked_at is not None
