"""The user: a customer identified by a wallet, or a staff member identified by an email."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from eth_utils import is_address, to_checksum_address

WALLET_ADDRESS_REGEX = r"^0x[0-9a-fA-F]{40}$"


def checksum_address(value: str) -> str:
    """EIP-55 form of an address, or ValidationError for anything that is not one."""
    if not isinstance(value, str) or not is_address(value):
        raise ValidationError(
            "Enter a valid Ethereum address (0x followed by 40 hex digits).", code="invalid_address"
        )
    return str(to_checksum_address(value))


class KycLevel(models.IntegerChoices):
    UNVERIFIED = 0, "Unverified"
    BASIC = 1, "Basic"
    FULL = 2, "Full"


class UserStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(
        self,
        wallet_addr: str | None = None,
        email: str | None = None,
        password: str | None = None,
        **extra: Any,
    ) -> User:
        user = self.model(
            wallet_addr=wallet_addr, email=self.normalize_email(email) or None, **extra
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str | None) -> User:
        # Emails are stored lower-case; a person may type theirs in any case.
        return self.get(email__iexact=(username or "").strip())

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email=email, password=password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A customer (identified by a wallet) or a staff member (who may have only an email)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet_addr = models.CharField(
        "wallet address",
        max_length=42,
        unique=True,
        null=True,
        blank=True,
        help_text="EIP-55 checksummed; required for customers.",
    )
    email = models.EmailField(unique=True, null=True, blank=True)
    kyc_level = models.PositiveSmallIntegerField(
        choices=KycLevel.choices, default=KycLevel.UNVERIFIED
    )
    status = models.CharField(max_length=16, choices=UserStatus.choices, default=UserStatus.ACTIVE)
    preferences = models.JSONField(default=dict, blank=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    # Staff sign in to the admin with email + password (+ TOTP); customers with their wallet.
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "users"
        indexes = [
            models.Index(fields=["kyc_level"], name="users_kyc_level_idx"),
            models.Index(fields=["status"], name="users_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kyc_level__in=[0, 1, 2]), name="users_kyc_level_range"
            ),
            models.CheckConstraint(
                condition=Q(status__in=UserStatus.values), name="users_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(wallet_addr__isnull=True) | Q(wallet_addr__regex=WALLET_ADDRESS_REGEX),
                name="users_wallet_addr_format",
            ),
            # Only staff created with an email may lack a wallet.
            models.CheckConstraint(
                condition=Q(wallet_addr__isnull=False) | Q(is_staff=True, email__isnull=False),
                name="users_wallet_required_for_customers",
            ),
            models.UniqueConstraint(Lower("email"), name="users_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email or self.wallet_addr or str(self.id)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        # Django's auth, the admin, simplejwt and axes all consult is_active: a suspended or
        # closed account is refused everywhere by this one property.
        return self.status == UserStatus.ACTIVE

    @property
    def short_wallet(self) -> str:
        addr = self.wallet_addr or ""
        return f"{addr[:6]}…{addr[-4:]}" if addr else ""

    def clean(self) -> None:
        super().clean()
        if self.email:
            self.email = self.email.strip().lower() or None
        if self.wallet_addr:
            self.wallet_addr = checksum_address(self.wallet_addr.strip())
        elif not (self.is_staff and self.email):
            raise ValidationError({"wallet_addr": "A customer account needs a wallet address."})

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Checksum on every save, not only through forms: the unique constraint must compare one
        # spelling of an address, whatever case a caller used.
        if self.wallet_addr:
            self.wallet_addr = checksum_address(self.wallet_addr.strip())
        if self.email:
            self.email = self.email.strip().lower()
        elif self.email == "":
            self.email = None
        super().save(*args, **kwargs)
