"""The plans Tandem starts with. ``free`` is the default: every user without a subscription is on
it. Staff change prices, limits and fees in the admin afterwards; this runs once."""

from decimal import Decimal

from django.db import migrations

PLANS = [
    {
        "code": "free",
        "name": "Free",
        "description": "Copy one trader with a small portfolio.",
        "is_default": True,
        "sort_order": 0,
        "price": Decimal(0),
        "billing_period": "monthly",
        "grace_days": 0,
        "max_strategies": 1,
        "max_traders_per_portfolio": 3,
        "max_api_keys": 5,
        "api_rate_per_minute": 60,
        "builder_fee_bps": 10,
        "copy_fee_bps": 5,
        "management_fee_bps": 0,
        "performance_fee_bps": 2000,
        "performance_period": "monthly",
        "trader_share_bps": 5000,
    },
    {
        "code": "pro",
        "name": "Pro",
        "description": "Several strategies, larger portfolios, lower trading fees.",
        "is_default": False,
        "sort_order": 10,
        "price": Decimal(49),
        "billing_period": "monthly",
        "grace_days": 7,
        "max_strategies": 5,
        "max_traders_per_portfolio": 10,
        "max_api_keys": 10,
        "api_rate_per_minute": 600,
        "builder_fee_bps": 5,
        "copy_fee_bps": 2,
        "management_fee_bps": 0,
        "performance_fee_bps": 1500,
        "performance_period": "monthly",
        "trader_share_bps": 5000,
    },
    {
        "code": "desk",
        "name": "Desk",
        "description": "Unlimited strategies for professional desks; weekly performance fees.",
        "is_default": False,
        "sort_order": 20,
        "price": Decimal(299),
        "billing_period": "monthly",
        "grace_days": 14,
        "max_strategies": None,
        "max_traders_per_portfolio": 25,
        "max_api_keys": 25,
        "api_rate_per_minute": 3000,
        "builder_fee_bps": 2,
        "copy_fee_bps": 0,
        "management_fee_bps": 100,
        "performance_fee_bps": 1000,
        "performance_period": "weekly",
        "trader_share_bps": 5000,
    },
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for values in PLANS:
        Plan.objects.get_or_create(code=values["code"], defaults={**values, "currency": "USDC"})


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_guards")]
    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
