"""Venue adapters, one module a venue, and the registry that builds the right one.

``adapter_for_wallet(agent_wallet)`` is what execution and reconciliation use: the venue of the
wallet, acting for the wallet's user. ``adapter_for_venue(venue)`` gives public data only
(symbols, mark prices). Tests swap a venue's factory with ``override_adapter``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from django.conf import settings

from trading.exchanges.base import (
    AccountState,
    OrderRequest,
    PlaceResult,
    RateLimited,
    SymbolInfo,
    VenueAdapter,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenuePosition,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from trading.stores import setting

if TYPE_CHECKING:
    from accounts.models import AgentWallet

__all__ = [
    "AccountState",
    "OrderRequest",
    "PlaceResult",
    "RateLimited",
    "SymbolInfo",
    "VenueAdapter",
    "VenueError",
    "VenueFill",
    "VenueOrder",
    "VenueOrderStatus",
    "VenuePosition",
    "VenueRejected",
    "VenueTimeout",
    "VenueUnavailable",
    "adapter_for_venue",
    "adapter_for_wallet",
    "override_adapter",
]

AdapterFactory = Callable[["AgentWallet | None"], VenueAdapter]
_overrides: dict[str, AdapterFactory] = {}

CCXT_VENUES = {"okx": "okx"}  # Tandem venue -> ccxt exchange id


@contextlib.contextmanager
def override_adapter(venue: str, factory: AdapterFactory) -> Iterator[None]:
    previous = _overrides.get(venue)
    _overrides[venue] = factory
    try:
        yield
    finally:
        if previous is None:
            _overrides.pop(venue, None)
        else:
            _overrides[venue] = previous


def _account_address(agent_wallet: AgentWallet) -> str:
    # On Hyperliquid (and the paper venue, which mimics it) an agent acts for the master
    # account: positions and orders belong to the user's wallet, the agent only signs.
    return agent_wallet.user.wallet_addr or agent_wallet.addr


def _paper(agent_wallet: AgentWallet | None) -> VenueAdapter:
    from trading.exchanges.paper import PaperAdapter

    return PaperAdapter(account=_account_address(agent_wallet) if agent_wallet else None)


def _hyperliquid(agent_wallet: AgentWallet | None) -> VenueAdapter:
    from accounts.selectors import agent_wallet_private_key
    from trading.exchanges.hyperliquid import HyperliquidAdapter
    from trading.models import Symbol

    assets = {
        name: (asset, sz)
        for name, asset, sz in Symbol.objects.filter(venue="hyperliquid").values_list(
            "name", "venue_asset_id", "sz_decimals"
        )
        if asset is not None
    }
    return HyperliquidAdapter(
        base_url=str(settings.TANDEM["HYPERLIQUID_API_URL"]),
        account_address=_account_address(agent_wallet) if agent_wallet else None,
        private_key=agent_wallet_private_key(agent_wallet=agent_wallet) if agent_wallet else None,
        timeout=float(setting("VENUE_TIMEOUT_SECONDS")),
        assets=assets,
        is_mainnet=not settings.TANDEM.get("HYPERLIQUID_TESTNET", False),
    )


def _ccxt(venue: str) -> AdapterFactory:
    def build(agent_wallet: AgentWallet | None) -> VenueAdapter:
        from accounts.selectors import exchange_connection_credentials, exchange_connection_list
        from trading.exchanges.ccxt_venue import CcxtAdapter, VenueCredentials

        credentials = None
        if agent_wallet is not None:
            connection = (
                exchange_connection_list(user=agent_wallet.user)
                .filter(exchange_name=venue, is_active=True)
                .first()
            )
            if connection is None:
                raise VenueRejected(
                    f"No active {venue} API connection for this account.",
                    code="no_exchange_connection",
                )
            secret = exchange_connection_credentials(connection=connection)
            credentials = VenueCredentials(
                api_key=secret.api_key, secret=secret.api_secret, password=secret.passphrase or ""
            )
        urls: dict[str, str] = setting("CCXT_API_URLS") or {}
        return CcxtAdapter(
            venue=venue,
            exchange_id=CCXT_VENUES[venue],
            credentials=credentials,
            base_url=urls.get(venue),
            timeout=float(setting("VENUE_TIMEOUT_SECONDS")),
        )

    return build


def _factory(venue: str) -> AdapterFactory:
    if venue in _overrides:
        return _overrides[venue]
    if venue == "paper":
        return _paper
    if venue == "hyperliquid":
        return _hyperliquid
    if venue in CCXT_VENUES:
        return _ccxt(venue)
    raise VenueRejected(f"Tandem has no adapter for venue {venue!r}.", code="unknown_venue")


def adapter_for_wallet(agent_wallet: AgentWallet) -> VenueAdapter:
    return _factory(agent_wallet.exchange)(agent_wallet)


def adapter_for_venue(venue: str) -> VenueAdapter:
    return _factory(venue)(None)
