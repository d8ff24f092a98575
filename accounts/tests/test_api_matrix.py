"""Every endpoint of the accounts API, as the owner, another user, an anonymous client and an
API key lacking the endpoint's scope. One row a (method, route): the expected statuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, get_resolver, reverse
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient

from accounts import services
from accounts.api import urls as api_urls
from accounts.models import User
from accounts.tests.conftest import bearer, typed_sign
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class World:
    """The owner's objects every row may point at."""

    owner: User
    owner_account: LocalAccount
    other: User
    session_id: str
    api_key_id: str
    wallet_id: str
    wallet_addr: str
    approval_typed_data: dict[str, Any]
    connection_id: str
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    raw_keys: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def world(owner: User, owner_account: LocalAccount) -> World:
    other = UserFactory.create()
    owner_session, owner_tokens = services.jwt_pair_issue(user=owner, method="siwe")
    _, other_tokens = services.jwt_pair_issue(user=other, method="siwe")
    api_key, _ = services.api_key_create(user=owner, name="target", scopes=["read"])
    approval = services.agent_wallet_generate(user=owner, name="bot")
    connection = services.exchange_connection_create(
        user=owner, exchange_name="bybit", api_key="vk_matrix_key_0001", api_secret="vs_matrix_0002"
    )
    # Keys that lack the scope: GET needs read (so: a trade-only key), writes need manage.
    _, trade_only = services.api_key_create(user=owner, name="trade only", scopes=["trade"])
    _, read_only = services.api_key_create(user=owner, name="read only", scopes=["read"])
    return World(
        owner=owner,
        owner_account=owner_account,
        other=other,
        session_id=str(owner_session.pk),
        api_key_id=str(api_key.pk),
        wallet_id=str(approval.agent_wallet.pk),
        wallet_addr=approval.agent_wallet.addr,
        approval_typed_data=approval.typed_data,
        connection_id=str(connection.pk),
        tokens={"owner": owner_tokens, "other": other_tokens},
        raw_keys={"read": read_only, "trade": trade_only},
    )


def url(name: str, pk: Callable[[World], str] | None = None) -> Callable[[World], str]:
    def build(w: World) -> str:
        kwargs = {"pk": pk(w)} if pk else {}
        return reverse(f"v1:accounts-api:{name}", kwargs=kwargs)

    return build


