"""The back office: TOTP required, every change audited, secrets never shown."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import ApiKey, AuditLog, User, UserStatus
from accounts.tests.factories import StaffFactory, UserFactory
from copytrade.models import CopyStrategy, StrategyStatus

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def totp_token(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return str(totp.token()).zfill(device.digits)


def admin_login(client: Client, staff: User, device: TOTPDevice | None) -> Any:
    data = {"username": staff.email, "password": PASSWORD, "next": "/admin/"}
    if device is not None:
        data["otp_token"] = totp_token(device)
    return client.post("/admin/login/", data)


@pytest.fixture
def verified_admin(client: Client) -> tuple[Client, User]:
    staff = StaffFactory.create(password=PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    response = admin_login(client, staff, device)
    assert response.status_code == 302, response.content
    return client, staff


def test_staff_without_a_verified_device_cannot_open_admin_pages(
    client: Client, staff_user: User
) -> None:
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)  # a password session, as from the portal
    for path in ("/admin/", "/admin/accounts/user/", "/admin/accounts/auditlog/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/")
    refused = admin_login(client, staff_user, None)
    assert refused.status_code == 200
    assert b"OTP" in refused.content or b"token" in refused.content
    assert client.get("/admin/").status_code == 302
    # An unconfirmed device (enrolment not finished) does not count either.
    device = TOTPDevice.objects.create(user=staff_user, name="half", confirmed=False)
    assert admin_login(client, staff_user, device).status_code == 200
    assert client.get("/admin/").status_code == 302


def test_staff_with_a_verified_device_can(verified_admin: tuple[Client, User]) -> None:
    client, _ = verified_admin
    for path in (
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/user/?q=0x&status__exact=active",
        "/admin/accounts/agentwallet/",
        "/admin/accounts/exchangeconnection/",
        "/admin/accounts/apikey/",
        "/admin/accounts/authsession/",
        "/admin/accounts/auditlog/?status__exact=failure",
    ):
        assert client.get(path).status_code == 200, path


def test_wrong_totp_is_refused_and_audited(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    staff = StaffFactory.create(password=PASSWORD)
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    response = client.post(
        "/admin/login/", {"username": staff.email, "password": PASSWORD, "otp_token": "000000"}
    )
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
    assert AuditLog.objects.filter(action="sign_in_otp", status="failure", actor=staff).exists()


def test_portal_enrolment_then_admin(client: Client) -> None:
    staff = StaffFactory.create(password=PASSWORD)
    client.force_login(staff)
    page = client.get("/accounts/staff/totp/")
    assert page.status_code == 200
    assert b"otpauth://totp/" in page.content
    assert b"<svg" in page.content
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed is False
    bad = client.post("/accounts/staff/totp/", {"token": "123456"})
    assert bad.status_code == 200
    assert b"not valid" in bad.content
    device.throttle_reset()  # django-otp makes a device wait after a miss
    good = client.post("/accounts/staff/totp/", {"token": totp_token(device)})
    assert good.status_code == 302
    assert good["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200  # verified in this session


def test_enrolment_page_is_for_staff_only(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/accounts/staff/totp/").status_code == 403


def test_staff_totp_setup_command(staff_user: User) -> None:
    out = io.StringIO()
    call_command("staff_totp_setup", staff_user.email, "--no-qr", stdout=out)
    assert "otpauth://totp/" in out.getvalue()
    assert TOTPDevice.objects.get(user=staff_user).confirmed
    with pytest.raises(Exception, match="already has a device"):
        call_command("staff_totp_setup", staff_user.email, stdout=io.StringIO())


def test_every_admin_change_is_audited_with_old_and_new_values(
    verified_admin: tuple[Client, User], django_capture_on_commit_callbacks: Any
) -> None:
    client, staff = verified_admin
    customer = UserFactory.create(email="old@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/accounts/user/{customer.pk}/change/",
            {
                "wallet_addr": customer.wallet_addr,
                "email": "new@example.com",
                "preferences": "{}",
                "_save": "Save",
            },
        )
        assert response.status_code == 302, response.content
        client.post("/admin/auth/group/add/", {"name": "support", "_save": "Save"})
        group = Group.objects.get(name="support")
        client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    change = AuditLog.objects.get(action="admin_change", resource_type="accounts.user")
    assert change.actor == staff
    assert change.actor_type == "admin"
    assert change.old_values == {"email": "old@example.com"}
    assert change.new_values == {"email": "new@example.com"}
    assert change.resource_id == customer.pk
    assert change.ip_address == "127.0.0.1"
    assert AuditLog.objects.filter(action="admin_add", resource_type="auth.group").exists()
    assert AuditLog.objects.filter(action="admin_delete", resource_type="auth.group").exists()


def test_admin_suspend_action_goes_through_the_service(
    verified_admin: tuple[Client, User], django_capture_on_commit_callbacks: Any
) -> None:
    client, staff = verified_admin
    customer = UserFactory.create()
    strategy = CopyStrategy.objects.create(user=customer, name="s", status=StrategyStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/user/",
            {"action": "suspend", "_selected_action": [str(customer.pk)]},
        )
    assert response.status_code == 302
    customer.refresh_from_db()
    strategy.refresh_from_db()
    assert customer.status == UserStatus.SUSPENDED
    assert strategy.status == StrategyStatus.PAUSED
    assert AuditLog.objects.get(action="user_suspend").actor == staff


def test_admin_never_shows_secrets(verified_admin: tuple[Client, User]) -> None:
    client, _ = verified_admin
    customer = UserFactory.create()
    connection = services.exchange_connection_create(
        user=customer,
        exchange_name="bybit",
        api_key="vk_admin_key_98765",
        api_secret="vs_adm_s3cr3t",
    )
    api_key, raw = services.api_key_create(user=customer, name="bot", scopes=["read"])
    wallet = services.agent_wallet_generate(user=customer).agent_wallet
    pages = [
        client.get("/admin/accounts/exchangeconnection/").content,
        client.get(f"/admin/accounts/exchangeconnection/{connection.pk}/change/").content,
        client.get("/admin/accounts/apikey/").content,
        client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content,
        client.get(f"/admin/accounts/agentwallet/{wallet.pk}/change/").content,
    ]
    text = b"".join(pages).decode()
    assert "••••8765" in text
    assert "vk_admin_key_98765" not in text
    assert "vs_adm_s3cr3t" not in text
    assert raw.split(".")[1] not in text
    assert ApiKey.objects.get(pk=api_key.pk).key_hash not in text
    assert bytes(wallet.encrypted_private_key or b"").decode() not in text


def test_audit_log_is_read_only_in_the_admin(verified_admin: tuple[Client, User]) -> None:
    client, staff = verified_admin
    services.audit_log_record(action="probe", actor=staff, immediate=True)
    row = AuditLog.objects.get(action="probe")
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert (
        client.post(f"/admin/accounts/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    client.post(f"/admin/accounts/auditlog/{row.pk}/change/", {"action": "tampered"})
    row.refresh_from_db()
    assert row.action == "probe"
