from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Sign-in, sign-out and failed sign-in signals → audit rows and session tracking.
        from accounts import receivers  # noqa: F401


class TandemAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin whose ``admin.site`` demands a verified TOTP device (staff 2FA)
    and audits every change made through any ModelAdmin (accounts.admin_site).

    Listed in INSTALLED_APPS in place of "django.contrib.admin"."""

    default = False
    default_site = "accounts.admin_site.TandemAdminSite"
