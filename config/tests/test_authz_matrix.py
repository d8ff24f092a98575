"""Authorisation matrix, generated from the OpenAPI schema: every API operation x every kind of
caller, each cell asserted; the websocket streams x callers; the admin's door.

Callers: the owner of the objects the path names (a JWT), another customer, a staff member (a
customer too, as far as the API goes: no objects of anyone else), an anonymous client, an API key
of the owner with exactly one scope (read, trade, manage), the owner's access token once expired,
and a revoked key that held every scope.

The expectation of every operation is written down in ``EXPECTED`` (by operation id); the
statuses of the callers follow from it:

* anonymous, expired JWT, revoked key: 401 (public operations: what an anonymous caller gets;
  sign-in operations ignore credentials altogether, so there the answer is the anonymous one);
* a key without the operation's scope: 403 ``insufficient_scope``;
* another customer, and staff, on an object of the owner: 404 (never the owner's data);
* the owner, and the owner's key with the scope: the operation's own answer, never a 5xx.

Every refused cell is also checked to have written nothing (every table of Tandem's apps: row
count and content). Each cell runs in a savepoint rolled back afterwards, so every caller sees the
same world. A new operation in the schema without a row in ``EXPECTED`` fails the coverage test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import User
from accounts.tests.factories import AgentWalletFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]

ROLES = (
    "anonymous",
    "expired_jwt",
    "revoked_key",
    "key_read",
    "key_trade",
    "key_manage",
    "other",
    "staff",
    "owner",
)
KEY_SCOPES = {"key_read": "read", "key_trade": "trade", "key_manage": "manage"}
METHODS = ("get", "post", "put", "patch", "delete")


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Op:
    """What one operation promises.

    kind: ``signin`` (takes no credentials: everyone gets the anonymous answer), ``public``
    (anyone may call it; bad credentials are still a 401), ``private`` (signed in only).
    scope: the API-key scope it needs (private operations).
    owned: the path names an object of the owner (another customer and staff get 404).
    ok: the statuses the owner (and a key with the scope) may get, for the body sent.
    anon_ok: the statuses of an anonymous caller on a public operation.
    """

    kind: str
    scope: str = "read"
    owned: bool = False
    ok: frozenset[int] = frozenset({200})
    anon_ok: frozenset[int] = frozenset({200})
    body: Callable[[World], dict[str, Any] | None] = field(default=lambda w: None)
    # Other customers and staff are customers without the owner's objects: what they get on a
    # non-owned private operation (their own empty list, or their own validation error).
    stranger_ok: frozenset[int] | None = None
    # False: no API key may call it, whatever its scopes (403 api_key_not_allowed).
    keys: bool = True


def _ok(*codes: int) -> frozenset[int]:
    return frozenset(codes)


def private(
    scope: str = "read",
    *ok: int,
    owned: bool = False,
    body: Callable[[World], dict[str, Any] | None] | None = None,
    stranger: tuple[int, ...] | None = None,
    keys: bool = True,
) -> Op:
    return Op(
        kind="private",
        scope=scope,
        owned=owned,
        ok=_ok(*(ok or (200,))),
        body=body or (lambda w: None),
        stranger_ok=_ok(*stranger) if stranger else None,
        keys=keys,
    )


def public(*ok: int, anon: tuple[int, ...] | None = None) -> Op:
    codes = _ok(*(ok or (200,)))
    return Op(kind="public", ok=codes, anon_ok=_ok(*anon) if anon else codes)


def signin(*ok: int, body: Callable[[World], dict[str, Any] | None] | None = None) -> Op:
    codes = _ok(*(ok or (200,)))
    return Op(kind="signin", ok=codes, anon_ok=codes, body=body or (lambda w: None))


EXPECTED: dict[str, Op] = {}  # filled below, after World


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    owner: User
    owner_account: LocalAccount
    other: User
    staff: User
    ids: dict[str, str]
    headers: dict[str, dict[str, str]]
    approval_typed_data: dict[str, Any]
    secrets: list[str]


def _expired(access: str) -> str:
    token = AccessToken(access)  # type: ignore[arg-type]
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(minutes=15))
    return str(token)


def _bearer(access: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def _key(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {raw}"}


def _plans() -> None:
    import importlib

    from billing.models import Plan

    plans = importlib.import_module("billing.migrations.0003_default_plans").PLANS
    for values in plans:
        Plan.objects.get_or_create(code=values["code"], defaults={**values, "currency": "USDC"})


def _owned_trading_and_billing(owner: User, strategy: Any, trader: Any) -> dict[str, str]:
    """An order, its fill and position (a copy trade of ``strategy``), its fees and the closed
    statement of that month."""
    from billing import services as billing
    from billing.models import FeeLedgerEntry, Statement
    from trading.models import Fill, Position
    from trading.tests.factories import OrderFactory, SymbolFactory

    wallet = AgentWalletFactory.create(user=owner, exchange="hyperliquid")
    symbol = SymbolFactory.create(venue="hyperliquid", name="ETH")
    order = OrderFactory.create(
        user=owner,
        agent_wallet=wallet,
        symbol=symbol,
        strategy=strategy,
        is_copy_trade=True,
        source_trader=trader,
        quantity=Decimal(1),
        price=Decimal(100),
    )
    position, _ = Position.objects.get_or_create(
        user=owner, agent_wallet=wallet, symbol=symbol, defaults={"exchange": "hyperliquid"}
    )
    at = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    fill = Fill.objects.create(
        exchange="hyperliquid",
        venue_fill_id=f"matrix-{uuid.uuid4().hex[:12]}",
        user=owner,
        agent_wallet=wallet,
        order=order,
        position=position,
        symbol=symbol,
        side="buy",
        price=Decimal(100),
        size=Decimal(1),
        direction="Open Long",
        time_ms=int(at.timestamp() * 1000),
        filled_at=at,
        tx_hash="0x" + "ab" * 32,
    )
    billing.fill_fees_accrue(fill_ids=[fill.pk], now=datetime(2025, 1, 16, tzinfo=UTC))
    billing.statements_close(month=date(2025, 1, 1), now=datetime(2025, 2, 1, 1, tzinfo=UTC))
    fee = FeeLedgerEntry.objects.filter(user=owner).first()
    statement = Statement.objects.get(user=owner)
    assert fee is not None
    return {
        "order": str(order.pk),
        "fill": str(fill.pk),
        "position": str(position.pk),
        "fee": str(fee.pk),
        "statement": str(statement.pk),
    }


def build_world() -> World:
    from billing import services as billing_services
    from copytrade import services as copy_services
    from copytrade.models import CopyDecision
    from copytrade.tests.factories import TraderFactory

    _plans()
    account = Account.create()
    owner = UserFactory.create(account=account, kyc_level=2, password="owner passphrase 1234")
    other = UserFactory.create()
    staff = StaffFactory.create(password="staff passphrase 1234")
    session, owner_tokens = services.jwt_pair_issue(user=owner, method="siwe")
    _, other_tokens = services.jwt_pair_issue(user=other, method="siwe")
    _, staff_tokens = services.jwt_pair_issue(user=staff, method="password")
    raw = {
        scope: services.api_key_create(user=owner, name=f"{scope} key", scopes=[scope])[1]
        for scope in ("read", "trade", "manage")
    }
    revoked, revoked_raw = services.api_key_create(
        user=owner, name="revoked", scopes=["read", "trade", "manage"]
    )
    services.api_key_revoke(user=owner, api_key_id=revoked.pk)
    target_key, _ = services.api_key_create(user=owner, name="target", scopes=["read"])
    approval = services.agent_wallet_generate(user=owner, name="bot")
    connection_row = services.exchange_connection_create(
        user=owner, exchange_name="bybit", api_key="vk_matrix_key_0001", api_secret="vs_matrix_02"
    )
    trader, second_trader, third_trader = (TraderFactory.create() for _ in range(3))
    # The desk plan: room for the strategies the matrix creates.
    billing_services.subscription_subscribe(user=owner, plan_code="desk")
    strategy = copy_services.strategy_create(
        user=owner,
        name="Mine",
        allocations=[
            {"trader": trader.pk, "weight": Decimal("0.5")},
            {"trader": second_trader.pk, "weight": Decimal("0.3")},
        ],
    ).strategy
    decision = CopyDecision.objects.create(
        strategy=strategy, user=owner, source_event_id="matrix", outcome="skipped", coin="ETH"
    )
    ids = {
        "session": str(session.pk),
        "api_key": str(target_key.pk),
        "agent_wallet": str(approval.agent_wallet.pk),
        "connection": str(connection_row.pk),
        "trader": str(trader.pk),
        "second_trader": str(second_trader.pk),
        "third_trader": str(third_trader.pk),
        "strategy": str(strategy.pk),
        "decision": str(decision.pk),
        **_owned_trading_and_billing(owner, strategy, trader),
    }
    headers = {
        "anonymous": {},
        "owner": _bearer(owner_tokens["access"]),
        "other": _bearer(other_tokens["access"]),
        "staff": _bearer(staff_tokens["access"]),
        "expired_jwt": _bearer(_expired(owner_tokens["access"])),
        "revoked_key": _key(revoked_raw),
        **{role: _key(raw[scope]) for role, scope in KEY_SCOPES.items()},
    }
    secrets = [
        *raw.values(),
        revoked_raw,
        owner_tokens["access"],
        owner_tokens["refresh"],
        "vs_matrix_02",
    ]
    return World(
        owner=owner,
        owner_account=account,
        other=other,
        staff=staff,
        ids=ids,
        headers=headers,
        approval_typed_data=approval.typed_data,
        secrets=secrets,
    )


# Which world id a path parameter names, by the path's first segment(s).
PATH_IDS = {
    "/api/v1/agent-wallets/{id}": "agent_wallet",
    "/api/v1/analytics/traders/{trader_id}": "trader",
    "/api/v1/api-keys/{id}": "api_key",
    "/api/v1/auth/sessions/{id}": "session",
    "/api/v1/billing/fees/{id}": "fee",
    "/api/v1/billing/statements/{id}": "statement",
    "/api/v1/decisions/{id}": "decision",
    "/api/v1/exchange-connections/{id}": "connection",
    "/api/v1/fills/{id}": "fill",
    "/api/v1/orders/{id}": "order",
    "/api/v1/positions/{id}": "position",
    "/api/v1/strategies/{id}": "strategy",
    "/api/v1/traders/{id}": "trader",
    "/api/v1/traders/{trader_id}": "trader",
}


def resolve_path(path: str, w: World) -> str:
    out = path
    for prefix, name in sorted(PATH_IDS.items(), key=lambda item: -len(item[0])):
        if out.startswith(prefix):
            param = prefix.rsplit("/", 1)[1]
            out = out.replace(param, w.ids[name], 1)
    # the only nested parameter: a strategy's allocation, by trader
    return out.replace("{trader_id}", w.ids["second_trader"])


# --------------------------------------------------------------------------- the table


def _b(payload: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    return lambda w: payload


EMPTY = _b({})

EXPECTED.update(
    {
        # accounts: sign-in (no credentials read)
        "auth_nonce": signin(200),
        "auth_siwe": signin(400, body=EMPTY),
        "auth_login": signin(400, body=EMPTY),
        "auth_token_refresh": signin(400, body=EMPTY),
        "auth_password_reset": signin(202, body=_b({"email": "nobody@example.com"})),
        # accounts: the caller themself
        "auth_logout": private("manage", 204),
        # Credentials are the person's: no API key may set them (a fix; see test below).
        "auth_password_set": private(
            "manage",
            400,
            keys=False,
            body=_b({"email": "new@example.com", "new_password": "short"}),
        ),
        "auth_sessions_list": private("read", 200),
        "auth_sessions_revoke_all": private("manage", 200),
        "auth_session_revoke": private("manage", 204, owned=True),
        "me_retrieve": private("read", 200),
        "api_keys_list": private("read", 200),
        "api_keys_create": private(
            "manage", 201, body=_b({"name": "new", "scopes": ["manage"]}), stranger=(201,)
        ),
        "api_keys_retrieve": private("read", 200, owned=True),
        "api_keys_revoke": private("manage", 204, owned=True),
        "agent_wallets_list": private("read", 200),
        "agent_wallets_create": private(
            "manage", 201, body=_b({"mode": "generate"}), stranger=(201,)
        ),
        "agent_wallets_retrieve": private("read", 200, owned=True),
        "agent_wallets_update": private("manage", 200, owned=True, body=_b({"name": "renamed"})),
        "agent_wallets_revoke": private("manage", 204, owned=True),
        "agent_wallets_approval_create": private("manage", 200, owned=True, body=EMPTY),
        "agent_wallets_approve": private(
            "manage", 400, owned=True, body=_b({"signature": "0x" + "00" * 65})
        ),
        "exchange_connections_list": private("read", 200),
        "exchange_connections_create": private(
            "manage",
            201,
            body=_b(
                {"exchange_name": "okx", "api_key": "vk_new_000001", "api_secret": "vs_new_02"}
            ),
            stranger=(201,),
        ),
        "exchange_connections_retrieve": private("read", 200, owned=True),
        "exchange_connections_update": private(
            "manage", 200, owned=True, body=_b({"label": "renamed"})
        ),
        "exchange_connections_delete": private("manage", 204, owned=True),
        # analytics: public market data, private copy performance
        "analytics_candles_retrieve": public(400),
        "analytics_funding_retrieve": public(400),
        "analytics_heatmap_retrieve": public(400),
        "analytics_leaderboard_retrieve": public(200),
        "analytics_traders_equity_retrieve": public(200),
        "analytics_traders_kpis_retrieve": public(200),
        "analytics_copy_performance_retrieve": private("read", 200),
        # trading
        "orders_list": private("read", 200),
        "orders_create": private("trade", 400, body=EMPTY, stranger=(400,)),
        "orders_retrieve": private("read", 200, owned=True),
        "orders_cancel_create": private("trade", 200, 202, owned=True, body=EMPTY),
        "fills_list": private("read", 200),
        "fills_retrieve": private("read", 200, owned=True),
        "positions_list": private("read", 200),
        "positions_retrieve": private("read", 200, owned=True),
        # copy trading
        "traders_list": public(200),
        "traders_retrieve": public(200),
        "leaderboard_retrieve": public(200),
        "follows_create": private(
            "trade",
            201,
            body=lambda w: {"trader": w.ids["third_trader"], "copy_pct": "10"},
            stranger=(201,),
        ),
        "traders_follow_create": private(
            "trade", 201, body=_b({"copy_pct": "10"}), stranger=(201,)
        ),
        "strategies_list": private("read", 200),
        "strategies_create": private(
            "trade",
            201,
            body=lambda w: {
                "name": "New",
                "allocations": [{"trader": w.ids["third_trader"], "weight": "1"}],
            },
            stranger=(201,),
        ),
        "strategies_simulate_create": private(
            "read",
            200,
            body=lambda w: {"allocations": [{"trader": w.ids["trader"], "weight": "1"}], "days": 7},
            stranger=(200,),
        ),
        "strategies_retrieve": private("read", 200, owned=True),
        "strategies_partial_update": private(
            "trade", 200, owned=True, body=_b({"name": "Renamed"})
        ),
        "strategies_activate_create": private("trade", 400, owned=True, body=EMPTY),
        "strategies_resume_create": private("trade", 400, owned=True, body=EMPTY),
        "strategies_pause_create": private("trade", 200, owned=True, body=EMPTY),
        "strategies_terminate_create": private("trade", 200, owned=True, body=EMPTY),
        "strategies_rollback_create": private("trade", 200, owned=True, body=_b({"version": 1})),
        "strategies_alignment_retrieve": private("read", 200, owned=True),
        "strategies_allocations_retrieve": private("read", 200, owned=True),
        "strategies_allocations_update": private(
            "trade",
            200,
            owned=True,
            body=lambda w: {
                "allocations": [
                    {"trader": w.ids["trader"], "weight": "0.5"},
                    {"trader": w.ids["third_trader"], "weight": "0.5"},
                ]
            },
        ),
        "strategies_allocation_set": private("trade", 200, owned=True, body=_b({"weight": "0.4"})),
        "strategies_allocation_remove": private("trade", 200, owned=True),
        "strategies_decisions_retrieve": private("read", 200, owned=True),
        "strategies_latency_retrieve": private("read", 200, owned=True),
        "strategies_simulation_retrieve": private("read", 200, owned=True),
        "strategies_versions_retrieve": private("read", 200, owned=True),
        "decisions_list": private("read", 200),
        "decisions_retrieve": private("read", 200, owned=True),
        # billing
        "billing_fees_list": private("read", 200),
        "billing_fees_retrieve": private("read", 200, owned=True),
        "billing_plans_list": private("read", 200),
        "billing_statements_list": private("read", 200),
        "billing_statements_retrieve": private("read", 200, owned=True),
        "billing_statements_csv_retrieve": private("read", 200, owned=True),
        "billing_statements_pdf_retrieve": private("read", 200, owned=True),
        "billing_subscription_retrieve": private("read", 200),
        "billing_subscription_create": private(
            "manage", 200, body=_b({"plan": "pro"}), stranger=(201,)
        ),
        "billing_subscription_cancel_create": private("manage", 200, stranger=(400,)),
        "billing_summary_retrieve": private("read", 200),
    }
)


def expected_for(op: Op, role: str, *, owned_by_role: bool = False) -> frozenset[int]:
    """The statuses ``role`` may get for ``op``."""
    if op.kind == "signin":
        return op.anon_ok
    if role == "anonymous":
        return op.anon_ok if op.kind == "public" else _ok(401)
    if role in ("expired_jwt", "revoked_key"):
        return _ok(401)
    if op.kind == "public":
        return op.ok
    if role in KEY_SCOPES:
        return op.ok if op.keys and KEY_SCOPES[role] == op.scope else _ok(403)
    if role in ("other", "staff"):
        if op.owned:
            return _ok(404)
        return op.stranger_ok or op.ok
    return op.ok


# --------------------------------------------------------------------------- schema


def schema_operations() -> list[tuple[str, str, str]]:
    """(operation id, method, path) of every operation the schema documents."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(api_version="v1").get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                found.append((operation["operationId"], method, path))
    return sorted(found)


