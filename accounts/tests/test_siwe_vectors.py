"""The EIP-4361 parser and verifier against the reference implementation's shared vectors,
plus synthetic cases signed with eth-account that run even without the shared data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from rest_framework.test import APIClient

from accounts import siwe
from accounts.tests.conftest import personal_sign

CAMEL = {
    "chainId": "chain_id",
    "issuedAt": "issued_at",
    "expirationTime": "expiration_time",
    "notBefore": "not_before",
    "requestId": "request_id",
}
OPTIONS = ("domainBinding", "matchNonce", "time", "scheme")


def _load(shared_data: Path, name: str) -> dict[str, Any]:
    return json.loads((shared_data / "siwe" / name).read_text())


def _fields(case: dict[str, Any]) -> dict[str, Any]:
    return {CAMEL.get(k, k): v for k, v in case.items() if k not in (*OPTIONS, "signature")}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- shared vectors


def test_every_positive_vector_parses_to_its_fields(shared_data: Path) -> None:
    cases = _load(shared_data, "parsing_positive.json")
    assert len(cases) == 19
    for name, case in cases.items():
        message = siwe.parse_message(case["message"])
        parsed = message.to_dict()
        parsed["resources"] = list(parsed["resources"])
        for key, value in case["fields"].items():
            assert parsed[CAMEL.get(key, key)] == value, (name, key)
        # And the text form round-trips exactly (it is what the wallet signed).
        assert message.prepare_message() == case["message"], name


def test_every_negative_vector_is_refused_with_a_clear_error(shared_data: Path) -> None:
    cases = _load(shared_data, "parsing_negative.json")
    assert len(cases) == 29
    for name, text in cases.items():
        with pytest.raises(siwe.SiweError) as info:
            siwe.parse_message(text)
        assert info.value.code == "invalid_message", name
        assert info.value.message, name


def test_every_negative_object_is_refused(shared_data: Path) -> None:
    cases = _load(shared_data, "parsing_negative_objects.json")
    assert len(cases) == 18
    for name, fields in cases.items():
        with pytest.raises(siwe.SiweError) as info:
            siwe.SiweMessage.build(**_fields(fields))
        assert info.value.code == "invalid_message", name


def _verify_case(case: dict[str, Any]) -> str:
    message = siwe.SiweMessage.build(**_fields(case))
    return siwe.verify(
        message,
        text=message.prepare_message(),
        signature=case["signature"],
        domain=case.get("domainBinding"),
        nonce=case.get("matchNonce"),
        scheme=case.get("scheme"),
        now=_time(case["time"]) if "time" in case else None,
    )


def test_every_positive_verification_vector_verifies(shared_data: Path) -> None:
    cases = _load(shared_data, "verification_positive.json")
    assert cases
    for name, case in cases.items():
        assert _verify_case(case) == case["address"], name


EXPECTED_NEGATIVE_CODES = {
    "expired message": "expired",
    "domain binding": "wrong_domain",
    "custom time": "expired",
    "custom nonce": "nonce_mismatch",
    "malformed signature": "bad_signature",
    "wrong signature": "bad_signature",
    "not yet valid": "not_yet_valid",
    "invalid issuedAt": "invalid_message",
    "invalid notBefore": "invalid_message",
    "invalid expirationTime": "invalid_message",
}


def test_every_negative_verification_vector_fails_with_its_reason(shared_data: Path) -> None:
    cases = _load(shared_data, "verification_negative.json")
    assert set(cases) == set(EXPECTED_NEGATIVE_CODES)
    for name, case in cases.items():
        with pytest.raises(siwe.SiweError) as info:
            _verify_case(case)
        assert info.value.code == EXPECTED_NEGATIVE_CODES[name], name


@pytest.mark.django_db
def test_negative_vectors_through_the_api_are_4xx_never_500(
    shared_data: Path, api_client: APIClient, no_throttle: None
) -> None:
    """Every refused message answers 400/401 with a code; nothing is created."""
    from accounts.models import User

    before = User.objects.count()
    texts = list(_load(shared_data, "parsing_negative.json").values())
    for case in _load(shared_data, "verification_negative.json").values():
        try:
            texts.append(siwe.SiweMessage.build(**_fields(case)).prepare_message())
        except siwe.SiweError:
            continue
    for text in texts:
        response = api_client.post(
            "/api/v1/auth/siwe",
            {"message": text, "signature": "0x" + "ab" * 65, "mode": "jwt"},
            format="json",
        )
        assert response.status_code in (400, 401), (text, response.content)
        assert response.json()["code"], text
    assert User.objects.count() == before


# --------------------------------------------------------------------------- synthetic


def _message(**overrides: Any) -> siwe.SiweMessage:
    account = overrides.pop("account", None) or Account.create()
    fields: dict[str, Any] = {
        "domain": "tandem.example",
        "address": account.address,
        "statement": "Sign in to Tandem.",
        "uri": "https://tandem.example/login",
        "version": "1",
        "chain_id": 42161,
        "nonce": "a1b2c3d4e5f6",
        "issued_at": "2030-01-01T00:00:00.000Z",
    }
    fields.update(overrides)
    return siwe.SiweMessage.build(**fields)


def test_synthetic_signed_message_verifies_and_recovers_the_signer() -> None:
    account = Account.create()
    message = _message(account=account, expiration_time="2030-01-01T00:10:00Z")
    text = message.prepare_message()
    signer = siwe.verify(
        message,
        text=text,
        signature=personal_sign(account, text),
        domain="tandem.example",
        scheme="https",
        uri_origin="https://tandem.example",
        chain_ids=[42161],
        nonce="a1b2c3d4e5f6",
        now=datetime(2030, 1, 1, 0, 5, tzinfo=UTC),
    )
    assert signer == account.address


@pytest.mark.parametrize(
    ("expectation", "code"),
    [
        ({"domain": "evil.example"}, "wrong_domain"),
        ({"uri_origin": "https://other.example"}, "wrong_uri"),
        ({"chain_ids": [1]}, "wrong_chain"),
        ({"nonce": "zzzzzzzzzz"}, "nonce_mismatch"),
        ({"now": datetime(2030, 1, 1, 0, 11, tzinfo=UTC)}, "expired"),
    ],
)
def test_synthetic_expectation_failures(expectation: dict[str, Any], code: str) -> None:
    account = Account.create()
    message = _message(account=account, expiration_time="2030-01-01T00:10:00Z")
    text = message.prepare_message()
    kwargs: dict[str, Any] = {"now": datetime(2030, 1, 1, 0, 5, tzinfo=UTC), **expectation}
    with pytest.raises(siwe.SiweError) as info:
        siwe.verify(message, text=text, signature=personal_sign(account, text), **kwargs)
    assert info.value.code == code


def test_synthetic_signature_by_another_key_is_refused() -> None:
    message = _message()
    text = message.prepare_message()
    with pytest.raises(siwe.SiweError) as info:
        siwe.verify(message, text=text, signature=personal_sign(Account.create(), text))
    assert info.value.code == "bad_signature"


def test_synthetic_tampered_text_does_not_verify() -> None:
    account = Account.create()
    message = _message(account=account)
    text = message.prepare_message()
    signature = personal_sign(account, text)
    tampered = text.replace("Chain ID: 42161", "Chain ID: 1")
    with pytest.raises(siwe.SiweError) as info:
        siwe.verify(siwe.parse_message(tampered), text=tampered, signature=signature)
    assert info.value.code == "bad_signature"


@pytest.mark.parametrize(
    "mutation",
    [
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t + "\nExtra: field",
        lambda t: t.replace("Version: 1", "Version: 2"),
        lambda t: t.replace("Sign in to Tandem.", "Sign in\u00a0to Tandem."),
        lambda t: t.replace("2030-01-01T00:00:00.000Z", "2030-02-30T00:00:00.000Z"),
        lambda t: "",
        lambda t: t * 3,
    ],
)
def test_synthetic_malformed_messages_are_invalid(mutation: Any) -> None:
    with pytest.raises(siwe.SiweError) as info:
        siwe.parse_message(mutation(_message().prepare_message()))
    assert info.value.code == "invalid_message"


def test_build_refuses_fields_that_would_change_the_message_structure() -> None:
    with pytest.raises(siwe.SiweError):
        _message(statement="line one\nURI: https://evil.example")
    with pytest.raises(siwe.SiweError):
        _message(domain="a.example wants you to sign in with your Ethereum account:\n0x0")


def test_lowercase_address_is_not_eip55() -> None:
    account = Account.create()
    text = (
        _message(account=account)
        .prepare_message()
        .replace(account.address, account.address.lower())
    )
    with pytest.raises(siwe.SiweError):
        siwe.parse_message(text)
