"""factory_boy factories for Trading. Orders start ``pending`` (as the database demands); tests
move them through the services, never by writing a status."""

from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.models import Order, OrderSide, OrderType, RiskLimit, Symbol, TimeInForce
from trading.pnl import maintenance_margin_rate


class SymbolFactory(factory.django.DjangoModelFactory[Symbol]):
    class Meta:
        model = Symbol
        django_get_or_create = ("venue", "name")

    venue = "paper"
    name = factory.Sequence(lambda n: f"SYM{n}")
    base_currency = factory.LazyAttribute(lambda o: o.name)
    quote_currency = "USDC"
    sz_decimals = 2
    lot_size = factory.LazyAttribute(lambda o: Decimal(1).scaleb(-o.sz_decimals))
    min_size = factory.LazyAttribute(lambda o: o.lot_size)
    min_notional = Decimal(10)
    price_sig_figs = 5
    price_max_decimals = factory.LazyAttribute(lambda o: max(6 - o.sz_decimals, 0))
    max_leverage = 20
    maintenance_margin_rate = factory.LazyAttribute(
        lambda o: maintenance_margin_rate(o.max_leverage)
    )


class OrderFactory(factory.django.DjangoModelFactory[Order]):
    """A pending order as order_create would write it (without the checks or the outbox)."""

    class Meta:
        model = Order

    user = factory.SubFactory(UserFactory)
    agent_wallet = factory.LazyAttribute(
        lambda o: o.user.agent_wallets.first() or AgentWalletFactory.create(user=o.user)
    )
    symbol = factory.SubFactory(SymbolFactory)
    exchange = factory.LazyAttribute(lambda o: o.symbol.venue)
    side = OrderSide.BUY
    order_type = OrderType.LIMIT
    time_in_force = TimeInForce.GTC
    quantity = Decimal("1")
    price = Decimal("100")


class RiskLimitFactory(factory.django.DjangoModelFactory[RiskLimit]):
    class Meta:
        model = RiskLimit

    user = factory.SubFactory(UserFactory)