OPERATIONS = schema_operations()


# --------------------------------------------------------------------------- database state


def _app_tables() -> list[str]:
    """Every table of Tandem's apps, and the framework's tables that hold credentials."""
    labels = ("accounts", "trading", "copytrade", "billing", "analytics", "axes",
              "token_blacklist", "sessions", "otp_totp")  # fmt: skip
    tables = set()
    for label in labels:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            if model._meta.managed and not model._meta.proxy:
                tables.add(model._meta.db_table)
    return sorted(tables)


# Bookkeeping a refused request may still do: when a key or token was last used.
VOLATILE = ("last_used_at", "last_used_ip", "last_seen_at", "ip_address")


def snapshot() -> dict[str, tuple[int, str]]:
    """Row count and a digest of the content of every table of Tandem's apps."""
    parts = []
    for table in _app_tables():
        drop = "ARRAY[" + ",".join(f"'{c}'" for c in VOLATILE) + "]::text[]"
        parts.append(
            f"SELECT '{table}', count(*), "
            f"md5(coalesce(string_agg((to_jsonb(t) - {drop})::text, ',' "
            f"ORDER BY (to_jsonb(t) - {drop})::text), '')) FROM \"{table}\" t"
        )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts))
        return {name: (count, digest) for name, count, digest in cursor.fetchall()}


