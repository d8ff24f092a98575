"""factory_boy factories for accounts. Wallets are real eth-account keys, so tests can sign."""

from __future__ import annotations

from typing import Any

import factory
from eth_account import Account

from accounts.models import AgentWallet, AgentWalletKeySource, AgentWalletStatus, KycLevel, User


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    class Params:
        account = factory.LazyFunction(Account.create)

    wallet_addr: Any = factory.LazyAttribute(lambda o: o.account.address)
    kyc_level = KycLevel.BASIC
    password = factory.PostGeneration(
        lambda user, create, extracted, **kw: (
            user.set_unusable_password() if extracted is None else user.set_password(extracted)
        )
    )

    @factory.post_generation
    def _save(self: Any, create: bool, extracted: object, **kwargs: object) -> None:
        # factory_boy passes the built model instance here, not the factory.
        if create:
            self.save()


class StaffFactory(UserFactory):
    wallet_addr = None
    email = factory.Sequence(lambda n: f"staff{n}@tandem.test")
    is_staff = True
    kyc_level = KycLevel.FULL


class AgentWalletFactory(factory.django.DjangoModelFactory[AgentWallet]):
    class Meta:
        model = AgentWallet

    class Params:
        account = factory.LazyFunction(Account.create)

    user = factory.SubFactory(UserFactory)
    addr = factory.LazyAttribute(lambda o: o.account.address)
    key_source = AgentWalletKeySource.REGISTERED
    status = AgentWalletStatus.ACTIVE
    exchange = "paper"
