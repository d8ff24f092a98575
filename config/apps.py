from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project package as an app: project-wide commands (check_stores, seed_demo)."""

    name = "config"
    verbose_name = "Tandem"