# --------------------------------------------------------------------------- admin and streams
# (Defined before the API matrix: these need committed rows, and run before the module's shared
# world opens its transaction.)

ADMIN_PASSWORD = "correct horse battery staple"


def _admin_pages() -> list[str]:
    from django.contrib import admin

    pages = ["/admin/"]
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [base, base + "add/"]
    return pages


def test_admin_refuses_anonymous_customers_and_staff_without_a_second_factor(
    clickhouse_db: str,
) -> None:
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    customer = UserFactory.create(password=ADMIN_PASSWORD)
    staff = StaffFactory.create(password=ADMIN_PASSWORD, is_superuser=True)
    verified = StaffFactory.create(password=ADMIN_PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=verified, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=staff, name="unfinished", confirmed=False)
    clients = {"anonymous": Client(), "customer": Client(), "staff_no_2fa": Client()}
    clients["customer"].force_login(customer)
    clients["staff_no_2fa"].force_login(staff)
    # Staff without a confirmed device cannot complete the admin sign-in either.
    refused = clients["staff_no_2fa"].post(
        "/admin/login/", {"username": staff.email, "password": ADMIN_PASSWORD, "otp_token": ""}
    )
    assert refused.status_code == 200
    good = Client()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    signed_in = good.post(
        "/admin/login/",
        {"username": verified.email, "password": ADMIN_PASSWORD, "otp_token": totp.token()},
    )
    assert signed_in.status_code == 302, signed_in.content[:300]
    pages = _admin_pages()
    assert len(pages) > 20
    wrong = []
    for page in pages:
        for role, client in clients.items():
            response = client.get(page)
            if response.status_code != 302 or not response["Location"].startswith("/admin/login/"):
                wrong.append(f"{role} {page}: {response.status_code}")
        status = good.get(page).status_code
        if status not in (200, 403):  # 403: a read-only model's add page
            wrong.append(f"verified staff {page}: {status}")
        if page.endswith("/add/") is False and status != 200:
            wrong.append(f"verified staff {page}: {status}")
    assert not wrong, wrong


