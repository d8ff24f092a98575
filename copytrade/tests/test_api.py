"""The copy-trading API: public traders and leaderboard; strategies, allocations, versions,
decisions, follows and simulations of the signed-in customer only (another user's object is a
404); bad input is a 400 with the reason and nothing written; API-key scopes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AgentWalletStatus
from accounts.tests.factories import AgentWalletFactory, UserFactory
from copytrade.models import (
    CopyAllocation,
    CopyDecision,
    CopyStrategy,
    StrategyVersion,
    Trader,
)
from copytrade.services import trader_fills_ingest
from copytrade.tests.conftest import fill
from copytrade.tests.factories import TraderFactory

D = Decimal
pytestmark = pytest.mark.django_db


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"v1:copytrade-api:{name}", kwargs=kwargs or None)


def counts() -> tuple[int, ...]:
    return (
        CopyStrategy.objects.count(),
        CopyAllocation.objects.count(),
        StrategyVersion.objects.count(),
        Trader.objects.count(),
    )


@pytest.fixture
def wallet(user: Any, paper_symbols: Any) -> Any:
    user.kyc_level = 2  # level 1 may copy 10,000 USD; the paper account holds 1,000,000
    user.save()
    return AgentWalletFactory.create(user=user, exchange="paper", max_leverage=20)


@pytest.fixture
def traders(db: Any) -> list[Any]:
    return [TraderFactory.create(tags=["swing"]), TraderFactory.create(tags=["scalp"])]


def create(client: APIClient, body: dict[str, Any], **headers: Any) -> Any:
    return client.post(url("strategy-list"), body, format="json", **headers)


class TestPublic:
    def test_traders_are_listed_and_shown_without_signing_in(
        self, api_client: APIClient, traders: list[Any]
    ) -> None:
        listing = api_client.get(url("trader-list"), {"tag": "swing"})
        assert listing.status_code == 200
        assert [t["id"] for t in listing.json()["results"]] == [str(traders[0].pk)]
        detail = api_client.get(url("trader-detail", pk=traders[1].pk))
        assert detail.status_code == 200
        assert detail.json()["open_positions"] == []

    def test_an_inactive_or_unknown_trader_is_not_found(
        self, api_client: APIClient, traders: list[Any]
    ) -> None:
        traders[0].is_active = False
        traders[0].save()
        assert api_client.get(url("trader-detail", pk=traders[0].pk)).status_code == 404
        assert api_client.get(url("trader-detail", pk=uuid.uuid4())).status_code == 404

    def test_leaderboard_ranks_with_analytics_kpis(
        self, api_client: APIClient, traders: list[Any]
    ) -> None:
        entry = {
            "rank": 1,
            "trader_id": traders[0].pk,
            "alias": "A",
            "exchange": "paper",
            "tags": [],
            "followers": 3,
            "pnl": D("12.5"),
            "copy_score": D("80.00"),
        }
        with mock.patch("analytics.selectors.leaderboard", return_value=[entry]) as board:
            answer = api_client.get(url("leaderboard"), {"period": "7d", "metric": "pnl"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["kpis_available"] is True
        assert body["results"][0]["pnl"] == "12.50000000"
        board.assert_called_once_with(period="7d", metric="pnl", tag=None, min_days=0, limit=50)

    def test_leaderboard_still_answers_when_the_kpi_store_is_down(
        self, api_client: APIClient, traders: list[Any]
    ) -> None:
        with mock.patch("analytics.selectors.leaderboard", side_effect=ConnectionError("down")):
            answer = api_client.get(url("leaderboard"))
        assert answer.status_code == 200
        assert answer.json()["kpis_available"] is False
        assert len(answer.json()["results"]) == 2

    def test_leaderboard_refuses_bad_parameters(self, api_client: APIClient) -> None:
        answer = api_client.get(url("leaderboard"), {"period": "2y"})
        assert answer.status_code == 400
        assert "period" in answer.json()["errors"]


class TestStrategies:
    def test_create_with_allocations_then_activate_pause_resume_terminate(
        self, user_client: APIClient, wallet: Any, traders: list[Any]
    ) -> None:
        answer = create(
            user_client,
            {
                "name": "Two traders",
                "agent_wallet": str(wallet.pk),
                "allocations": [
                    {"trader": str(traders[0].pk), "weight": "0.6"},
                    {"trader": str(traders[1].pk), "weight": "0.4"},
                ],
                "max_position_usd": "5000",
            },
        )
        assert answer.status_code == 201, answer.json()
        body = answer.json()
        assert (body["status"], body["version"]) == ("paused", 1)
        assert [a["weight"] for a in body["allocations"]] == ["0.6000", "0.4000"]
        sid = body["id"]
        for action, status in (("activate", "active"), ("pause", "paused"), ("resume", "active"),
                               ("terminate", "terminated")):  # fmt: skip
            answer = user_client.post(url(f"strategy-{action}", pk=sid), {}, format="json")
            assert answer.status_code == 200, answer.json()
            assert answer.json()["status"] == status
        final = user_client.post(url("strategy-activate", pk=sid), {}, format="json")
        assert final.status_code == 409
        assert final.json()["code"] == "strategy_terminated"

    def test_idempotency_key_on_creation(self, user_client: APIClient, traders: list[Any]) -> None:
        body = {"name": "Once", "allocations": [{"trader": str(traders[0].pk), "weight": "1"}]}
        first = create(user_client, body, HTTP_IDEMPOTENCY_KEY="k-1")
        again = create(user_client, body, HTTP_IDEMPOTENCY_KEY="k-1")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again["Idempotent-Replayed"] == "true"
        assert first.json()["id"] == again.json()["id"]
        other = create(user_client, {**body, "name": "Else"}, HTTP_IDEMPOTENCY_KEY="k-1")
        assert other.status_code == 409
        assert CopyStrategy.objects.count() == 1

    def test_settings_allocations_versions_and_rollback(
        self, user_client: APIClient, traders: list[Any]
    ) -> None:
        sid = create(
            user_client,
            {"name": "S", "allocations": [{"trader": str(traders[0].pk), "weight": "0.5"}]},
        ).json()["id"]
        patched = user_client.patch(
            url("strategy-detail", pk=sid), {"copy_pct": "25"}, format="json"
        )
        assert patched.status_code == 200
        assert (patched.json()["copy_pct"], patched.json()["version"]) == ("25.00000000", 2)
        put = user_client.put(
            url("strategy-allocation", pk=sid, trader_id=traders[1].pk), {"weight": "0.3"},
            format="json",
        )  # fmt: skip
        assert put.status_code == 200
        assert len(put.json()) == 2
        versions = user_client.get(url("strategy-versions", pk=sid)).json()
        assert [v["number"] for v in versions] == [3, 2, 1]
        back = user_client.post(url("strategy-rollback", pk=sid), {"version": 1}, format="json")
        assert back.status_code == 200
        assert back.json()["version"] == 1
        assert back.json()["copy_pct"] == "100.00000000"
        assert [a["trader"] for a in back.json()["allocations"]] == [str(traders[0].pk)]
        gone = user_client.post(url("strategy-rollback", pk=sid), {"version": 9}, format="json")
        assert gone.status_code == 404

    def test_another_users_strategy_and_decisions_are_not_found(
        self, user_client: APIClient, other_user: Any, traders: list[Any]
    ) -> None:
        theirs = APIClient()
        theirs.force_authenticate(other_user)
        sid = create(
            theirs,
            {"name": "Theirs", "allocations": [{"trader": str(traders[0].pk), "weight": "1"}]},
        ).json()["id"]
        for name in ("strategy-detail", "strategy-versions", "strategy-decisions",
                     "strategy-alignment", "strategy-latency", "strategy-simulation"):  # fmt: skip
            assert user_client.get(url(name, pk=sid)).status_code == 404, name
        for name in ("strategy-activate", "strategy-pause", "strategy-terminate"):
            assert user_client.post(url(name, pk=sid), {}, format="json").status_code == 404
        patched = user_client.patch(url("strategy-detail", pk=sid), {"name": "x"}, format="json")
        assert patched.status_code == 404
        assert user_client.get(url("strategy-list")).json()["results"] == []
        decision = CopyDecision.objects.create(
            strategy_id=sid, user=other_user, source_event_id="e", outcome="skipped", coin="ETH"
        )
        assert user_client.get(url("decision-detail", pk=decision.pk)).status_code == 404
        assert user_client.get(url("decision-list")).json()["results"] == []

    def test_anonymous_is_refused(self, api_client: APIClient) -> None:
        assert api_client.get(url("strategy-list")).status_code == 401
        assert api_client.post(url("follow"), {}, format="json").status_code == 401


class TestBadInput:
    """400 with the reason, and nothing written."""

    @pytest.mark.parametrize(
        ("allocations", "field"),
        [
            ([{"weight": "1.5"}], "allocations[0].weight"),
            ([{"weight": "0.7"}, {"weight": "0.6"}], "allocations"),
            ([{"weight": "0"}], "allocations[0].weight"),
        ],
    )
    def test_weights_over_one_or_summing_over_one(
        self, user_client: APIClient, traders: list[Any], allocations: list[Any], field: str
    ) -> None:
        rows = [{"trader": str(traders[i].pk), **a} for i, a in enumerate(allocations)]
        before = counts()
        answer = create(user_client, {"name": "Too much", "allocations": rows})
        assert answer.status_code == 400
        assert field in answer.json()["errors"]
        assert counts() == before

    def test_following_an_unknown_or_inactive_trader(
        self, user_client: APIClient, traders: list[Any]
    ) -> None:
        before = counts()
        unknown = user_client.post(
            url("follow"), {"trader": str(uuid.uuid4()), "copy_pct": "10"}, format="json"
        )
        assert unknown.status_code == 400
        assert unknown.json()["code"] == "unknown_trader"
        traders[0].is_active = False
        traders[0].save()
        inactive = user_client.post(
            url("trader-follow", trader_id=traders[0].pk), {"copy_pct": "10"}, format="json"
        )
        assert inactive.status_code == 400
        assert inactive.json()["code"] == "trader_inactive"
        bad_address = user_client.post(
            url("follow"), {"address": "0x123", "copy_pct": "10"}, format="json"
        )
        assert bad_address.status_code == 400
        assert counts() == before

    def test_activating_without_an_active_agent_wallet(
        self, user_client: APIClient, user: Any, traders: list[Any]
    ) -> None:
        pending = AgentWalletFactory.create(user=user, status=AgentWalletStatus.PENDING)
        rows = [{"trader": str(traders[0].pk), "weight": "1"}]
        before = counts()
        answer = create(
            user_client,
            {"name": "No wallet", "allocations": rows, "agent_wallet": str(pending.pk),
             "activate": True},
        )  # fmt: skip
        assert answer.status_code == 400
        assert answer.json()["code"] == "no_active_agent_wallet"
        assert "agent_wallet" in answer.json()["errors"]
        assert counts() == before
        sid = create(user_client, {"name": "Later", "allocations": rows}).json()["id"]
        answer = user_client.post(url("strategy-activate", pk=sid), {}, format="json")
        assert answer.status_code == 400
        assert CopyStrategy.objects.get(pk=sid).status == "paused"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("max_position_usd", "-100"),
            ("min_order_usd", "-5"),
            ("slippage_bps", -1),
            ("max_leverage", "-2"),
            ("copy_pct", "0"),
            ("rebalance_threshold_bps", -10),
            ("fixed_notional_usd", "-1"),
        ],
    )
    def test_negative_limits(
        self, user_client: APIClient, traders: list[Any], field: str, value: Any
    ) -> None:
        before = counts()
        answer = create(user_client, {"name": "Negative", field: value})
        assert answer.status_code == 400, answer.json()
        assert field in answer.json()["errors"]
        assert counts() == before

    def test_edits_of_an_existing_strategy_over_one_or_negative(
        self, user_client: APIClient, traders: list[Any]
    ) -> None:
        """The same rules on every later write: refused with the reason, nothing changed (no
        weight, no setting, no new version)."""
        third = TraderFactory.create()
        sid = create(
            user_client,
            {"name": "Edits", "allocations": [{"trader": str(traders[0].pk), "weight": "0.7"}]},
        ).json()["id"]

        def state() -> tuple[Any, ...]:
            strategy = CopyStrategy.objects.get(pk=sid)
            return (
                sorted(strategy.allocations.values_list("trader_id", "weight")),
                strategy.max_position_usd,
                strategy.min_order_usd,
                strategy.versions.count(),
            )

        before = state()
        over = user_client.put(
            url("strategy-allocation", pk=sid, trader_id=traders[1].pk), {"weight": "0.4"},
            format="json",
        )  # fmt: skip
        assert over.status_code == 400
        assert over.json()["code"] == "weights_over_one"
        assert "1" in over.json()["detail"]
        for weight in ("1.01", "0", "-0.1"):
            single = user_client.put(
                url("strategy-allocation", pk=sid, trader_id=traders[1].pk), {"weight": weight},
                format="json",
            )  # fmt: skip
            assert single.status_code == 400, weight
            assert single.json()["errors"], weight
        replaced = user_client.put(
            url("strategy-allocations", pk=sid),
            {"allocations": [{"trader": str(traders[1].pk), "weight": "0.6"},
                             {"trader": str(third.pk), "weight": "0.6"}]},
            format="json",
        )  # fmt: skip
        assert replaced.status_code == 400
        assert replaced.json()["code"] == "weights_over_one"
        for field, value in (("max_position_usd", "-1"), ("min_order_usd", "-5")):
            patched = user_client.patch(
                url("strategy-detail", pk=sid), {field: value}, format="json"
            )
            assert patched.status_code == 400, field
            assert field in patched.json()["errors"]
        assert state() == before

    def test_allocating_to_an_unknown_or_inactive_trader(
        self, user_client: APIClient, traders: list[Any]
    ) -> None:
        traders[1].is_active = False
        traders[1].save()
        before = counts()
        unknown = create(
            user_client,
            {"name": "U", "allocations": [{"trader": str(uuid.uuid4()), "weight": "0.5"}]},
        )
        assert unknown.status_code == 400
        assert unknown.json()["code"] == "unknown_trader"
        inactive = create(
            user_client,
            {"name": "I", "allocations": [{"trader": str(traders[1].pk), "weight": "0.5"}]},
        )
        assert inactive.status_code == 400
        assert inactive.json()["code"] == "trader_inactive"
        assert "allocations[0].trader" in inactive.json()["errors"]
        assert counts() == before
        sid = create(user_client, {"name": "Fine"}).json()["id"]
        before = counts()
        added = user_client.put(
            url("strategy-allocation", pk=sid, trader_id=traders[1].pk), {"weight": "0.5"},
            format="json",
        )  # fmt: skip
        assert added.status_code == 400
        assert added.json()["code"] == "trader_inactive"
        assert counts() == before

    @pytest.mark.parametrize("problem", ["none", "revoked", "suspended", "no_trade_permission"])
    def test_activating_without_a_usable_agent_wallet(
        self, user_client: APIClient, user: Any, traders: list[Any], problem: str
    ) -> None:
        body: dict[str, Any] = {
            "name": problem, "allocations": [{"trader": str(traders[0].pk), "weight": "1"}],
        }  # fmt: skip
        wallet = AgentWalletFactory.create(user=user) if problem != "none" else None
        if wallet is not None:
            body["agent_wallet"] = str(wallet.pk)
        sid = create(user_client, body).json()["id"]
        if wallet is not None:  # chosen while usable, then revoked, suspended or narrowed
            if problem == "no_trade_permission":
                wallet.permissions = {"trade": False, "withdraw": False}
            else:
                wallet.status = problem
            wallet.save()
        before = (counts(), CopyStrategy.objects.get(pk=sid).started_at)
        answer = user_client.post(url("strategy-activate", pk=sid), {}, format="json")
        assert answer.status_code == 400
        assert answer.json()["code"] == "no_active_agent_wallet"
        assert "agent_wallet" in answer.json()["errors"]
        strategy = CopyStrategy.objects.get(pk=sid)
        assert strategy.status == "paused"
        assert (counts(), strategy.started_at) == before

    def test_activation_checks_kyc_risk_limits_and_a_busy_wallet(
        self, user_client: APIClient, user: Any, wallet: Any, traders: list[Any]
    ) -> None:
        """Each check refuses with its own code and reason; the strategy stays paused."""
        from django.utils import timezone

        from copytrade.models import FollowerEquity
        from trading.services.risk import risk_limit_set

        FollowerEquity.objects.update_or_create(
            agent_wallet=wallet,
            defaults={"account_value": D(50_000), "fetched_at": timezone.now()},
        )
        rows = [{"trader": str(traders[0].pk), "weight": "1"}]
        body = {"name": "A", "allocations": rows, "agent_wallet": str(wallet.pk)}
        sid = create(user_client, {**body, "max_leverage": "10"}).json()["id"]

        def activate(pk: str) -> Any:
            return user_client.post(url("strategy-activate", pk=pk), {}, format="json")

        user.kyc_level = 1  # basic: at most KYC_LEVEL1_MAX_EQUITY_USD (10,000) under copy
        user.save()
        answer = activate(sid)
        assert (answer.status_code, answer.json()["code"]) == (400, "copy_not_allowed")
        assert "KYC level 1" in answer.json()["detail"]
        user.kyc_level = 2
        user.save()
        risk_limit_set(user=user, max_leverage=D(3))
        answer = activate(sid)
        assert (answer.status_code, answer.json()["code"]) == (400, "risk_limit")
        assert "3x" in answer.json()["detail"]
        assert CopyStrategy.objects.get(pk=sid).status == "paused"
        risk_limit_set(user=user, max_leverage=D(20))
        assert activate(sid).status_code == 200
        # A second strategy needs a plan with room for it (the default plan allows one).
        from datetime import timedelta

        from accounts.tests.factories import StaffFactory
        from billing.models import Plan
        from billing.services import subscription_grant

        subscription_grant(
            user=user, plan=Plan.objects.get(code="pro"), actor=StaffFactory.create(),
            period_start=timezone.now() - timedelta(days=1),
            period_end=timezone.now() + timedelta(days=30),
        )  # fmt: skip
        created = create(user_client, {**body, "name": "B"})
        assert created.status_code == 201, created.json()
        other = created.json()["id"]
        before = counts()
        answer = activate(other)
        assert (answer.status_code, answer.json()["code"]) == (400, "agent_wallet_in_use")
        assert CopyStrategy.objects.get(pk=other).status == "paused"
        assert counts() == before

    def test_fixed_sizing_needs_its_notional(self, user_client: APIClient) -> None:
        answer = create(user_client, {"name": "Fixed", "size_mode": "fixed"})
        assert answer.status_code == 400
        assert "fixed_notional_usd" in answer.json()["errors"]


class TestScopes:
    def test_reads_need_read_and_writes_need_trade(
        self, api_key_client: Callable[..., APIClient], user: Any, traders: list[Any]
    ) -> None:
        writer = api_key_client("read", "trade")
        sid = create(
            writer, {"name": "K", "allocations": [{"trader": str(traders[0].pk), "weight": "1"}]}
        ).json()["id"]
        reader = api_key_client("read")
        assert reader.get(url("strategy-detail", pk=sid)).status_code == 200
        refused = reader.post(url("strategy-pause", pk=sid), {}, format="json")
        assert refused.status_code == 403
        assert refused.json()["code"] == "insufficient_scope"
        assert create(reader, {"name": "No"}).status_code == 403
        # a simulation reads only
        sim = reader.post(
            url("strategy-simulate"),
            {"allocations": [{"trader": str(traders[0].pk), "weight": "1"}], "days": 7},
            format="json",
        )
        assert sim.status_code == 200, sim.json()


class TestFollowDecisionsSimulation:
    def test_follow_with_auto_copy_then_see_the_decisions(
        self,
        user_client: APIClient,
        user: Any,
        leader: Any,
        paper_symbols: Any,
        market: None,
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        from django.utils import timezone

        from copytrade.models import FollowerEquity

        wallet = AgentWalletFactory.create(user=user, exchange="paper", max_leverage=20)
        FollowerEquity.objects.create(
            agent_wallet=wallet, account_value=D(10_000), fetched_at=timezone.now()
        )
        answer = user_client.post(
            url("trader-follow", trader_id=leader.pk),
            {"copy_pct": "10", "auto_copy": True, "agent_wallet": str(wallet.pk)},
            format="json",
        )
        assert answer.status_code == 201, answer.json()
        strategy = answer.json()
        assert (strategy["mode"], strategy["status"], strategy["copy_pct"]) == (
            "single_trader", "active", "10.00000000",
        )  # fmt: skip
        t = int(time.time() * 1000) + 5
        with django_capture_on_commit_callbacks(execute=True):
            trader_fills_ingest(
                trader=leader,
                fills=[
                    fill("ETH", "buy", "100", "2500", start="0", time_ms=t),
                    fill("ETH", "buy", "0.1", "2500", start="100", time_ms=t + 1),
                ],
            )
        decisions = user_client.get(url("strategy-decisions", pk=strategy["id"])).json()
        rows = decisions["results"]
        assert [(r["outcome"], r["reason_code"]) for r in rows] == [
            ("skipped", "below_minimum"),
            ("placed", ""),
        ]
        assert rows[1]["quantity"] == "1.00000000"  # 10 % of 10k/100k of 100 ETH
        assert rows[1]["order_status"] == "filled"
        assert rows[0]["reason"].startswith("below minimum")
        skipped = user_client.get(url("decision-list"), {"outcome": "skipped"}).json()["results"]
        assert len(skipped) == 1
        latency = user_client.get(url("strategy-latency", pk=strategy["id"])).json()
        assert latency["orders"] == 1
        assert latency["submit_ms_p50"] is not None
        alignment = user_client.get(url("strategy-alignment", pk=strategy["id"]))
        assert alignment.status_code == 200
        simulation = user_client.get(url("strategy-simulation", pk=strategy["id"]), {"days": 1})
        assert simulation.status_code == 200
        assert simulation.json()["copied"] == 1

    def test_follow_by_address_watches_a_new_trader(self, user_client: APIClient) -> None:
        address = "0x" + "ab" * 20
        answer = user_client.post(
            url("follow"), {"address": address, "copy_pct": "5"}, format="json"
        )
        assert answer.status_code == 201
        trader = Trader.objects.get(src_uid=address)
        assert trader.source == "follow"
        someone = APIClient()
        someone.force_authenticate(UserFactory.create())
        again = someone.post(url("follow"), {"address": address, "copy_pct": "5"}, format="json")
        assert again.status_code == 201, again.json()
        assert Trader.objects.filter(src_uid=address).count() == 1  # reused


def test_openapi_schema_documents_the_endpoints() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(api_version="v1").get_schema(request=None, public=True)
    paths = schema["paths"]
    create_op = paths["/api/v1/strategies/"]["post"]
    assert {"201", "200", "400", "409"} <= set(create_op["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create_op["parameters"])
    for path in (
        "/api/v1/strategies/{id}/activate/",
        "/api/v1/strategies/{id}/pause/",
        "/api/v1/strategies/{id}/resume/",
        "/api/v1/strategies/{id}/terminate/",
        "/api/v1/strategies/{id}/allocations/",
        "/api/v1/strategies/{id}/allocations/{trader_id}/",
        "/api/v1/strategies/{id}/versions/",
        "/api/v1/strategies/{id}/rollback/",
        "/api/v1/strategies/{id}/decisions/",
        "/api/v1/strategies/{id}/simulation/",
        "/api/v1/strategies/simulate/",
        "/api/v1/traders/",
        "/api/v1/traders/{id}/",
        "/api/v1/traders/{trader_id}/follow/",
        "/api/v1/follows/",
        "/api/v1/leaderboard/",
        "/api/v1/decisions/",
    ):
        assert path in paths, path
    decision = schema["components"]["schemas"]["Decision"]["properties"]
    assert decision["quantity"]["type"] == "string"


def test_the_plans_limits_apply_to_strategies_and_portfolios(
    user_client: APIClient, user: Any, traders: list[Any]
) -> None:
    """billing's plan_limit_check is called on creation (strategies, traders per portfolio)."""
    from config.errors import ValidationFailed

    def refuse(**kwargs: Any) -> None:
        if kwargs["resource"] == "strategies":
            raise ValidationFailed(
                "The Free plan allows 0 copy strategies.", code="plan_limit_reached",
                field="strategies",
            )  # fmt: skip

    with mock.patch("billing.services.plan_limit_check", side_effect=refuse) as check:
        before = counts()
        answer = create(user_client, {"name": "Over the plan"})
        assert answer.status_code == 400
        assert answer.json()["code"] == "plan_limit_reached"
        assert counts() == before
    assert check.call_args.kwargs["resource"] == "strategies"
