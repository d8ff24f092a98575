"""Symbols: filled from the venue's own metadata through its adapter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from trading.exchanges import SymbolInfo, adapter_for_venue
from trading.models import Symbol, SymbolStatus


@dataclass(frozen=True)
class SymbolSyncResult:
    created: int
    updated: int
    deactivated: int


def symbols_sync(
    *, venue: str, infos: Iterable[SymbolInfo] | None = None, deactivate_missing: bool = True
) -> SymbolSyncResult:
    """Create or update the venue's symbols from its metadata (``infos``, else the adapter's).

    Delisted markets become ``inactive``; markets the venue no longer lists at all become
    ``deprecated`` (when ``deactivate_missing``). Rows are never deleted: orders point at them.
    """
    listed = list(infos) if infos is not None else adapter_for_venue(venue).symbols()
    created = updated = deactivated = 0
    with transaction.atomic():
        existing = {s.name: s for s in Symbol.objects.select_for_update().filter(venue=venue)}
        for info in listed:
            values = {
                "venue_symbol": info.venue_symbol,
                "venue_asset_id": info.venue_asset_id,
                "base_currency": info.base_currency,
                "quote_currency": info.quote_currency,
                "status": SymbolStatus.INACTIVE if info.is_delisted else SymbolStatus.ACTIVE,
                "sz_decimals": info.sz_decimals,
                "lot_size": info.lot_size,
                "min_size": info.min_size,
                "min_notional": info.min_notional,
                "contract_size": info.contract_size,
                "price_sig_figs": info.price_sig_figs,
                "price_max_decimals": info.price_max_decimals,
                "tick_size": info.tick_size,
                "max_leverage": info.max_leverage,
                "maintenance_margin_rate": info.maintenance_margin_rate,
                "only_isolated": info.only_isolated,
                "metadata": {"venue": info.raw},
            }
            symbol = existing.pop(info.name, None)
            if symbol is None:
                Symbol.objects.create(venue=venue, name=info.name, **values)
                created += 1
                continue
            changed = [field for field, value in values.items() if getattr(symbol, field) != value]
            if changed:
                for field in changed:
                    setattr(symbol, field, values[field])
                symbol.save(update_fields=[*changed, "updated_at"])
                updated += 1
        if deactivate_missing:
            gone = [s.pk for s in existing.values() if s.status != SymbolStatus.DEPRECATED]
            deactivated = Symbol.objects.filter(pk__in=gone).update(status=SymbolStatus.DEPRECATED)
    return SymbolSyncResult(created=created, updated=updated, deactivated=deactivated)