WS_ROLES = ("anonymous", "expired_jwt", "revoked_key", "key_trade", "key_manage", "key_read",
            "other", "staff", "owner")  # fmt: skip


def _ws_world() -> dict[str, Any]:
    owner = UserFactory.create()
    other = UserFactory.create()
    staff = StaffFactory.create()
    _, owner_tokens = services.jwt_pair_issue(user=owner, method="siwe")
    headers: dict[str, list[tuple[bytes, bytes]]] = {"anonymous": []}
    for role, user in (("owner", owner), ("other", other), ("staff", staff)):
        access = owner_tokens["access"] if user is owner else None
        access = access or services.jwt_pair_issue(user=user, method="siwe")[1]["access"]
        headers[role] = [(b"authorization", f"Bearer {access}".encode())]
    headers["expired_jwt"] = [
        (b"authorization", f"Bearer {_expired(owner_tokens['access'])}".encode())
    ]
    for role, scope in KEY_SCOPES.items():
        raw = services.api_key_create(user=owner, name=role, scopes=[scope])[1]
        headers[role] = [(b"x-api-key", raw.encode())]
    revoked, raw = services.api_key_create(user=owner, name="gone", scopes=["read"])
    services.api_key_revoke(user=owner, api_key_id=revoked.pk)
    headers["revoked_key"] = [(b"authorization", f"Api-Key {raw}".encode())]
    return {"owner": owner, "other": other, "headers": headers}


