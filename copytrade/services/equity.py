"""Follower equity: the account value proportional sizing divides by, cached per agent wallet.

A fan-out sizes thousands of followers at once and cannot ask the venue for each; the refresh
task keeps the cache warm for every running strategy, and a sizing that finds a value missing
or stale fetches a bounded number inline (copytrade.conf).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import AgentWallet
from copytrade.conf import setting
from copytrade.models import CopyStrategy, FollowerEquity, StrategyStatus
from trading.exchanges import VenueError, adapter_for_wallet

logger = logging.getLogger(__name__)


def follower_equity_fetch(*, agent_wallet: AgentWallet) -> Decimal | None:
    """Ask the venue for the account value now and cache it; None when the venue fails."""
    adapter = adapter_for_wallet(agent_wallet)
    try:
        value = adapter.account_state().account_value
    except VenueError as exc:
        logger.warning("equity of wallet %s unavailable: %s", agent_wallet.pk, exc)
        return None
    finally:
        adapter.close()
    FollowerEquity.objects.update_or_create(
        agent_wallet=agent_wallet,
        defaults={"account_value": value, "fetched_at": timezone.now()},
    )
    return value


def follower_equity(*, agent_wallet: AgentWallet, max_age: float | None = None) -> Decimal | None:
    """The cached account value when fresh enough, else fetched (the stale value if the venue
    does not answer)."""
    age = float(setting("COPY_EQUITY_MAX_AGE_SECONDS") if max_age is None else max_age)
    cached = FollowerEquity.objects.filter(agent_wallet=agent_wallet).first()
    if cached is not None and cached.fetched_at >= timezone.now() - timedelta(seconds=age):
        return cached.account_value
    fetched = follower_equity_fetch(agent_wallet=agent_wallet)
    if fetched is None and cached is not None:
        return cached.account_value
    return fetched


def follower_equities_refresh(*, wallet_ids: Iterable[str] | None = None) -> int:
    """Refresh the cache for the wallets of every running strategy (beat). Returns how many."""
    wallets = AgentWallet.objects.select_related("user").filter(
        pk__in=CopyStrategy.objects.filter(status=StrategyStatus.ACTIVE).values("agent_wallet_id")
    )
    if wallet_ids is not None:
        wallets = wallets.filter(pk__in=list(wallet_ids))
    count = 0
    for wallet in wallets:
        if follower_equity_fetch(agent_wallet=wallet) is not None:
            count += 1
    return count
