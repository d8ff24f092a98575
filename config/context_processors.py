"""Template context every portal page needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    return {
        "site_name": "Tandem",
        "default_venue": settings.TANDEM["DEFAULT_VENUE"],
    }