@pytest.mark.django_db(transaction=True)
def test_websocket_streams_by_caller() -> None:
    """Connect: anonymous, expired and revoked credentials 4401, a key without ``read`` 4403.
    The account stream: everyone signed in gets their own, only the owner (and the owner's read
    key) receive the owner's events; naming another account is refused."""
    from config import streams
    from config.asgi import application

    w = _ws_world()
    expected_close = {"anonymous": 4401, "expired_jwt": 4401, "revoked_key": 4401,
                      "key_trade": 4403, "key_manage": 4403}  # fmt: skip

    async def scenario() -> list[str]:
        wrong: list[str] = []
        open_sockets: dict[str, WebsocketCommunicator] = {}
        for role in WS_ROLES:
            socket = WebsocketCommunicator(application, "/ws/v1/", headers=w["headers"][role])
            connected, code = await socket.connect(timeout=10)
            if role in expected_close:
                if connected or code != expected_close[role]:
                    wrong.append(f"{role}: connected={connected} code={code}")
                continue
            if not connected:
                wrong.append(f"{role}: refused ({code})")
                continue
            open_sockets[role] = socket
            foreign = f"account.{w['other'].pk if role == 'owner' else w['owner'].pk}"
            await socket.send_to(text_data=json.dumps({"op": "subscribe", "stream": foreign}))
            answer = json.loads(await socket.receive_from(timeout=10))
            if answer.get("type") != "error":
                wrong.append(f"{role}: subscribed to {foreign}: {answer}")
            await socket.send_to(text_data=json.dumps({"op": "subscribe", "stream": "account"}))
            ack = json.loads(await socket.receive_from(timeout=10))
            snapshot = json.loads(await socket.receive_from(timeout=10))
            if ack.get("type") != "subscribed" or snapshot.get("type") != "snapshot":
                wrong.append(f"{role}: {ack} {snapshot}")
        event = await database_sync_to_async(streams.publish_account)(
            w["owner"].pk, "order", {"id": "matrix-order"}
        )
        for role, socket in open_sockets.items():
            if role in ("owner", "key_read"):
                got = json.loads(await socket.receive_from(timeout=10))
                if got != event:
                    wrong.append(f"{role}: got {got}")
            elif not await socket.receive_nothing(timeout=0.3):
                wrong.append(f"{role}: received the owner's event")
            await socket.disconnect()
        return wrong

    wrong = async_to_sync(scenario)()
    assert not wrong, wrong


