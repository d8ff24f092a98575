"""API keys: shown once, stored hashed, scoped, expiring, IP-restricted, revocable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import selectors, services
from accounts.api.permissions import required_scope
from accounts.models import ApiKey, AuditLog, User

pytestmark = pytest.mark.django_db
KEYS = "v1:accounts-api:api-keys"
ME = "v1:accounts-api:me"


def key_client(raw_key: str, *, header: str = "authorization", **extra: Any) -> APIClient:
    client = APIClient(**extra)
    if header == "authorization":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    else:
        client.credentials(HTTP_X_API_KEY=raw_key)
    return client


def test_create_returns_the_key_once_and_stores_only_a_hash(
    user_client: APIClient, user: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            reverse(KEYS), {"name": "bot", "scopes": ["read", "trade"]}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["key"]
    assert raw.startswith("tdm_")
    assert "." in raw
    assert body["prefix"] == raw.split(".")[0]
    api_key = ApiKey.objects.get(pk=body["id"])
    assert api_key.key_hash == services.api_key_hash(raw)
    secret = raw.split(".", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_keys::text FROM api_keys")
        dump = " ".join(row[0] for row in cursor.fetchall())
    assert secret not in dump
    assert raw not in dump
    # Never again: not in the list, not in the detail, not in the audit log.
    listed = user_client.get(reverse(KEYS)).json()["results"]
    assert "key" not in listed[0]
    assert secret not in str(listed)
    detail = user_client.get(reverse("v1:accounts-api:api-key-detail", kwargs={"pk": api_key.pk}))
    assert secret not in detail.content.decode()
    audit = AuditLog.objects.get(action="api_key_create")
    assert secret not in str(audit.new_values)
    assert audit.actor == user


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_key_authenticates_with_either_header(user: User, header: str) -> None:
    _, raw = services.api_key_create(user=user, name="k", scopes=["read"])
    response = key_client(raw, header=header).get(reverse(ME))
    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)


def test_key_lacking_the_scope_gets_403(user: User) -> None:
    _, raw = services.api_key_create(user=user, name="reader", scopes=["read"])
    response = key_client(raw).post(reverse(KEYS), {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "manage" in response.json()["detail"]


def test_wrong_secret_revoked_and_expired_keys_are_401(user: User) -> None:
    api_key, raw = services.api_key_create(user=user, name="k", scopes=["read"])
    prefix = raw.split(".")[0]
    wrong = key_client(f"{prefix}.{'x' * 43}").get(reverse(ME))
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "api_key_invalid"
    assert wrong["WWW-Authenticate"].startswith("Bearer")

    services.api_key_revoke(user=user, api_key_id=api_key.pk)
    revoked = key_client(raw).get(reverse(ME))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "api_key_revoked"

    expiring, raw2 = services.api_key_create(
        user=user, name="soon", scopes=["read"], expires_at=timezone.now() + timedelta(days=1)
    )
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = key_client(raw2).get(reverse(ME))
    assert expired.status_code == 401
    assert expired.json()["code"] == "api_key_expired"


def test_ip_allow_list(user: User) -> None:
    _, raw = services.api_key_create(
        user=user, name="office", scopes=["read"], allowed_ips=["10.1.0.0/16", "2001:db8::1"]
    )
    inside = key_client(raw, REMOTE_ADDR="10.1.2.3").get(reverse(ME))
    assert inside.status_code == 200
    outside = key_client(raw, REMOTE_ADDR="192.0.2.9").get(reverse(ME))
    assert outside.status_code == 403
    assert outside.json()["code"] == "ip_not_allowed"


def test_suspended_owner_key_stops_working(user: User, staff_user: User) -> None:
    _, raw = services.api_key_create(user=user, name="k", scopes=["read"])
    services.user_suspend(user=user, actor=staff_user, reason="review")
    assert key_client(raw).get(reverse(ME)).status_code == 401
    services.user_reactivate(user=user, actor=staff_user)
    assert key_client(raw).get(reverse(ME)).status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(user: User) -> None:
    api_key, raw = services.api_key_create(user=user, name="k", scopes=["read"])
    client = key_client(raw)
    client.get(reverse(ME))
    api_key.refresh_from_db()
    first = api_key.last_used_at
    assert first is not None
    assert api_key.last_used_ip == "127.0.0.1"
    client.get(reverse(ME))
    api_key.refresh_from_db()
    assert api_key.last_used_at == first
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(reverse(ME))
    api_key.refresh_from_db()
    assert api_key.last_used_at > first - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "k", "scopes": ["admin"]}, "scopes"),
        ({"name": "k", "scopes": ["read"], "allowed_ips": ["not-an-ip"]}, "allowed_ips"),
        ({"name": "k", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_input_is_400_and_creates_nothing(
    user_client: APIClient, payload: dict[str, Any], field: str
) -> None:
    response = user_client.post(reverse(KEYS), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ApiKey.objects.exists()


def test_revoking_another_users_key_is_404(user_client: APIClient, other_user: User) -> None:
    theirs, raw = services.api_key_create(user=other_user, name="theirs", scopes=["read"])
    url = reverse("v1:accounts-api:api-key-detail", kwargs={"pk": theirs.pk})
    assert user_client.get(url).status_code == 404
    assert user_client.delete(url).status_code == 404
    assert key_client(raw).get(reverse(ME)).status_code == 200


def test_required_scope_convention() -> None:
    class Plain:
        pass

    class Declared:
        required_scopes = {"POST": "trade", "cancel": "trade"}
        action = "cancel"

    class Single:
        required_scopes = "trade"

    assert required_scope(Plain(), "GET") == "read"
    assert required_scope(Plain(), "DELETE") == "manage"
    assert required_scope(Declared(), "POST") == "trade"
    assert required_scope(Declared(), "PATCH") == "trade"  # by action name
    assert required_scope(Single(), "GET") == "trade"


def test_websocket_resolver_accepts_live_keys_only(user: User) -> None:
    live, raw = services.api_key_create(user=user, name="ws", scopes=["read", "trade"])
    assert selectors.api_key_for_websocket(raw) == (user, ["read", "trade"])
    _, pinned = services.api_key_create(
        user=user, name="pinned", scopes=["read"], allowed_ips=["10.0.0.0/8"]
    )
    assert selectors.api_key_for_websocket(pinned) is None  # cannot check the IP there
    assert selectors.api_key_for_websocket(raw.replace(".", ".x", 1)) is None
    services.api_key_revoke(user=user, api_key_id=live.pk)
    assert selectors.api_key_for_websocket(raw) is None
