"""Portal forms. They parse and label; rules live in the services, which the views call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.utils import timezone

from accounts.models import ApiKeyScope, User, UserStatus
from accounts.services import AGENT_WALLET_VENUES


class SignInForm(auth_forms.AuthenticationForm):
    """Email + password (USERNAME_FIELD is email). django-axes sees every attempt."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "type": "email"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def clean_username(self) -> str:
        return str(self.cleaned_data.get("username") or "").strip().lower()


class PasswordResetForm(auth_forms.PasswordResetForm):
    def get_users(self, email: str) -> Iterator[Any]:
        # Django's version filters on is_active, which is a property here (status == active).
        candidates = User.objects.filter(email__iexact=email, status=UserStatus.ACTIVE)
        return (user for user in candidates if user.has_usable_password())


class CredentialsForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    current_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed when you already have a password.",
    )
    new_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    confirm_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords differ.")
        return data


EXPIRY_CHOICES = [("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKeyScope.READ],
        help_text="read: view data. trade: place and cancel orders. manage: change settings.",
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    allowed_ips = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "203.0.113.7\n2001:db8::/48"}),
        label="Allowed IPs",
        help_text="One address or CIDR network a line; empty allows any.",
    )

    def clean_allowed_ips(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_ips") or ""
        return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]

    def expires_at(self) -> Any:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None


class AgentWalletCreateForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[
            ("generate", "Generate a new agent key (Tandem keeps it, encrypted)"),
            ("register", "Register an agent I already have"),
        ],
        widget=forms.RadioSelect,
        initial="generate",
    )
    name = forms.CharField(max_length=64, required=False)
    exchange = forms.ChoiceField(choices=[(v, v) for v in AGENT_WALLET_VENUES])
    address = forms.CharField(max_length=64, required=False, help_text="Register only.")
    private_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Register only, optional: lets Tandem trade with this agent.",
    )


class SignatureForm(forms.Form):
    signature = forms.CharField(
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ApprovalChainForm(forms.Form):
    signature_chain_id = forms.IntegerField(min_value=1, max_value=2**53 - 1)


class ExchangeConnectionForm(forms.Form):
    exchange_name = forms.CharField(max_length=32, label="Venue", help_text="e.g. bybit, okx")
    label = forms.CharField(max_length=64, required=False)
    api_key = forms.CharField(
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    api_secret = forms.CharField(
        label="API secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    passphrase = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class TotpConfirmForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6}
        ),
        error_messages={"invalid": "Enter the 6-digit code."},
    )
