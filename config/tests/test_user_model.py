"""The user model and the database constraints behind it (seed 000 `users`, issue 3)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from eth_account import Account

from accounts.models import AgentWallet, AuditLog, User


def insert_user(**fields: Any) -> None:
    """Insert with raw SQL so the database, not Python, is what refuses bad rows."""
    defaults: dict[str, Any] = {
        "wallet_addr": Account.create().address,
        "email": None,
        "kyc_level": 0,
        "status": "active",
        "is_staff": False,
    }
    defaults.update(fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (id, password, is_superuser, wallet_addr, email, kyc_level, status,"
            " preferences, is_staff, created_at, updated_at)"
            " VALUES (gen_random_uuid(), '', false, %s, %s, %s, %s, '{}', %s, now(), now())",
            [
                defaults["wallet_addr"],
                defaults["email"],
                defaults["kyc_level"],
                defaults["status"],
                defaults["is_staff"],
            ],
        )


@pytest.mark.django_db
class TestUserConstraints:
    def test_primary_key_is_uuid(self, user: User) -> None:
        assert len(str(user.pk)) == 36

    @pytest.mark.parametrize("level", [-1, 3, 10])
    def test_kyc_level_out_of_range_is_refused_by_the_database(self, level: int) -> None:
        with pytest.raises(IntegrityError, match="users_kyc_level"), transaction.atomic():
            insert_user(kyc_level=level)

    @pytest.mark.parametrize("level", [0, 1, 2])
    def test_kyc_levels_in_range_are_accepted(self, level: int) -> None:
        insert_user(kyc_level=level)
        assert User.objects.filter(kyc_level=level).count() == 1

    def test_unknown_status_is_refused(self) -> None:
        with pytest.raises(IntegrityError, match="users_status_valid"), transaction.atomic():
            insert_user(status="deleted")

    def test_malformed_wallet_is_refused(self) -> None:
        with pytest.raises(IntegrityError, match="users_wallet_addr_format"), transaction.atomic():
            insert_user(wallet_addr="0x1234")

    def test_customer_without_wallet_is_refused(self) -> None:
        with pytest.raises(IntegrityError, match="users_wallet_required"), transaction.atomic():
            insert_user(wallet_addr=None, email="nowallet@example.com")

    def test_staff_with_email_may_lack_a_wallet(self) -> None:
        insert_user(wallet_addr=None, email="ops@example.com", is_staff=True)
        assert User.objects.get(email="ops@example.com").wallet_addr is None

    def test_staff_without_email_needs_a_wallet(self) -> None:
        with pytest.raises(IntegrityError, match="users_wallet_required"), transaction.atomic():
            insert_user(wallet_addr=None, email=None, is_staff=True)

    def test_wallet_is_unique_whatever_its_case(self) -> None:
        address = Account.create().address
        User.objects.create_user(wallet_addr=address.lower())
        with pytest.raises(ValidationError):
            User.objects.create_user(wallet_addr=address.upper().replace("0X", "0x"))
        with pytest.raises(IntegrityError), transaction.atomic():
            User(wallet_addr=address.lower()).save()

    def test_email_is_unique_case_insensitively_in_the_database(self) -> None:
        insert_user(email="Trader@Example.com")
        with pytest.raises(IntegrityError, match="users_email"), transaction.atomic():
            insert_user(email="trader@example.COM")

    def test_wallet_is_checksummed_on_save(self) -> None:
        address = Account.create().address
        user = User(wallet_addr=address.lower())
        user.save()
        user.refresh_from_db()
        assert user.wallet_addr == address
        assert user.wallet_addr != address.lower()

    def test_invalid_wallet_is_refused_before_writing(self) -> None:
        with pytest.raises(ValidationError):
            User.objects.create_user(wallet_addr="0xnot-an-address")
        assert User.objects.count() == 0

    def test_suspended_user_is_inactive_for_auth(self, user: User) -> None:
        assert user.is_active
        user.status = "suspended"
        assert not user.is_active

    def test_preferences_default_to_an_empty_object(self, user: User) -> None:
        user.refresh_from_db()
        assert user.preferences == {}
        assert user.created_at <= user.updated_at


@pytest.mark.django_db
class TestAgentWalletAndAuditConstraints:
    def test_agent_wallet_can_never_withdraw(self, user: User) -> None:
        wallet = AgentWallet(
            user=user,
            addr=Account.create().address,
            key_source="registered",
            permissions={"trade": True, "withdraw": True},
        )
        with pytest.raises(IntegrityError, match="chk_agent_never_withdraw"), transaction.atomic():
            wallet.save()
        assert AgentWallet.objects.count() == 0

    def test_audit_log_is_append_only(self, user: User) -> None:
        row = AuditLog.objects.create(
            actor=user, actor_type="user", action="test", status="success"
        )
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            AuditLog.objects.filter(pk=row.pk).update(action="tampered")
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            AuditLog.objects.filter(pk=row.pk).delete()
        row.refresh_from_db()
        assert row.action == "test"
