"""Copy-trading portal pages: the leaderboard, trader profiles, the strategy builder (weights
with a running total, risk settings, a simulation before starting) and strategy pages with the
engine's decisions -- server-rendered, HTMX for the live bits."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import agent_wallet_list
from config.errors import DomainError, NotFound
from copytrade import selectors, services
from copytrade.forms import FollowForm, LeaderboardForm, StrategySettingsForm
from copytrade.models import CopyStrategy, DecisionOutcome

SIMULATED = (
    "size_mode", "copy_pct", "fixed_notional_usd", "multiplier", "inverse", "max_leverage",
    "max_position_usd", "slippage_bps", "min_order_usd", "follow_new_entries_only",
)  # fmt: skip


def _form_error(form: Form, exc: DomainError) -> None:
    if not exc.fields:
        form.add_error(None, exc.message)
        return
    for field, problems in exc.fields.items():
        for problem in problems:
            target = field if field in form.fields else None
            form.add_error(target, problem if target else f"{field}: {problem}")


def _strategy(request: HttpRequest, strategy_id: uuid.UUID) -> CopyStrategy:
    try:
        return selectors.strategy_get(user=request.user, strategy_id=strategy_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


# --------------------------------------------------------------------------- public pages


def leaderboard(request: HttpRequest) -> HttpResponse:
    form = LeaderboardForm(request.GET or None, tags=selectors.trader_tags())
    query: dict[str, Any] = {"period": "30d", "metric": "copy_score", "tag": None, "min_days": 0}
    if form.is_bound and form.is_valid():
        query.update({k: v for k, v in form.cleaned_data.items() if v not in (None, "")})
    board = selectors.leaderboard(
        period=str(query["period"]),
        metric=str(query["metric"]),
        tag=str(query["tag"]) if query["tag"] else None,
        min_days=int(query["min_days"] or 0),
        limit=100,
    )
    context = {"form": form, "entries": board["entries"], "kpis": board["kpis_available"],
               "query": query}  # fmt: skip
    template = "copytrade/_leaderboard_rows.html" if request.htmx else "copytrade/leaderboard.html"  # type: ignore[attr-defined]
    return render(request, template, context)


def trader_detail(request: HttpRequest, trader_id: uuid.UUID) -> HttpResponse:
    try:
        trader = selectors.trader_get(trader_id=trader_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    kpis: dict[str, Any] = {}
    try:
        from analytics.selectors import trader_kpis

        kpis = trader_kpis(trader_id=trader.pk).get("periods", {})
    except Exception:  # the profile works without ClickHouse
        kpis = {}
    wallets = list(agent_wallet_list(user=request.user)) if request.user.is_authenticated else []
    context = {
        "trader": trader,
        "positions": selectors.trader_positions_open(trader=trader),
        "fills": selectors.trader_fills_recent(trader=trader, limit=30),
        "kpis": [(p, kpis[p]) for p in ("1d", "7d", "30d", "all") if p in kpis],
        "follow_form": FollowForm(wallets=wallets),
    }
    return render(request, "copytrade/trader_detail.html", context)


@login_required
@require_POST
def trader_follow(request: HttpRequest, trader_id: uuid.UUID) -> HttpResponse:
    wallets = list(agent_wallet_list(user=request.user))  # type: ignore[arg-type]
    form = FollowForm(request.POST, wallets=wallets)
    if form.is_valid():
        try:
            result = services.trader_follow(
                user=request.user,  # type: ignore[arg-type]
                trader_id=trader_id,
                copy_pct=form.cleaned_data["copy_pct"],
                agent_wallet_id=form.cleaned_data["agent_wallet"] or None,
                auto_copy=form.cleaned_data["auto_copy"],
                actor=request.user,  # type: ignore[arg-type]
                request=request,
            )
            messages.success(request, "You follow this trader now.")
            return redirect("copytrade:strategy_detail", strategy_id=result.strategy.pk)
        except DomainError as exc:
            _form_error(form, exc)
    for error in form.errors.values():
        messages.error(request, " ".join(str(e) for e in error))
    return redirect("copytrade:trader_detail", trader_id=trader_id)


# --------------------------------------------------------------------------- strategies


@login_required
def strategy_list(request: HttpRequest) -> HttpResponse:
    strategies = selectors.strategy_list(user=request.user).order_by("-created_at")
    return render(request, "copytrade/strategy_list.html", {"strategies": strategies})


def _allocations_from(request: HttpRequest) -> list[dict[str, Any]]:
    """``weight_<trader id>`` inputs with a value, as the services take allocations."""
    rows = []
    for key, value in request.POST.items():
        if key.startswith("weight_") and str(value).strip():
            rows.append({"trader": key.removeprefix("weight_"), "weight": str(value).strip()})
    return rows


def _builder_context(request: HttpRequest, form: StrategySettingsForm) -> dict[str, Any]:
    posted = {
        k.removeprefix("weight_"): v for k, v in request.POST.items() if k.startswith("weight_")
    }
    traders = list(selectors.trader_directory().order_by("-public_score", "alias")[:200])
    for trader in traders:
        trader.weight_value = posted.get(str(trader.pk), "")  # type: ignore[attr-defined]
    return {"form": form, "traders": traders, "total": _total(posted.values())}


def _total(values: Any) -> dict[str, Any]:
    total = Decimal(0)
    bad = False
    for value in values:
        text = str(value).strip()
        if not text:
            continue
        try:
            total += Decimal(text)
        except InvalidOperation:
            bad = True
    return {"value": total, "over": total > 1, "bad": bad, "percent": total * 100}


@login_required
@require_http_methods(["GET", "POST"])
def strategy_builder(request: HttpRequest) -> HttpResponse:
    wallets = list(agent_wallet_list(user=request.user))  # type: ignore[arg-type]
    form = StrategySettingsForm(request.POST or None, wallets=wallets)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.strategy_create(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                allocations=_allocations_from(request),
                agent_wallet_id=form.cleaned_data["agent_wallet"] or None,
                activate=request.POST.get("activate") == "1",
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                **form.settings(),
            )
            messages.success(request, "Strategy created.")
            return redirect("copytrade:strategy_detail", strategy_id=result.strategy.pk)
        except DomainError as exc:
            _form_error(form, exc)
    return render(request, "copytrade/strategy_builder.html", _builder_context(request, form))


@login_required
@require_POST
def weights_total(request: HttpRequest) -> HttpResponse:
    """HTMX: the running total of the builder's weights."""
    posted = [v for k, v in request.POST.items() if k.startswith("weight_")]
    return render(request, "copytrade/_weights_total.html", {"total": _total(posted)})


