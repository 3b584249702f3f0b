"""Stripe's shapes, checked: every body the emulator answers or sends as an event, validated against
the JSON Schemas made from Stripe's own SDK types for the pinned API version (`schemas/`).

A body is walked for the Stripe objects it carries: an object whose `object` the schemas know is
validated as a whole (its embedded and expanded objects through their own schemas), a list's or
search result's `data` element by element, and an event twice: the envelope, then `data.object` as
the object it is (the envelope's schema leaves `data.object` free). `previous_attributes` is partial
by nature and left alone, and so is anything the schemas do not know (error bodies, `/_emulator`
answers of their own).

`Conformance` (on when `StripeEmulatorConfig.check_schemas` is) keeps every violation it found;
`GET /_emulator/conformance` lists them and the pytest plugin (`conformance_plugin`) fails the test
during which one appeared. Functions registered with `on_violation` hear of each one as it is found
(the plugin's way in, since tests serve emulators in their own process)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS_FILE = Path(__file__).with_name("schemas") / "endive-schemas.json"
SCHEMAS_URI = "urn:stripe:endive-schemas"
MAX_SHOWN = 160  # characters of an offending value shown in a violation
MAX_REMEMBERED = 50_000  # objects whose outcome is kept (oldest forgotten first)


@dataclass(frozen=True)
class Violation:
    source: str  # what sent the body: "GET /v1/subscriptions/sub_…" or "event customer.created"
    object_type: str  # the `object` of the validated object: "subscription"
    path: str  # where in that object: "items.data[0].price.currency_options"
    message: str

    def key(self) -> tuple[str, str, str]:
        """The same mistake wherever it shows: list indices and ids do not matter."""
        return (self.object_type, _generic(self.path), self.message)

    def line(self) -> str:
        return f"{self.object_type} at {self.path or '(top)'}: {self.message}  [{self.source}]"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _generic(path: str) -> str:
    out, skipping = [], False
    for char in path:
        if char == "[":
            skipping = True
            out.append("[]")
        elif char == "]":
            skipping = False
        elif not skipping:
            out.append(char)
    return "".join(out)


# Where Stripe's documented behaviour departs from its generated types, Stripe's behaviour wins:
# (event type, object type, path in the object, message) of what is not a violation.
DOCUMENTED_EXCEPTIONS = {
    # "The received Invoice object will not have an invoice ID" (Stripe's docs on invoice.upcoming).
    ("invoice.upcoming", "invoice", "", "'id' is missing (Stripe always sends it)"),
}


# An object's violations: (path in the object, message) each.
Outcome = tuple[tuple[tuple[str | int, ...], str], ...]


class SchemaSet:
    """One validator per root object type, sharing one registry of the schema document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.api_version = str(document["api_version"])
        self.source = str(document["source"])
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        registry: Registry[Any] = Registry().with_resource(SCHEMAS_URI, resource)
        self._known: dict[tuple[str, str | None, bytes], Outcome] = {}
        self._lock = threading.Lock()
        self._validators = {
            object_type: Draft202012Validator(
                {"$ref": SCHEMAS_URI + root["$ref"]}, registry=registry, format_checker=None
            )
            for object_type, root in document["roots"].items()
        }

    def knows(self, object_type: str) -> bool:
        return object_type in self._validators

    def violations(self, body: Any, source: str) -> list[Violation]:
        found: list[Violation] = []
        for object_type, obj, prefix, event_type in _objects(body, "", self, None):
            for inner, message in self._object_violations(object_type, obj, event_type):
                found.append(Violation(source, object_type, _join(prefix, inner), message))
        return found

    def _object_violations(self, object_type: str, obj: dict[str, Any], event_type: str | None) -> Outcome:
        """(path in the object, message) of each violation. Remembered by the object's content: the
        emulator serves the same objects again and again (an event in every list of events, a
        subscription re-read after each webhook), and validating costs far more than hashing."""
        encoded = json.dumps(obj, sort_keys=True, default=str).encode()
        key = (object_type, event_type, hashlib.blake2b(encoded, digest_size=16).digest())
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        found: list[tuple[tuple[str | int, ...], str]] = []
        for error in self._validators[object_type].iter_errors(obj):
            for leaf in _leaves(error):
                inner, message = tuple(leaf.absolute_path), _message(leaf)
                if (event_type, object_type, _join("", inner), message) not in DOCUMENTED_EXCEPTIONS:
                    found.append((inner, message))
        result = tuple(found)
        with self._lock:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.pop(next(iter(self._known)))
            self._known[key] = result
        return result


