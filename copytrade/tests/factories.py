"""factory_boy factories for Copy trading. Strategies are created paused (as the service does);
tests start them through ``strategy_activate``, never by writing a status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from eth_account import Account

from copytrade.models import CopyAllocation, CopyStrategy, Trader, TraderSource


class TraderFactory(factory.django.DjangoModelFactory[Trader]):
    class Meta:
        model = Trader

    class Params:
        account = factory.LazyFunction(Account.create)

    alias = factory.Sequence(lambda n: f"Trader {n}")
    src_uid: Any = factory.LazyAttribute(lambda o: o.account.address.lower())
    addr: Any = factory.LazyAttribute(lambda o: o.account.address.lower())
    exchange = "paper"
    source = TraderSource.STAFF
    account_value = Decimal(100_000)
    tags: Any = factory.LazyFunction(list)


class StrategyFactory(factory.django.DjangoModelFactory[CopyStrategy]):
    class Meta:
        model = CopyStrategy

    user = factory.SubFactory("accounts.tests.factories.UserFactory")
    name = factory.Sequence(lambda n: f"Strategy {n}")


class AllocationFactory(factory.django.DjangoModelFactory[CopyAllocation]):
    class Meta:
        model = CopyAllocation

    strategy = factory.SubFactory(StrategyFactory)
    trader = factory.SubFactory(TraderFactory)
    weight = Decimal(1)
