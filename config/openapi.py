"""OpenAPI post-processing: the error answers every operation can give, documented once.

Views declare their own success and domain-specific error answers. The answers that come from
the framework around them (not signed in, not allowed, throttled, bad query or body, unknown
object) are the same everywhere, so this hook adds them wherever a view did not, instead of
every view repeating them. Clients then see every status they can receive, and schemathesis
holds the API to it.
"""

from __future__ import annotations

from typing import Any

from config.api import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: every error answer of the API has this shape.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable, machine-readable reason."},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Field errors: field name → messages.",
        },
    },
    "required": ["type", "title", "status", "code", "detail"],
}

DESCRIPTIONS = {
    400: "Invalid input: `errors` names each field",
    401: "Not signed in, or the credentials are invalid or expired",
    403: "Signed in but not allowed (scope, ownership, KYC or account status)",
    404: "No such object, or not yours",
    429: "Throttled: wait for `Retry-After` seconds",
}


def _problem(status: int, ref: str) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": ref}}},
    }


def add_problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    name = "Problem" if "Problem" in schemas else "ApiProblem"
    schemas.setdefault(name, PROBLEM_SCHEMA)
    ref = f"#/components/schemas/{name}"
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            security = operation.get("security", [])
            statuses = {429}
            # An operation that also lists the empty requirement `{}` admits anonymous callers.
            if security and {} not in security:
                statuses |= {401, 403}
            parameters = operation.get("parameters", [])
            if operation.get("requestBody") or any(p.get("in") == "query" for p in parameters):
                statuses.add(400)
            if "{" in path:
                statuses.add(404)
            for status in sorted(statuses):
                responses.setdefault(str(status), _problem(status, ref))
    return result