@login_required
@require_POST
def strategy_simulate(request: HttpRequest) -> HttpResponse:
    """HTMX: the builder's draft run over the traders' recorded fills (nothing saved)."""
    wallets = list(agent_wallet_list(user=request.user))  # type: ignore[arg-type]
    form = StrategySettingsForm(request.POST, wallets=wallets)
    context: dict[str, Any] = {}
    if form.is_valid():
        try:
            result = services.copy_simulate(
                allocations=_allocations_from(request),
                settings={k: v for k, v in form.settings().items() if k in SIMULATED},
                days=request.POST.get("days") or 30,
                equity=request.POST.get("equity") or None,
            )
            context["result"] = result.as_dict()
        except DomainError as exc:
            context["error"] = exc.message
    else:
        context["error"] = "; ".join(
            f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()
        )
    return render(request, "copytrade/_simulation.html", context)


@login_required
def strategy_detail(request: HttpRequest, strategy_id: uuid.UUID) -> HttpResponse:
    strategy = _strategy(request, strategy_id)
    outcome = request.GET.get("outcome")
    decisions = selectors.decision_list(
        user=request.user,
        strategy_id=strategy.pk,
        outcome=outcome if outcome in DecisionOutcome.values else None,
    )
    page = Paginator(decisions, 50).get_page(request.GET.get("page"))
    context = {
        "strategy": strategy,
        "allocations": selectors.strategy_allocations(strategy=strategy),
        "versions": selectors.strategy_versions(strategy=strategy)[:20],
        "positions": selectors.strategy_positions(strategy=strategy),
        "summary": selectors.decision_summary(strategy=strategy),
        "latency": selectors.strategy_latency(strategy=strategy),
        "page": page,
        "outcome": outcome or "",
        "blocked": services.activation_block_reason(strategy)
        if strategy.status in ("paused", "error")
        else None,
    }
    template = "copytrade/_decisions.html" if request.htmx else "copytrade/strategy_detail.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@login_required
@require_POST
def strategy_action(request: HttpRequest, strategy_id: uuid.UUID, action: str) -> HttpResponse:
    strategy = _strategy(request, strategy_id)
    actor: Any = request.user
    try:
        if action in ("activate", "resume"):
            services.strategy_activate(strategy=strategy, actor=actor, request=request)
            messages.success(request, "Copying started.")
        elif action == "pause":
            services.strategy_pause(
                strategy=strategy, reason="paused by the customer", actor=actor, request=request
            )
            messages.success(request, "Copying paused.")
        elif action == "terminate":
            services.strategy_terminate(
                strategy=strategy, reason="terminated by the customer", actor=actor,
                request=request,
            )  # fmt: skip
            messages.success(request, "Strategy terminated.")
        elif action == "rollback":
            number = int(request.POST.get("version") or 0)
            services.strategy_rollback(
                strategy=strategy, number=number, actor=actor, request=request
            )
            messages.success(request, f"Rolled back to version {number}.")
        else:
            raise Http404("Unknown action.")
    except (DomainError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    return redirect("copytrade:strategy_detail", strategy_id=strategy.pk)
