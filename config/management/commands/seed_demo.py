"""Load the demo data `make run` shows; idempotent, so every start may run it again.

Demo credentials are printed, never used outside a local run: production settings refuse to run
this command.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from eth_account import Account
from eth_utils import keccak

from accounts.models import KycLevel, User

STAFF_EMAIL = "staff@tandem.local"
STAFF_PASSWORD = "tandem-staff-demo"  # noqa: S105 - demo credential, printed on purpose
CUSTOMER_EMAIL = "demo@tandem.local"
CUSTOMER_PASSWORD = "tandem-demo-1234"  # noqa: S105 - demo credential, printed on purpose


def demo_account(label: str) -> Any:
    """A deterministic demo wallet: the same address on every machine and every run."""
    return Account.from_key(keccak(text=f"tandem-demo:{label}"))


class Command(BaseCommand):
    help = "Create or refresh the demo staff user, demo customer and demo market data."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SETTINGS_MODULE.endswith(".production"):
            raise CommandError("seed_demo refuses to run with production settings")
        with transaction.atomic():
            staff = self._staff()
            customer = self._customer()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo staff {staff.email}, demo customer {customer.email} ({customer.wallet_addr})"
            )
        )
        for extra in self._extras():
            self.stdout.write(extra)

    def _staff(self) -> User:
        staff = User.objects.filter(email=STAFF_EMAIL).first()
        if staff is None:
            staff = User.objects.create_superuser(
                email=STAFF_EMAIL, password=STAFF_PASSWORD, kyc_level=KycLevel.FULL
            )
        return staff

    def _customer(self) -> User:
        wallet = demo_account("customer").address
        customer = User.objects.filter(wallet_addr=wallet).first()
        if customer is None:
            customer = User.objects.create_user(
                wallet_addr=wallet,
                email=CUSTOMER_EMAIL,
                password=CUSTOMER_PASSWORD,
                kyc_level=KycLevel.FULL,
            )
        return customer

    def _extras(self) -> list[str]:
        """Demo data of the other apps; each hook is idempotent and returns printable lines."""
        lines: list[str] = []
        for hook in _DEMO_HOOKS:
            lines.extend(hook(self))
        return lines


def _copy_trading(command: Command) -> list[str]:
    """Copy trading: paper symbols, an active paper agent wallet for the demo customer, the
    simulated traders with history, and a running two-trader portfolio (copytrade)."""
    from copytrade.services.demo import demo_portfolio_seed

    customer = User.objects.get(wallet_addr=demo_account("customer").address)
    with transaction.atomic():
        return demo_portfolio_seed(customer=customer, signer=demo_account("customer"))


# Apps append functions here (staff TOTP, symbols, traders, strategies) as they land.
_DEMO_HOOKS: list[Any] = [_copy_trading]
