"""Symbols: what can be traded on each venue and the venue's rules for writing an order."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from trading.rounding import PriceRules, SizeRules

VENUE_REGEX = r"^[a-z0-9_]{2,32}$"


class SymbolStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    DEPRECATED = "deprecated", "Deprecated"


class Symbol(models.Model):
    """One perpetual on one venue (seed 002 ``symbols``), with its tick and lot rules.

    ``name`` is the venue's coin name (Hyperliquid ``BTC``, ``kPEPE``) and is what the rest of
    Tandem calls the market; ``venue_symbol`` is how the adapter addresses it when that differs
    (ccxt's ``BTC/USDT:USDT``), ``venue_asset_id`` the venue's numeric asset index when it has
    one (Hyperliquid signs orders with the asset's position in ``meta.universe``).
    """

    venue = models.CharField(max_length=32)
    name = models.CharField(max_length=32)
    venue_symbol = models.CharField(max_length=64, blank=True, default="")
    venue_asset_id = models.IntegerField(null=True, blank=True)
    base_currency = models.CharField(max_length=16)
    quote_currency = models.CharField(max_length=16, default="USDC")
    status = models.CharField(
        max_length=16, choices=SymbolStatus.choices, default=SymbolStatus.ACTIVE
    )

    # Size rules (seed: quantity_precision, min_order_size, max_order_size)
    sz_decimals = models.PositiveSmallIntegerField("size decimals")
    lot_size = models.DecimalField(max_digits=18, decimal_places=8)
    min_size = models.DecimalField("minimum size", max_digits=18, decimal_places=8)
    max_size = models.DecimalField(
        "maximum size", max_digits=18, decimal_places=8, null=True, blank=True
    )
    min_notional = models.DecimalField(
        "minimum order value", max_digits=18, decimal_places=8, default=Decimal(0)
    )
    # Venue contract size in base units (OKX ctVal); Tandem sizes are always in base units.
    contract_size = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(1))

    # Price rules (seed: price_precision). NULL means the rule does not apply on this venue.
    price_sig_figs = models.PositiveSmallIntegerField(null=True, blank=True)
    price_max_decimals = models.PositiveSmallIntegerField("price decimals", null=True, blank=True)
    tick_size = models.DecimalField(max_digits=18, decimal_places=10, null=True, blank=True)

    # Margin
    max_leverage = models.PositiveIntegerField()
    maintenance_margin_rate = models.DecimalField(max_digits=10, decimal_places=8)
    only_isolated = models.BooleanField(default=False)

    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "symbols"
        ordering = ["venue", "name"]
        indexes = [
            models.Index(fields=["venue"], name="symbols_venue_idx"),
            models.Index(fields=["status"], name="symbols_status_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["venue", "name"], name="symbols_venue_name_uniq"),
            models.CheckConstraint(
                condition=Q(venue__regex=VENUE_REGEX), name="symbols_venue_format"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SymbolStatus.values), name="symbols_status_valid"
            ),
            models.CheckConstraint(condition=Q(sz_decimals__lte=12), name="symbols_sz_decimals"),
            models.CheckConstraint(condition=Q(lot_size__gt=0), name="symbols_lot_positive"),
            models.CheckConstraint(condition=Q(min_size__gte=0), name="symbols_min_size"),
            models.CheckConstraint(
                condition=Q(max_size__isnull=True) | Q(max_size__gt=0), name="symbols_max_size"
            ),
            models.CheckConstraint(condition=Q(min_notional__gte=0), name="symbols_min_notional"),
            models.CheckConstraint(condition=Q(contract_size__gt=0), name="symbols_contract_size"),
            models.CheckConstraint(
                condition=Q(tick_size__isnull=True) | Q(tick_size__gt=0),
                name="symbols_tick_positive",
            ),
            models.CheckConstraint(
                condition=Q(price_sig_figs__isnull=True) | Q(price_sig_figs__gte=1),
                name="symbols_sig_figs",
            ),
            models.CheckConstraint(condition=Q(max_leverage__gte=1), name="symbols_max_leverage"),
            models.CheckConstraint(
                condition=Q(maintenance_margin_rate__gt=0, maintenance_margin_rate__lt=1),
                name="symbols_mmr_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.venue})"

    @property
    def is_active(self) -> bool:
        return self.status == SymbolStatus.ACTIVE

    @property
    def price_rules(self) -> PriceRules:
        return PriceRules(
            sig_figs=self.price_sig_figs,
            max_decimals=self.price_max_decimals,
            tick_size=self.tick_size,
        )

    @property
    def size_rules(self) -> SizeRules:
        return SizeRules(
            lot_size=self.lot_size, min_size=self.min_size, min_notional=self.min_notional
        )

    @property
    def address(self) -> str:
        """The name the venue adapter sends."""
        return self.venue_symbol or self.name
