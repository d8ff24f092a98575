"""factory_boy factories for Billing (and the copytrade rows billing charges fees on)."""

from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import UserFactory
from copytrade.models import CopyAllocation, CopyStrategy, Trader


class TraderFactory(factory.django.DjangoModelFactory[Trader]):
    class Meta:
        model = Trader

    alias = factory.Sequence(lambda n: f"trader{n}")
    src_uid = factory.Sequence(lambda n: f"0x{n:040x}")
    exchange = "hyperliquid"


class StrategyFactory(factory.django.DjangoModelFactory[CopyStrategy]):
    class Meta:
        model = CopyStrategy

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"strategy {n}")


class AllocationFactory(factory.django.DjangoModelFactory[CopyAllocation]):
    class Meta:
        model = CopyAllocation

    strategy = factory.SubFactory(StrategyFactory)
    trader = factory.SubFactory(TraderFactory)
    weight = Decimal("1")
