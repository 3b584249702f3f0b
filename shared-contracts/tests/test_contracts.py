import uuid
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import ValidationError

from gatehouse_contracts import new_event
from gatehouse_contracts.events import REGISTRY, LoginCodeRequested, UserRegistered, parse_data
from gatehouse_contracts.export import SCHEMAS_DIR, render
from gatehouse_contracts.tokens import AccessTokenClaims


def test_exported_schemas_are_current() -> None:
    rendered = render()
    on_disk = {path.name: path.read_text() for path in SCHEMAS_DIR.glob("*.json")}
    stale = sorted(
        name for name in rendered.keys() | on_disk.keys() if rendered.get(name) != on_disk.get(name)
    )
    assert not stale, f"run `make schemas` (gatehouse-export-schemas): stale {stale}"


def test_every_event_has_a_schema_and_an_asyncapi_channel() -> None:
    rendered = render()
    import json

    asyncapi = json.loads(rendered["asyncapi.json"])
    for event_type, model in REGISTRY.items():
        assert f"{event_type}.v{model.version}.json" in rendered
        assert asyncapi["channels"][event_type.replace(".", "_")]["address"] == event_type


def test_an_event_validates_against_its_exported_schema() -> None:
    import json

    data = UserRegistered(
        user_id=uuid.uuid4(),
        email="ada@example.com",
        username="ada",
        provider="password",
        email_verified=False,
        registered_at=datetime.now(UTC),
    )
    event = new_event(data, source="/auth-service", subject=str(data.user_id), correlation_id="req-1")
    schema = json.loads(render()["user.registered.v1.json"])
    jsonschema.Draft202012Validator(schema).validate(event.model_dump(mode="json"))
    assert event.dataschema.endswith("/user.registered/v1")
    assert parse_data(event.type, event.data) == data


def test_schema_rejects_an_event_of_another_type() -> None:
    import json

    schema = json.loads(render()["user.registered.v1.json"])
    bad = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/auth-service",
        "type": "user.verified",
        "time": datetime.now(UTC).isoformat(),
        "dataschema": "x",
        "data": {},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)


def test_secret_carrying_events_are_marked() -> None:
    secret = {name for name, model in REGISTRY.items() if model.carries_secret}
    assert secret == {
        "user.email_verification_requested",
        "user.password_reset_requested",
        "user.login_code_requested",
        "org.invitation_sent",
    }


def test_an_api_key_token_may_use_only_its_scopes_and_a_session_everything() -> None:
    now = 1_800_000_000
    base = {
        "iss": "gatehouse",
        "aud": "gatehouse",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j",
        "sid": str(uuid.uuid4()),
        "email": "a@example.com",
        "email_verified": True,
    }
    session = AccessTokenClaims.model_validate(base)
    key = AccessTokenClaims.model_validate({**base, "scope": "billing:read orgs:read"})
    assert session.allows("billing:write") and session.scopes is None and not session.is_api_key
    assert key.allows("billing:read") and not key.allows("billing:write")
    assert key.scopes == {"billing:read", "orgs:read"} and key.is_api_key


def test_login_code_must_be_six_digits() -> None:
    with pytest.raises(ValidationError):
        LoginCodeRequested(
            user_id=uuid.uuid4(), email="a@example.com", code="12a456", expires_at=datetime.now(UTC)
        )