# --------------------------------------------------------------------------- key escalation


def _key_client(raw: str, ip: str = "10.1.2.3") -> APIClient:
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def test_an_api_key_cannot_mint_a_stronger_key() -> None:
    """A manage key locked to 10.0.0.0/8 and expiring in a week used to create an unrestricted
    read+trade+manage key that never expires."""
    from accounts.models import ApiKey

    owner = UserFactory.create()
    week = timezone.now() + timedelta(days=7)
    _, raw = services.api_key_create(
        user=owner, name="ops", scopes=["manage", "read"], allowed_ips=["10.0.0.0/8"],
        expires_at=week,
    )  # fmt: skip
    client = _key_client(raw)
    count = ApiKey.objects.count()
    inside = {"allowed_ips": ["10.1.0.0/16"], "expires_at": week.isoformat()}
    for refused, field_name in (
        ({"scopes": ["read", "trade", "manage"], **inside}, "scopes"),
        ({"scopes": ["read"], "expires_at": week.isoformat()}, "allowed_ips"),
        ({"scopes": ["read"], **inside, "allowed_ips": ["192.168.0.0/16"]}, "allowed_ips"),
        ({"scopes": ["read"], "allowed_ips": ["10.1.0.0/16"]}, "expires_at"),
    ):
        response = client.post("/api/v1/api-keys", {"name": "x", **refused}, format="json")
        assert response.status_code == 403, (refused, response.content)
        assert response.json()["code"] == "insufficient_scope"
        assert field_name in response.json()["errors"], response.json()
    assert ApiKey.objects.count() == count
    within = client.post(
        "/api/v1/api-keys", {"name": "ok", "scopes": ["read"], **inside}, format="json"
    )
    assert within.status_code == 201, within.content
    # A person (JWT) is not limited this way.
    access = services.jwt_pair_issue(user=owner, method="siwe")[1]["access"]
    person = APIClient()
    person.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    full = {"name": "all", "scopes": ["read", "trade", "manage"]}
    assert person.post("/api/v1/api-keys", full, format="json").status_code == 201