def fixed(payload: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    return lambda w: payload


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the URL name, to check the table covers every route
    url: Callable[[World], str]
    payload: Callable[[World], dict[str, Any] | None]
    owner: int
    other: int
    anonymous: int
    key_without_scope: int


def _wallet(w: World) -> str:
    return w.wallet_id


NONE = fixed({})  # an empty body
ROWS = [
    # Public sign-in endpoints: the same answer whoever asks (credentials are ignored).
    Row("get", "auth-nonce", url("auth-nonce"), lambda w: None, 200, 200, 200, 200),
    Row("post", "auth-siwe", url("auth-siwe"), NONE, 400, 400, 400, 400),
    Row("post", "auth-login", url("auth-login"), NONE, 400, 400, 400, 400),
    Row("post", "auth-token-refresh", url("auth-token-refresh"), NONE, 400, 400, 400, 400),
    Row(
        "post",
        "auth-password-reset",
        url("auth-password-reset"),
        fixed({"email": "nobody@example.com"}),
        202,
        202,
        202,
        202,
    ),
    # Signed-in endpoints about the caller themself.
    Row("post", "auth-logout", url("auth-logout"), lambda w: None, 204, 204, 401, 403),
    Row(
        "post",
        "auth-password",
        url("auth-password"),
        fixed({"email": "new@example.com", "new_password": "a long enough passphrase 42"}),
        200,
        200,
        401,
        403,
    ),
    Row("get", "auth-sessions", url("auth-sessions"), lambda w: None, 200, 200, 401, 403),
    Row("delete", "auth-sessions", url("auth-sessions"), lambda w: None, 200, 200, 401, 403),
    Row("get", "me", url("me"), lambda w: None, 200, 200, 401, 403),
    Row("get", "api-keys", url("api-keys"), lambda w: None, 200, 200, 401, 403),
    Row(
        "post",
        "api-keys",
        url("api-keys"),
        fixed({"name": "new", "scopes": ["read"]}),
        201,
        201,
        401,
        403,
    ),
    Row("get", "agent-wallets", url("agent-wallets"), lambda w: None, 200, 200, 401, 403),
    Row(
        "post",
        "agent-wallets",
        url("agent-wallets"),
        fixed({"mode": "generate"}),
        201,
        201,
        401,
        403,
    ),
    Row(
        "get",
        "exchange-connections",
        url("exchange-connections"),
        lambda w: None,
        200,
        200,
        401,
        403,
    ),
    Row(
        "post",
        "exchange-connections",
        url("exchange-connections"),
        fixed({"exchange_name": "okx", "api_key": "vk_new_00000001", "api_secret": "vs_new_0002"}),
        201,
        201,
        401,
        403,
    ),
    # The owner's objects: another user gets 404, never the data.
    Row(
        "delete",
        "auth-session-detail",
        url("auth-session-detail", lambda w: w.session_id),
        lambda w: None,
        204,
        404,
        401,
        403,
    ),
    Row(
        "get",
        "api-key-detail",
        url("api-key-detail", lambda w: w.api_key_id),
        lambda w: None,
        200,
        404,
        401,
        403,
    ),
    Row(
        "delete",
        "api-key-detail",
        url("api-key-detail", lambda w: w.api_key_id),
        lambda w: None,
        204,
        404,
        401,
        403,
    ),
    Row(
        "get",
        "agent-wallet-detail",
        url("agent-wallet-detail", _wallet),
        lambda w: None,
        200,
        404,
        401,
        403,
    ),
    Row(
        "patch",
        "agent-wallet-detail",
        url("agent-wallet-detail", _wallet),
        fixed({"name": "renamed"}),
        200,
        404,
        401,
        403,
    ),
    Row(
        "delete",
        "agent-wallet-detail",
        url("agent-wallet-detail", _wallet),
        lambda w: None,
        204,
        404,
        401,
        403,
    ),
    Row(
        "post",
        "agent-wallet-approval",
        url("agent-wallet-approval", _wallet),
        NONE,
        200,
        404,
        401,
        403,
    ),
    Row(
        "post",
        "agent-wallet-approve",
        url("agent-wallet-approve", _wallet),
        lambda w: {"signature": typed_sign(w.owner_account, w.approval_typed_data)},
        200,
        404,
        401,
        403,
    ),
    Row(
        "get",
        "exchange-connection-detail",
        url("exchange-connection-detail", lambda w: w.connection_id),
        lambda w: None,
        200,
        404,
        401,
        403,
    ),
    Row(
        "patch",
        "exchange-connection-detail",
        url("exchange-connection-detail", lambda w: w.connection_id),
        fixed({"label": "renamed"}),
        200,
        404,
        401,
        403,
    ),
    Row(
        "delete",
        "exchange-connection-detail",
        url("exchange-connection-detail", lambda w: w.connection_id),
        lambda w: None,
        204,
        404,
        401,
        403,
    ),
]
ROLES = ("owner", "other", "anonymous", "key_without_scope")


def client_for(role: str, row: Row, w: World) -> APIClient:
    client = APIClient()
    if role in ("owner", "other"):
        return bearer(client, w.tokens[role]["access"])
    if role == "key_without_scope":
        scope_held = "trade" if row.method == "get" else "read"
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {w.raw_keys[scope_held]}")
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method.upper()} {r.route}" for r in ROWS])
def test_endpoint_answers(row: Row, role: str, world: World, no_throttle: None) -> None:
    client = client_for(role, row, world)
    payload = row.payload(world)
    response = getattr(client, row.method)(row.url(world), payload, format="json")
    expected = getattr(row, role)
    assert response.status_code == expected, (role, response.content)
    body = response.content.decode()
    if expected >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"]
    if role in ("other", "anonymous", "key_without_scope"):
        # Nothing of the owner's leaks to anyone else.
        for secret in (world.wallet_addr, world.connection_id, world.api_key_id):
            if role == "other" or expected >= 400:
                assert secret not in body, (role, secret)


def test_the_table_covers_every_route_and_method() -> None:
    from django.urls import URLResolver

    covered = {(row.route, row.method) for row in ROWS}
    routes: set[tuple[str, str]] = set()
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        assert not isinstance(pattern, URLResolver)
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                routes.add((str(pattern.name), method))
    assert routes == covered
    assert get_resolver()  # the URLconf loads
