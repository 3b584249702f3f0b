"""Export the contracts as JSON Schema files and an AsyncAPI document.

`gatehouse-export-schemas` writes them to shared-contracts/schemas/; a test fails when the
committed files differ from what the models say.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gatehouse_contracts.envelope import SCHEMA_BASE, CloudEvent, EventData
from gatehouse_contracts.events import REGISTRY
from gatehouse_contracts.problem import Problem
from gatehouse_contracts.revocations import Revocations
from gatehouse_contracts.tokens import AccessTokenClaims

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
EXCHANGE = "gatehouse.events"


def event_schema(model: type[EventData]) -> dict[str, Any]:
    """The whole message as it travels: the CloudEvents envelope with this event's `data`."""
    envelope = CloudEvent.model_json_schema()
    data = model.model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    envelope["properties"]["type"] = {"const": model.event_type, "title": "Type", "type": "string"}
    envelope["properties"]["dataschema"] = {"const": model.dataschema(), "title": "Dataschema"}
    envelope["properties"]["data"] = data
    schema: dict[str, Any] = {
        **envelope,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": model.dataschema(),
        "title": model.event_type,
        "description": model.description,
        "x-carries-secret": model.carries_secret,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, model in sorted(REGISTRY.items()):
        name = event_type.replace(".", "_")
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": model.description,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"./{event_type}.v{model.version}.json"},
            "x-carries-secret": model.carries_secret,
        }
        channels[name] = {
            "address": event_type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False},
                }
            },
        }
        operations[f"publish_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"Published through the transactional outbox as routing key {event_type}.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Gatehouse events",
            "version": "1.0.0",
            "description": (
                f"Every event is a CloudEvents 1.0 JSON envelope on the durable topic exchange "
                f"`{EXCHANGE}`, routing key = event type. Schemas: {SCHEMA_BASE}/<type>/v<n>."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """File name → JSON text, for every exported document."""
    docs: dict[str, Any] = {
        f"{event_type}.v{model.version}.json": event_schema(model) for event_type, model in REGISTRY.items()
    }
    docs["access-token-claims.json"] = AccessTokenClaims.model_json_schema()
    docs["problem.json"] = Problem.model_json_schema()
    docs["revocations.json"] = Revocations.model_json_schema()
    docs["asyncapi.json"] = asyncapi()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in sorted(docs.items())}


def main() -> None:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    rendered = render()
    for stale in SCHEMAS_DIR.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        (SCHEMAS_DIR / name).write_text(text)
    sys.stdout.write(f"wrote {len(rendered)} files to {SCHEMAS_DIR}\n")


if __name__ == "__main__":
    main()