def test_an_api_key_cannot_set_the_accounts_sign_in_credentials() -> None:
    """A manage key used to add an email and password to a wallet-only account, after which the
    key holder could sign in with them: the whole account, from anywhere, every scope."""
    owner = UserFactory.create(email=None)
    _, raw = services.api_key_create(user=owner, name="ops", scopes=["manage"])
    taken = {"email": "attacker@example.com", "new_password": "attacker passphrase 123"}
    response = _key_client(raw).post("/api/v1/auth/password", taken, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "api_key_not_allowed"
    owner.refresh_from_db()
    assert owner.email is None
    assert not owner.has_usable_password()
    login = APIClient().post(
        "/api/v1/auth/login",
        {"email": taken["email"], "password": taken["new_password"]},
        format="json",
    )
    assert login.status_code in (400, 401)


# --------------------------------------------------------------------------- the matrix


@pytest.fixture
def open_limits(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr("billing.api.throttling.plan_rate_per_minute", lambda user: None)
    for pattern in ("throttle_*", "accounts:session-touch:*"):
        cache.delete_pattern(pattern)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def shared_world(
    django_db_setup: None, django_db_blocker: Any, clickhouse_db: str
) -> Iterator[World]:
    """One world for the module, built in a transaction rolled back at its end (each test's own
    transaction is a savepoint inside it)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared_world: World, open_limits: None, db: None) -> World:
    return shared_world


def call(role: str, method: str, path: str, op: Op, w: World) -> Any:
    client = APIClient()
    body = op.body(w)
    kwargs: dict[str, Any] = {**w.headers[role], "HTTP_ACCEPT": "*/*"}
    if body is not None:
        return getattr(client, method)(path, body, format="json", **kwargs)
    return getattr(client, method)(path, **kwargs)


@contextmanager
def rolled_back() -> Iterator[None]:
    """A savepoint undone afterwards: every cell starts from the same world."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    ("operation_id", "method", "path"), OPERATIONS, ids=[op[0] for op in OPERATIONS]
)
def test_every_caller_of_every_operation(
    operation_id: str, method: str, path: str, world: World
) -> None:
    op = EXPECTED[operation_id]
    url = resolve_path(path, world)
    before = snapshot()
    wrong: list[str] = []
    for role in ROLES:
        expected = expected_for(op, role)
        with rolled_back():
            response = call(role, method, url, op, world)
            status = response.status_code
            raw = (
                b"".join(response.streaming_content) if response.streaming else response.content
            ).decode(errors="replace")
            text = raw[:300]
            if status not in expected or status >= 500:
                wrong.append(f"{role}: {status}, expected {sorted(expected)}: {text}")
                continue
            if status in (401, 403, 404):
                body = response.json()
                if not response["Content-Type"].startswith("application/problem+json"):
                    wrong.append(f"{role}: {status} is not a problem document")
                scoped = role in KEY_SCOPES and KEY_SCOPES[role] == op.scope
                code = "api_key_not_allowed" if scoped and not op.keys else "insufficient_scope"
                if status == 403 and role in KEY_SCOPES and body.get("code") != code:
                    wrong.append(f"{role}: 403 {body}")
                after = snapshot()
                if after != before:  # a refused request writes nothing
                    changed = sorted(t for t in after if after[t] != before.get(t))
                    wrong.append(f"{role}: refused with {status} but wrote {changed}")
            # No answer to anyone shows a key, a token or an exchange secret of the owner.
            shown = [secret[:12] for secret in world.secrets if secret in raw]
            if shown:
                wrong.append(f"{role}: secrets in the answer: {shown}")
            refused = status in (401, 403) or role in ("other", "staff")
            if refused and op.owned:
                leaked = [v for v in world.ids.values() if v in raw]
                if leaked:
                    wrong.append(f"{role}: the owner's ids in the answer: {leaked}")
    assert snapshot() == before
    assert not wrong, "\n".join([f"{method.upper()} {path}", *wrong])


def test_the_matrix_has_an_expectation_for_every_operation_of_the_schema() -> None:
    """A new endpoint fails here until its row is added to EXPECTED (and a removed one until
    its row goes), so the matrix keeps covering the whole API."""
    documented = {operation_id for operation_id, _, _ in OPERATIONS}
    assert len(documented) == len(OPERATIONS)  # operation ids are unique
    assert documented - set(EXPECTED) == set(), "operations without a row in EXPECTED"
    assert set(EXPECTED) - documented == set(), "rows in EXPECTED for operations that are gone"
    placeholder = World(
        owner=None,  # type: ignore[arg-type]
        owner_account=None,  # type: ignore[arg-type]
        other=None,  # type: ignore[arg-type]
        staff=None,  # type: ignore[arg-type]
        ids={name: f"<{name}>" for name in {*PATH_IDS.values(), "second_trader"}},
        headers={},
        approval_typed_data={},
        secrets=[],
    )
    for operation_id, _, path in OPERATIONS:
        assert "{" not in resolve_path(path, placeholder), (operation_id, path)
        op = EXPECTED[operation_id]
        # Every private object path names the owner's object (404 for others), except the
        # public traders one follows.
        if "{" in path and op.kind == "private" and not path.startswith("/api/v1/traders/"):
            assert op.owned, operation_id
    cells = len(OPERATIONS) * len(ROLES)
    assert cells >= 79 * 9
