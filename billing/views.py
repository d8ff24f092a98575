"""Billing portal pages: plan and subscription, fees, monthly statements (HTML, CSV, PDF).
Thin: forms parse, services decide, a domain error becomes a message."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import User
from billing import documents, selectors, services
from billing.forms import CancelForm, SubscribeForm
from config.errors import DomainError, ValidationFailed


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise DjangoPermissionDenied
    return user


def _month(value: str) -> date:
    try:
        return selectors.parse_month(value)
    except ValidationFailed as exc:
        raise Http404("No such month.") from exc


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    subscription = selectors.subscription_current(user=user)
    context: dict[str, Any] = {
        "subscription": subscription,
        "plan": subscription.plan if subscription else selectors.default_plan(),
        "limits": selectors.plan_limits(user),
        "usage": selectors.plan_usage_summary(user=user),
        "plans": selectors.plan_list(),
        "totals": selectors.fee_totals(user=user),
        "balances": sorted(selectors.receivable_balance(user=user).items()),
        "fees": selectors.fee_list(user=user).order_by("-created_at", "-id")[:25],
        "subscribe_form": SubscribeForm(),
        "cancel_form": CancelForm(),
    }
    return render(request, "billing/overview.html", context)


@login_required
@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    form = SubscribeForm(request.POST)
    if form.is_valid():
        try:
            result = services.subscription_subscribe(
                user=_user(request), plan_code=form.cleaned_data["plan"], request=request
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            if result.started:
                messages.success(request, f"You are on the {result.subscription.plan.name} plan.")
            else:
                messages.success(
                    request, "Your plan change takes effect at the end of this period."
                )
    else:
        messages.error(request, "Choose one of the plans on offer.")
    return redirect("billing:overview")


@login_required
@require_POST
def cancel(request: HttpRequest) -> HttpResponse:
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the box to confirm the cancellation.")
        return redirect("billing:overview")
    try:
        subscription = services.subscription_cancel(user=_user(request), request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Cancelled: your plan stays until {subscription.period_end:%Y-%m-%d}."
        )
    return redirect("billing:overview")


@login_required
def statements(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    stored = {s.month: s for s in selectors.statement_list(user=user)}
    current = timezone.now().date().replace(day=1)
    months = selectors.statement_months(user=user)
    if current not in months:
        months.insert(0, current)
    rows = [{"month": m, "statement": stored.get(m), "open": m == current} for m in months]
    return render(request, "billing/statements.html", {"rows": rows})


@login_required
def statement(request: HttpRequest, month: str) -> HttpResponse:
    user = _user(request)
    context = documents.statement_context(user=user, month=_month(month))
    return render(request, "billing/statement.html", context)


CSV_BATCH_LINES = 500


def _batched_async(lines: Iterator[str]) -> AsyncIterator[str]:
    """The CSV lines for an ASGI server: read from the database in the sync thread, a batch at
    a time. (Given a plain iterator, Django's ASGI handler would read it whole into memory
    before sending the first byte.)"""

    def take() -> str:
        return "".join(itertools.islice(lines, CSV_BATCH_LINES))

    async def chunks() -> AsyncIterator[str]:
        while chunk := await sync_to_async(take)():
            yield chunk

    return chunks()


@login_required
def statement_csv(request: HttpRequest, month: str) -> StreamingHttpResponse:
    day = _month(month)
    lines = documents.statement_csv_rows(user=_user(request), month=day)
    response = StreamingHttpResponse(
        _batched_async(lines) if isinstance(request, ASGIRequest) else lines,
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="tandem-statement-{day:%Y-%m}.csv"'
    return response


@login_required
def statement_pdf(request: HttpRequest, month: str) -> HttpResponse:
    day = _month(month)
    response = HttpResponse(
        documents.statement_pdf(user=_user(request), month=day), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="tandem-statement-{day:%Y-%m}.pdf"'
    return response
