"""Portal forms. They parse and label; every rule lives in copytrade.services (a refusal there
comes back onto the form, field by field)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms

from copytrade.models import SizeMode, StrategyMode


class StrategySettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(choices=StrategyMode.choices, initial=StrategyMode.PORTFOLIO)
    size_mode = forms.ChoiceField(
        choices=SizeMode.choices,
        initial=SizeMode.PROPORTIONAL,
        help_text="Proportional: your equity / the trader's x weight x copy %. Fixed: the same "
        "USD amount per trade. Multiplier: a multiple of the trader's size.",
    )
    copy_pct = forms.DecimalField(
        label="Copy %", initial=Decimal(100), max_digits=9, decimal_places=4
    )
    fixed_notional_usd = forms.DecimalField(
        label="Fixed USD per trade", required=False, max_digits=18, decimal_places=2
    )
    multiplier = forms.DecimalField(required=False, max_digits=12, decimal_places=6)
    inverse = forms.BooleanField(required=False, help_text="Take the opposite side.")
    max_leverage = forms.DecimalField(initial=Decimal(5), max_digits=5, decimal_places=2)
    max_position_usd = forms.DecimalField(
        label="Max position (USD)", required=False, max_digits=18, decimal_places=2
    )
    slippage_bps = forms.IntegerField(
        label="Slippage (bps)", initial=10, help_text="How far from the trader's price you pay."
    )
    min_order_usd = forms.DecimalField(
        label="Minimum order (USD)", initial=Decimal(5), max_digits=18, decimal_places=2
    )
    follow_new_entries_only = forms.BooleanField(
        required=False, initial=True, help_text="Ignore positions the traders hold already."
    )
    auto_rebalance = forms.BooleanField(required=False, initial=True)
    rebalance_threshold_bps = forms.IntegerField(label="Rebalance threshold (bps)", initial=50)
    agent_wallet = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args: Any, wallets: list[Any] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["agent_wallet"]).choices = [
            ("", "— choose later —")
        ] + [(str(w.pk), f"{w.name or w.addr} ({w.exchange}, {w.status})") for w in wallets]

    def settings(self) -> dict[str, Any]:
        """The cleaned settings as the services take them."""
        data = dict(self.cleaned_data)
        data.pop("agent_wallet", None)
        data.pop("name", None)
        return data


class FollowForm(forms.Form):
    copy_pct = forms.DecimalField(
        label="Copy %", initial=Decimal(10), max_digits=9, decimal_places=4,
        help_text="Of the size proportional to your equity and the trader's.",
    )  # fmt: skip
    agent_wallet = forms.ChoiceField(required=False, choices=())
    auto_copy = forms.BooleanField(required=False, label="Start copying now")

    def __init__(self, *args: Any, wallets: list[Any] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["agent_wallet"]).choices = [
            ("", "— choose later —")
        ] + [(str(w.pk), f"{w.name or w.addr} ({w.exchange})") for w in wallets]


class LeaderboardForm(forms.Form):
    period = forms.ChoiceField(
        choices=[("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("all", "All time")],
        initial="30d",
        required=False,
    )
    metric = forms.ChoiceField(
        choices=[
            ("copy_score", "Copy score"),
            ("pnl", "PnL"),
            ("roi", "ROI"),
            ("win_rate", "Win rate"),
            ("sharpe", "Sharpe"),
            ("drawdown", "Drawdown"),
            ("followers", "Followers"),
        ],
        initial="copy_score",
        required=False,
    )
    tag = forms.ChoiceField(required=False, choices=())
    min_days = forms.IntegerField(required=False, min_value=0, max_value=36_500, initial=0,
                                  label="Min. history (days)")  # fmt: skip

    def __init__(self, *args: Any, tags: list[str] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["tag"]).choices = [("", "All tags")] + [
            (t, t) for t in tags
        ]
