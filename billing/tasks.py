"""Billing Celery tasks: thin, they take ids or dates and call one service. Routed to the
``billing`` queue (settings.CELERY_TASK_ROUTES); every one is idempotent, so a redelivery or a
second beat run charges nothing twice."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from billing import services


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@shared_task(acks_late=True, ignore_result=True)
def fill_fees_accrue_task(fill_ids: list[str]) -> int:
    return services.fill_fees_accrue(fill_ids=fill_ids).charged


@shared_task(acks_late=True, ignore_result=True)
def fill_fees_sweep_task() -> int:
    return services.fill_fees_sweep().charged


@shared_task(acks_late=True, ignore_result=True)
def equity_marks_take_task(day: str | None = None) -> int:
    return services.equity_marks_take(day=_day(day))


@shared_task(acks_late=True, ignore_result=True)
def management_fees_accrue_task(day: str | None = None) -> int:
    from datetime import timedelta

    from django.utils import timezone

    target = _day(day) or (timezone.now() - timedelta(days=1)).date()
    return services.management_fees_accrue(day=target).charged


@shared_task(acks_late=True, ignore_result=True)
def performance_fees_accrue_task() -> int:
    return services.performance_fees_accrue().charged


@shared_task(acks_late=True, ignore_result=True)
def subscriptions_renew_task() -> int:
    report = services.subscriptions_renew()
    return report.renewed + report.expired + report.past_due + report.lapsed


@shared_task(acks_late=True, ignore_result=True)
def statements_close_task(month: str | None = None) -> int:
    return services.statements_close(month=_day(month))
