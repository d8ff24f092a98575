"""Billing portal forms: they parse; billing.services decides."""

from __future__ import annotations

from typing import Any

from django import forms

from billing import selectors


class SubscribeForm(forms.Form):
    plan = forms.ChoiceField(label="Plan")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plan_field = self.fields["plan"]
        assert isinstance(plan_field, forms.ChoiceField)
        plan_field.choices = [(p.code, p.name) for p in selectors.plan_list()]


class CancelForm(forms.Form):
    confirm = forms.BooleanField(label="Cancel at the end of the current period", required=True)
