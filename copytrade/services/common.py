"""Input parsing shared by the copytrade services: every refusal is a ValidationFailed with the
field it is about, raised before anything is written."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from config.errors import ValidationFailed


def parse_decimal(
    value: Any,
    field: str,
    *,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    exclusive_minimum: bool = False,
    allow_none: bool = False,
) -> Decimal | None:
    """A finite Decimal within bounds, or a ValidationFailed naming ``field``."""
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationFailed("This field is required.", field=field, code="required")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed("Enter a number.", field=field, code="invalid_number") from exc
    if not number.is_finite():
        raise ValidationFailed("Enter a finite number.", field=field, code="invalid_number")
    if minimum is not None:
        if exclusive_minimum and number <= minimum:
            raise ValidationFailed(
                f"Must be greater than {minimum.normalize()}.", field=field, code="out_of_range"
            )
        if not exclusive_minimum and number < minimum:
            raise ValidationFailed(
                f"Must be at least {minimum.normalize()}.", field=field, code="out_of_range"
            )
    if maximum is not None and number > maximum:
        raise ValidationFailed(
            f"Must be at most {maximum.normalize()}.", field=field, code="out_of_range"
        )
    return number


def parse_int(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("Enter a whole number.", field=field, code="invalid_number") from exc
    if not minimum <= number <= maximum:
        raise ValidationFailed(
            f"Must be between {minimum} and {maximum}.", field=field, code="out_of_range"
        )
    return number


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValidationFailed("Enter true or false.", field=field, code="invalid_boolean")


def fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def jsonable(value: Any) -> Any:
    """Decimals and UUIDs as strings, recursively (version configs, audit rows)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)
