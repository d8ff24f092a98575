from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from trading import checks  # noqa: F401 - registers the system checks
