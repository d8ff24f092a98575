"""Accounts Celery tasks: thin wrappers around one service each."""

from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(name="accounts.siwe_nonces_purge")
def siwe_nonces_purge() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): drop sign-in nonces that expired a day ago."""
    return services.siwe_nonces_purge()
