"""No API secret, agent private key, password, JWT or session id leaves the server where it
should not: not in the logs (every record at DEBUG, as raised), not in error pages, not in the
admin's pages, not in API answers (except the one answer that creates an API key, which shows it
once), not in the audit log, and not in the arguments of any Celery task sent on the way.

The flows: password sign-in (API, JWT) and portal sign-in (session cookie), a failed sign-in,
API-key creation, agent-wallet generation, exchange-connection creation, a validation error and a
server error carrying secrets in the request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from celery.app.task import Task
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from eth_account import Account
from rest_framework.test import APIClient

from accounts import crypto, services
from accounts.models import AgentWallet, AuditLog, User
from accounts.tests.factories import AgentWalletFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a very secret passphrase 8472"
EXCHANGE_KEY = "vk_leakcheck_key_5521"
EXCHANGE_SECRET = "vs_leakcheck_secret_9913"
EXCHANGE_PASSPHRASE = "pp_leakcheck_3377"


@dataclass
class Sent:
    """Everything the flows produced that a leak could show up in."""

    secrets: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, str]] = field(default_factory=list)  # (what, body)
    tasks: list[tuple[str, Any, Any]] = field(default_factory=list)

    def secret(self, name: str, value: str) -> str:
        assert value, name
        self.secrets[name] = value
        return value


@pytest.fixture
def tasks_sent() -> Iterator[list[tuple[str, Any, Any]]]:
    """Record the name and arguments of every Celery task sent (then send it as usual)."""
    sent: list[tuple[str, Any, Any]] = []
    original = Task.apply_async

    def record(self: Task, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        sent.append((self.name, args, kwargs))
        return original(self, args, kwargs, *rest, **options)

    with mock.patch.object(Task, "apply_async", record):
        yield sent


@pytest.fixture
def redis_prefix(settings: Any) -> Iterator[str]:
    """The paper venue's and market data's Redis keys under a prefix of this test, deleted after."""
    prefix = f"test-leak-{uuid.uuid4().hex[:12]}:"
    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "MARKET_DATA_VENUE": "paper",
        "TICK_LISTENERS": [],
        "PAPER_STARTING_BALANCE": "1000000",
    }
    yield prefix
    from trading.stores import market_redis, paper_redis

    for client in (market_redis(), paper_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def body(response: Any) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return bytes(raw).decode(errors="replace")


def _flows(caplog: pytest.LogCaptureFixture, sent: Sent) -> User:
    user = UserFactory.create(email="leak@example.com", password=PASSWORD, kyc_level=2)
    sent.secret("password", PASSWORD)
    api = APIClient()

    # A failed sign-in, then a good one (JWT pair).
    wrong = api.post(
        "/api/v1/auth/login", {"email": user.email, "password": PASSWORD + "x"}, format="json"
    )
    assert wrong.status_code in (400, 401), wrong.content
    sent.answers.append(("failed sign-in", body(wrong)))
    signed_in = api.post(
        "/api/v1/auth/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200, signed_in.content
    tokens = signed_in.json()["tokens"] if "tokens" in signed_in.json() else signed_in.json()
    access = sent.secret("jwt access", tokens["access"])
    sent.secret("jwt refresh", tokens["refresh"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    # Portal sign-in: the session id.
    portal = Client()
    page = portal.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert page.status_code == 302, page.content[:500]
    sent.secret("session id", portal.cookies["sessionid"].value)
    sent.answers.append(("portal settings", body(portal.get("/accounts/settings/"))))

    # An API key: shown once, in its creation answer only.
    created = api.post("/api/v1/api-keys", {"name": "bot", "scopes": ["read"]}, format="json")
    assert created.status_code == 201, created.content
    raw_key = created.json()["key"]
    sent.secret("api key", raw_key)
    sent.secret("api key secret part", raw_key.split(".", 1)[1])
    key_id = created.json()["id"]
    sent.answers.append(("api key list", body(api.get("/api/v1/api-keys"))))
    sent.answers.append(("api key detail", body(api.get(f"/api/v1/api-keys/{key_id}"))))
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    sent.answers.append(("me by key", body(key_client.get("/api/v1/me"))))

    # An agent wallet generated by the server: its private key never leaves it.
    generated = api.post("/api/v1/agent-wallets", {"mode": "generate"}, format="json")
    assert generated.status_code == 201, generated.content
    sent.answers.append(("agent wallet created", body(generated)))
    wallet = AgentWallet.objects.get(pk=generated.json()["id"])
    assert wallet.encrypted_private_key
    private_key = crypto.decrypt(wallet.encrypted_private_key).decode()
    sent.secret("agent private key", private_key)
    sent.secret("agent private key (bare)", private_key.removeprefix("0x"))
    sent.answers.append(("agent wallets", body(api.get("/api/v1/agent-wallets"))))
    sent.answers.append(("agent wallet", body(api.get(f"/api/v1/agent-wallets/{wallet.pk}"))))

    # An agent wallet registered with its key: accepted, and refused when the key does not
    # match the address (the refusal must not echo the key).
    registered = Account.create()
    own_key = sent.secret("registered private key", "0x" + bytes(registered.key).hex())
    mismatch = api.post(
        "/api/v1/agent-wallets",
        {"mode": "register", "address": Account.create().address, "private_key": own_key},
        format="json",
    )
    assert mismatch.status_code == 400, mismatch.content
    sent.answers.append(("agent wallet refused", body(mismatch)))
    accepted = api.post(
        "/api/v1/agent-wallets",
        {"mode": "register", "address": registered.address, "private_key": own_key},
        format="json",
    )
    assert accepted.status_code == 201, accepted.content
    sent.answers.append(("agent wallet registered", body(accepted)))

    # The portal's pages of the same things.
    for section in ("api-keys", "agent-wallets", "connections", "sessions"):
        page_response = portal.get(f"/accounts/settings/{section}/")
        assert page_response.status_code == 200, section
        sent.answers.append((f"portal {section}", body(page_response)))

    # An exchange connection: secret, passphrase and the full key stay inside.
    connection = api.post(
        "/api/v1/exchange-connections",
        {
            "exchange_name": "okx",
            "api_key": EXCHANGE_KEY,
            "api_secret": EXCHANGE_SECRET,
            "passphrase": EXCHANGE_PASSPHRASE,
        },
        format="json",
    )
    assert connection.status_code == 201, connection.content
    sent.secret("exchange api key", EXCHANGE_KEY)
    sent.secret("exchange api secret", EXCHANGE_SECRET)
    sent.secret("exchange passphrase", EXCHANGE_PASSPHRASE)
    sent.answers.append(("connection created", body(connection)))
    sent.answers.append(("connections", body(api.get("/api/v1/exchange-connections"))))
    sent.answers.append(("me", body(api.get("/api/v1/me"))))
    sent.answers.append(("sessions", body(api.get("/api/v1/auth/sessions"))))

    # Error pages: a refused body, and a server error, both carrying the secrets.
    refused = api.post(
        "/api/v1/exchange-connections",
        {"exchange_name": "no such venue!", "api_key": EXCHANGE_KEY, "api_secret": EXCHANGE_SECRET},
        format="json",
    )
    assert refused.status_code == 400, refused.content
    sent.answers.append(("validation error", body(refused)))
    failing = APIClient(raise_request_exception=False)
    failing.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    with mock.patch(
        "accounts.services.exchange_connection_create", side_effect=RuntimeError("venue down")
    ):
        crashed = failing.post(
            "/api/v1/exchange-connections",
            {"exchange_name": "okx", "api_key": EXCHANGE_KEY, "api_secret": EXCHANGE_SECRET},
            format="json",
        )
    assert crashed.status_code == 500
    sent.answers.append(("server error", body(crashed)))

    # An order through the API with the owner's API key: the trading outbox sends its task.
    from trading.marketdata import quote_tick, ticks_publish
    from trading.services import symbols_sync

    symbols_sync(venue="paper")
    ticks_publish(
        [quote_tick("paper", "ETH", Decimal(2500), spread_bps=Decimal(2), size=Decimal(10**6))]
    )
    paper_wallet = AgentWalletFactory.create(user=user, exchange="paper", max_leverage=20)
    trader = APIClient()
    trade_key = services.api_key_create(user=user, name="trader", scopes=["read", "trade"])[1]
    sent.secret("trade key", trade_key)
    trader.credentials(HTTP_AUTHORIZATION=f"Api-Key {trade_key}")
    order = trader.post(
        "/api/v1/orders/",
        {"symbol": "ETH", "side": "buy", "quantity": "0.1", "agent_wallet": str(paper_wallet.pk)},
        format="json",
    )
    assert order.status_code == 201, order.content
    sent.answers.append(("order", body(order)))
    return user


def _admin_pages() -> list[tuple[str, str]]:
    staff = StaffFactory.create(password=PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    admin = Client()
    signed_in = admin.post(
        "/admin/login/",
        {"username": staff.email, "password": PASSWORD, "otp_token": totp.token()},
    )
    assert signed_in.status_code == 302, signed_in.content[:300]
    # Every model of the admin: its list, and the change page of (up to 5 of) its rows.
    from django.contrib import admin as django_admin

    pages = []
    for model in django_admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages.append(base)
        if model._meta.managed:
            pks = model._default_manager.order_by("-pk").values_list("pk", flat=True)[:5]
            pages += [f"{base}{pk}/change/" for pk in pks]
    answers = []
    for page in pages:
        response = admin.get(page)
        assert response.status_code in (200, 302), page  # 302: a model without change pages
        answers.append((f"admin {page}", body(response)))
    return answers


def _log_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), record.exc_text or "", str(record.args or "")]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    extra = {k: v for k, v in record.__dict__.items() if k not in logging.LogRecord.__dict__}
    parts.append(repr({k: v for k, v in extra.items() if k not in ("request", "exc_info")}))
    return "\n".join(parts)


def test_no_secret_leaks_from_the_sign_in_key_wallet_and_connection_flows(
    caplog: pytest.LogCaptureFixture,
    tasks_sent: list[tuple[str, Any, Any]],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    redis_prefix: str,
    clickhouse_db: str,
) -> None:
    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    caplog.set_level(logging.DEBUG)
    sent = Sent()
    with django_capture_on_commit_callbacks(execute=True):
        _flows(caplog, sent)
    sent.answers += _admin_pages()
    assert len(sent.secrets) >= 10

    places: list[tuple[str, str]] = []
    # The one answer that shows the API key is its creation: every other one is checked.
    places += sent.answers
    # factory_boy (the test's own user factory) logs what it builds; it is not the app.
    records = [r for r in caplog.records if not r.name.startswith("factory")]
    places += [(f"log {r.name}:{r.levelname}", _log_text(r)) for r in records]
    # The capture works: the flows logged, and sent the order's and the fees' tasks.
    assert {"trading.tasks.order_submit_task", "billing.tasks.fill_fees_accrue_task"} <= {
        name for name, _, _ in tasks_sent
    }
    places += [(f"task {name}", repr((args, kwargs))) for name, args, kwargs in tasks_sent]
    places += [
        (f"audit {row.action}", repr((row.old_values, row.new_values, row.error_message)))
        for row in AuditLog.objects.all()
    ]
    assert caplog.records, "the flows logged nothing: the capture is not working"
    assert any(where.startswith("admin") for where, _ in places)
    leaks = [
        f"{name} in {where}"
        for where, text in places
        for name, value in sent.secrets.items()
        if value in text
    ]
    assert not leaks, leaks


def test_the_key_is_shown_in_its_creation_answer_and_the_capture_finds_a_leak(
    caplog: pytest.LogCaptureFixture, tasks_sent: list[tuple[str, Any, Any]]
) -> None:
    """The checks above can fail: the creation answer holds the key, and a secret logged or
    sent to a task is found."""
    from accounts.tasks import __name__ as tasks_module  # noqa: F401  (tasks are registered)
    from config.celery import app

    user = UserFactory.create()
    api = APIClient()
    api.force_authenticate(user)
    created = api.post("/api/v1/api-keys", {"name": "bot", "scopes": ["read"]}, format="json")
    raw_key = created.json()["key"]
    assert raw_key.split(".", 1)[1] in body(created)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("tandem.test").debug("oops %s", raw_key)
    assert any(raw_key in _log_text(r) for r in caplog.records)

    @app.task(name="tandem.test.echo")
    def echo(value: str) -> str:
        return value

    echo.delay(raw_key)
    assert ("tandem.test.echo", (raw_key,), {}) in [
        (name, tuple(args or ()), kwargs or {}) for name, args, kwargs in tasks_sent
    ]