@cache
def schema_set() -> SchemaSet:
    """The pinned version's schemas, read once per process (the file is 1.2 MB)."""
    return SchemaSet(json.loads(SCHEMAS_FILE.read_text()))


Found = tuple[str, dict[str, Any], str, str | None]  # object type, object, path to it, event type


def _objects(body: Any, prefix: str, schemas: SchemaSet, event_type: str | None) -> Iterator[Found]:
    if isinstance(body, list):
        for index, element in enumerate(body):
            yield from _objects(element, f"{prefix}[{index}]", schemas, event_type)
        return
    if not isinstance(body, dict):
        return
    kind = body.get("object")
    if kind in ("list", "search_result"):
        yield from _objects(body.get("data"), _join(prefix, ["data"]), schemas, event_type)
        return
    if isinstance(kind, str) and body.get("deleted") is True and schemas.knows(f"deleted_{kind}"):
        kind = f"deleted_{kind}"
    if isinstance(kind, str) and schemas.knows(kind):
        yield kind, body, prefix, event_type
        if kind == "event" and isinstance(body.get("data"), dict):
            inner = body["data"].get("object")
            yield from _objects(inner, _join(prefix, ["data", "object"]), schemas, str(body.get("type")))
        return
    if kind is None:  # an /_emulator answer: the Stripe objects it carries
        for key, value in body.items():
            yield from _objects(value, _join(prefix, [key]), schemas, event_type)


def _join(prefix: str, parts: Any) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# Errors that only say "this branch of an anyOf was the wrong type": the other branch tells more.
_SHALLOW = {"type", "enum", "const", "false"}


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors worth reading. An `anyOf` (nullable or expandable fields, an object or its deleted
    form) fails as a whole; the branch that fits the value best (the fewest errors, not refused
    outright for its type) says what is wrong."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in branches.values()
        if not any(e.validator in _SHALLOW and not e.relative_path for e in errors)
    ]
    if not fitting:
        yield error
        return
    best = min(fitting, key=lambda errors: sum(1 for _ in _flatten(errors)))
    for sub in best:
        yield from _leaves(sub)


def _flatten(errors: list[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        if error.context:
            yield from _flatten(list(error.context))
        else:
            yield error


def _message(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unexpected field(s) {', '.join(extra)} (Stripe does not send them)"
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing (Stripe always sends it)")
    shown = json.dumps(error.instance)
    if len(shown) > MAX_SHOWN:
        shown = shown[:MAX_SHOWN] + "…"
    if error.validator == "anyOf":
        allowed = [_expected(branch) for branch in error.context if not branch.relative_path]
        return f"{shown} is not {' or '.join(allowed) or 'any of the allowed shapes'}"
    if error.validator == "enum":
        return f"{shown} is not one of {error.validator_value}"
    if error.validator == "type":
        return f"{shown} is not of type {error.validator_value}"
    if error.validator is False or error.validator == "false":
        return f"{shown} is not allowed here"
    return error.message if len(error.message) <= 2 * MAX_SHOWN else error.message[: 2 * MAX_SHOWN] + "…"


def _expected(error: ValidationError) -> str:
    if error.validator == "enum":
        return f"one of {error.validator_value}"
    if error.validator == "type" and error.validator_value == "null":
        return "null"
    if error.validator == "type":
        return f"of type {error.validator_value}"
    return "allowed"


Listener = Callable[[Violation], None]
_listeners: list[Listener] = []
_listeners_lock = threading.Lock()


def on_violation(listener: Listener) -> Callable[[], None]:
    """Hear of every violation any emulator in this process finds; returns the unsubscribe."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


class Conformance:
    """What one emulator found: every violation, and how many bodies it checked."""

    def __init__(self) -> None:
        self.schemas = schema_set()
        self.checked = 0
        self.violations: list[Violation] = []

    def check(self, body: Any, source: str) -> list[Violation]:
        self.checked += 1
        found = self.schemas.violations(body, source)
        if found:
            self.violations.extend(found)
            with _listeners_lock:
                listeners = list(_listeners)
            for violation in found:
                for listener in listeners:
                    listener(violation)
        return found

    def report(self) -> dict[str, Any]:
        distinct: dict[tuple[str, str, str], tuple[Violation, int]] = {}
        for violation in self.violations:
            first, count = distinct.get(violation.key(), (violation, 0))
            distinct[violation.key()] = (first, count + 1)
        return {
            "api_version": self.schemas.api_version,
            "schemas": self.schemas.source,
            "checked": self.checked,
            "violations": [{**v.as_dict(), "count": n} for v, n in distinct.values()],
        }

    def clear(self) -> None:
        self.checked = 0
        self.violations.clear()
