"""What a KYC level allows. One table, read by every pre-trade and pre-copy check.

=====  ==========  ===============================================================
level  name        may
=====  ==========  ===============================================================
0      unverified  browse the leaderboard and analytics, sign in, manage API keys,
                   agent wallets and exchange connections. No orders, no copying.
1      basic       everything above, plus trade and copy, with total equity under
                   copy of at most ``settings.TANDEM["KYC_LEVEL1_MAX_EQUITY_USD"]``.
2      full        everything, no equity cap.
=====  ==========  ===============================================================

Account status comes first: a suspended or closed account may do nothing but sign in to
the portal's read-only pages (and is refused even that at sign-in while suspended).
Staff accounts are exempt from the KYC table; they never hold customer money.

Use :func:`kyc_equity_cap` for the cap (``Decimal`` limit, ``Decimal(0)`` for "may not
copy", ``None`` for "no cap"), :func:`copy_block_reason` before starting or resizing a
copy strategy, and ``accounts.selectors.user_trading_block_reason`` before any order.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from accounts.models import KycLevel, User, UserStatus


def kyc_equity_cap(user: User) -> Decimal | None:
    """The most equity ``user`` may have under copy, in USD; None means no cap."""
    if user.is_staff or user.kyc_level >= KycLevel.FULL:
        return None
    if user.kyc_level == KycLevel.BASIC:
        return Decimal(str(settings.TANDEM["KYC_LEVEL1_MAX_EQUITY_USD"]))
    return Decimal(0)


def trading_block_reason(user: User) -> str | None:
    """Why ``user`` may not place orders right now, or None."""
    if user.status != UserStatus.ACTIVE:
        return f"account is {user.status}"
    if user.kyc_level < KycLevel.BASIC and not user.is_staff:
        return "KYC level 1 (basic) is required to trade"
    return None


def copy_block_reason(user: User, *, equity_under_copy_usd: Decimal) -> str | None:
    """Why ``user`` may not have ``equity_under_copy_usd`` under copy, or None."""
    reason = trading_block_reason(user)
    if reason:
        return reason
    cap = kyc_equity_cap(user)
    if cap is not None and equity_under_copy_usd > cap:
        return (
            f"KYC level {user.kyc_level} allows at most {cap} USD under copy; "
            "complete full verification (level 2) to copy more"
        )
    return None
