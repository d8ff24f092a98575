from django.apps import AppConfig


class CopyTradeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "copytrade"
    verbose_name = "Copy trading"
