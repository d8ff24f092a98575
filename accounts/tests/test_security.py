"""Cross-cutting security: audit log, lockout, throttles, suspension, KYC gates, scope
permission on every API view, and a clean ``check --deploy``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.db import DatabaseError, connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from eth_account import Account
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from accounts import policy, selectors, services
from accounts.api.permissions import ScopePermission
from accounts.models import AuditLog, AuthSession, KycLevel, User, UserStatus
from accounts.tests.conftest import bearer, personal_sign, siwe_text
from accounts.tests.factories import UserFactory
from copytrade.models import CopyStrategy, StrategyStatus

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase 42"


# --------------------------------------------------------------------------- audit log


@pytest.mark.django_db
def test_audit_log_rows_cannot_be_updated_or_deleted(user: User) -> None:
    services.audit_log_record(action="probe", actor=user, immediate=True)
    row = AuditLog.objects.get(action="probe")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(action="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).delete()
    with transaction.atomic(), connection.cursor() as cursor:
        # Test connections may TRUNCATE (to empty tables between transactional tests);
        # production connections never set that flag, so switch it off here.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL tandem.allow_truncate = 'off'")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("TRUNCATE audit_logs")
    assert AuditLog.objects.get(pk=row.pk).action == "probe"


@pytest.mark.django_db
def test_audit_values_are_masked(user: User) -> None:
    services.audit_log_record(
        action="probe",
        actor=user,
        new_values={"api_secret": "vs_plain", "note": "key tdm_abcdefgh.0123456789abcdefXYZ"},
        immediate=True,
    )
    row = AuditLog.objects.get(action="probe")
    assert row.new_values == {"api_secret": "***", "note": "key ***"}


# --------------------------------------------------------------------------- lockout


@pytest.fixture
def customer_with_password(db: Any) -> User:
    user: User = UserFactory.create(email="carol@example.com", password=PASSWORD)
    return user


def test_api_password_login_locks_out_after_n_failures(
    customer_with_password: User, no_throttle: None
) -> None:
    client = APIClient()
    url = reverse("v1:accounts-api:auth-login")
    limit = django_settings.AXES_FAILURE_LIMIT
    ok = client.post(url, {"email": "carol@example.com", "password": PASSWORD}, format="json")
    assert ok.status_code == 200
    assert "access" in ok.json()
    for attempt in range(1, limit):
        wrong = client.post(url, {"email": "carol@example.com", "password": "nope"}, format="json")
        assert wrong.status_code == 401, attempt
        assert wrong.json()["code"] == "invalid_credentials"
    last = client.post(url, {"email": "carol@example.com", "password": "nope"}, format="json")
    assert last.status_code == 429
    right = client.post(url, {"email": "carol@example.com", "password": PASSWORD}, format="json")
    assert right.status_code == 429
    assert right.json()["code"] == "locked_out"
    assert int(right["Retry-After"]) > 0
    assert AuditLog.objects.filter(action="sign_in", status="failure").count() >= limit


def test_portal_password_login_locks_out(customer_with_password: User, client: Any) -> None:
    url = reverse("accounts:login")
    limit = django_settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = client.post(url, {"username": "carol@example.com", "password": "nope"})
        assert response.status_code == 200  # the form again, with an error
    locked = client.post(url, {"username": "carol@example.com", "password": "nope"})
    assert locked.status_code == 429
    assert b"Too many failed attempts" in locked.content
    still = client.post(url, {"username": "CAROL@example.com", "password": PASSWORD})
    assert still.status_code == 429


def test_portal_password_login_works_and_is_audited(
    customer_with_password: User, client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:login"), {"username": "Carol@Example.com", "password": PASSWORD}
        )
    assert response.status_code == 302
    row = AuthSession.objects.get(user=customer_with_password)
    assert row.method == "password"
    audit = AuditLog.objects.get(action="sign_in", status="success")
    assert audit.metadata["method"] == "password"


def test_admin_login_locks_out(staff_user: User, client: Any) -> None:
    limit = django_settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        client.post("/admin/login/", {"username": staff_user.email, "password": "nope"})
    locked = client.post("/admin/login/", {"username": staff_user.email, "password": "nope"})
    assert locked.status_code == 429


# --------------------------------------------------------------------------- throttles


def _rates(settings: Any, **rates: str | None) -> None:
    merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}


@pytest.mark.django_db
def test_sign_in_endpoints_are_throttled_per_ip_with_retry_after(settings: Any) -> None:
    _rates(settings, auth="2/min")
    client = APIClient()
    url = reverse("v1:accounts-api:auth-nonce")
    assert [client.get(url).status_code for _ in range(2)] == [200, 200]
    refused = client.get(url)
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_users_and_api_keys_have_separate_budgets(user: User, settings: Any) -> None:
    _rates(settings, user="2/min", api_key="2/min")
    _, token_pair = services.jwt_pair_issue(user=user, method="siwe")
    _, key_a = services.api_key_create(user=user, name="a", scopes=["read"])
    _, key_b = services.api_key_create(user=user, name="b", scopes=["read"])
    me = reverse("v1:accounts-api:me")

    person = bearer(APIClient(), token_pair["access"])
    assert [person.get(me).status_code for _ in range(3)] == [200, 200, 429]

    first = APIClient(HTTP_X_API_KEY=key_a)
    assert [first.get(me).status_code for _ in range(3)] == [200, 200, 429]
    assert "Retry-After" in first.get(me)
    second = APIClient(HTTP_X_API_KEY=key_b)
    assert second.get(me).status_code == 200  # its own budget


# --------------------------------------------------------------------------- suspension


@pytest.mark.django_db
def test_suspend_pauses_strategies_ends_sessions_and_blocks_sign_in(
    api_client: APIClient,
    staff_user: User,
    new_nonce: Callable[[], str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    account = Account.create()
    user: User = UserFactory.create(account=account, email="dave@example.com", password=PASSWORD)
    running = [
        CopyStrategy.objects.create(user=user, name=f"s{i}", status=StrategyStatus.ACTIVE)
        for i in range(2)
    ]
    stopped = CopyStrategy.objects.create(user=user, name="t", status=StrategyStatus.TERMINATED)
    _, tokens = services.jwt_pair_issue(user=user, method="siwe")

    with django_capture_on_commit_callbacks(execute=True):
        services.user_suspend(user=user, actor=staff_user, reason="chargeback")
    user.refresh_from_db()
    assert user.status == UserStatus.SUSPENDED
    assert not user.is_active
    for strategy in running:
        strategy.refresh_from_db()
        assert strategy.status == StrategyStatus.PAUSED
    stopped.refresh_from_db()
    assert stopped.status == StrategyStatus.TERMINATED
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert (
        bearer(APIClient(), tokens["access"]).get(reverse("v1:accounts-api:me")).status_code == 401
    )
    audit = AuditLog.objects.get(action="user_suspend")
    assert audit.old_values == {"status": "active"}
    assert audit.new_values == {
        "status": "suspended",
        "reason": "chargeback",
        "strategies_paused": 2,
        "devices_signed_out": 1,
    }
    assert audit.actor == staff_user
    assert audit.actor_type == "admin"

    text = siwe_text(account, new_nonce())
    refused = api_client.post(
        reverse("v1:accounts-api:auth-siwe"),
        {"message": text, "signature": personal_sign(account, text)},
        format="json",
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_inactive"
    password = api_client.post(
        reverse("v1:accounts-api:auth-login"),
        {"email": "dave@example.com", "password": PASSWORD},
        format="json",
    )
    assert password.status_code == 401
    assert selectors.user_trading_block_reason(user=user) == "account is suspended"

    services.user_reactivate(user=user, actor=staff_user)
    user.refresh_from_db()
    assert user.is_active
    running[0].refresh_from_db()
    assert running[0].status == StrategyStatus.PAUSED  # restarted deliberately, not by magic


# --------------------------------------------------------------------------- KYC


@pytest.mark.django_db
def test_kyc_table(settings: Any) -> None:
    settings.TANDEM = {**settings.TANDEM, "KYC_LEVEL1_MAX_EQUITY_USD": "10000"}
    level0 = UserFactory.create(kyc_level=KycLevel.UNVERIFIED)
    level1 = UserFactory.create(kyc_level=KycLevel.BASIC)
    level2 = UserFactory.create(kyc_level=KycLevel.FULL)
    assert selectors.kyc_equity_cap(level0) == Decimal(0)
    assert selectors.kyc_equity_cap(level1) == Decimal("10000")
    assert selectors.kyc_equity_cap(level2) is None
    assert selectors.user_trading_block_reason(user=level0) is not None
    assert selectors.user_trading_block_reason(user=level1) is None
    assert policy.copy_block_reason(level0, equity_under_copy_usd=Decimal(1)) is not None
    assert policy.copy_block_reason(level1, equity_under_copy_usd=Decimal("10000")) is None
    assert "at most 10000" in str(
        policy.copy_block_reason(level1, equity_under_copy_usd=Decimal("10000.01"))
    )
    assert policy.copy_block_reason(level2, equity_under_copy_usd=Decimal("1e9")) is None


@pytest.mark.django_db
def test_kyc_change_is_audited_and_dropping_to_zero_pauses_copying(
    user: User, staff_user: User, django_capture_on_commit_callbacks: Any
) -> None:
    strategy = CopyStrategy.objects.create(user=user, name="s", status=StrategyStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        services.user_kyc_level_set(user=user, level=KycLevel.FULL, actor=staff_user)
        services.user_kyc_level_set(user=user, level=KycLevel.UNVERIFIED, actor=staff_user)
    rows = list(AuditLog.objects.filter(action="user_kyc_change").order_by("created_at"))
    assert [(r.old_values, r.new_values) for r in rows] == [
        ({"kyc_level": 1}, {"kyc_level": 2, "strategies_paused": 0}),
        ({"kyc_level": 2}, {"kyc_level": 0, "strategies_paused": 1}),
    ]
    strategy.refresh_from_db()
    assert strategy.status == StrategyStatus.PAUSED


# --------------------------------------------------------------------------- every API view


def _drf_views(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _drf_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None:
                yield prefix + str(pattern.pattern), view_class


def test_every_api_view_of_the_project_runs_the_scope_permission() -> None:
    """The convention of accounts/api/permissions.py, enforced for every app's views."""
    views = list(_drf_views(get_resolver().url_patterns))
    assert views
    for route, view_class in views:
        permissions = view_class.permission_classes
        if all(issubclass(p, AllowAny) for p in permissions):
            continue  # public (sign-in, schema): no credentials, nothing to scope
        assert any(issubclass(p, ScopePermission) for p in permissions), route


# --------------------------------------------------------------------------- deploy check


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "TANDEM_", "DATABASE_", "REDIS_", "CLICKHOUSE_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
            "DJANGO_ALLOWED_HOSTS": "tandem.example.com",
            "TANDEM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": "postgres://tandem:secret@db.example.com:5432/tandem",
            "REDIS_URL": "redis://redis.example.com:6379/0",
            "CLICKHOUSE_URL": "clickhouse://default@clickhouse.example.com:9000/tandem",
            "TANDEM_LOG_LEVEL": "WARNING",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--settings=config.settings.production"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output
    assert "WARNING" not in output, output
    assert "ERROR" not in output, output
