"""In-memory objects keyed by Stripe-style ids, and Stripe's cursor pagination over them.

Objects are stored in their API shape; keys starting with "_" are the emulator's own bookkeeping
and never leave it (see `render`). Lists are newest first, ties broken by insertion order. Objects
are also indexed by type (an object's `object` never changes), so listing one type does not walk
every event the emulator ever raised."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from typing import Any

from gatehouse_emulators.stripe.wire.errors import invalid, resource_missing
from gatehouse_emulators.stripe.wire.forms import Params

Obj = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def random_token(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, Obj] = {}
        self._by_type: dict[str, dict[str, Obj]] = {}
        self._seq: dict[str, int] = {}
        self._counter = 0

    def snapshot(self) -> dict[str, Any]:
        return {"objects": self._objects, "seq": self._seq, "counter": self._counter}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._objects = dict(snapshot["objects"])
        self._by_type = {}
        for obj in self._objects.values():
            self._by_type.setdefault(obj["object"], {})[obj["id"]] = obj
        self._seq = {key: int(value) for key, value in snapshot["seq"].items()}
        self._counter = int(snapshot["counter"])

    def add(self, obj: Obj) -> Obj:
        self._counter += 1
        self._objects[obj["id"]] = obj
        self._by_type.setdefault(obj["object"], {})[obj["id"]] = obj
        self._seq[obj["id"]] = self._counter
        return obj

    def get(self, object_id: str, object_type: str | None = None) -> Obj | None:
        obj = self._objects.get(object_id)
        if obj is None or (object_type is not None and obj.get("object") != object_type):
            return None
        return obj

    def require(self, object_id: str | None, object_type: str, kind: str, param: str = "id") -> Obj:
        """The live object or Stripe's 404 (`No such customer: 'cus_x'`)."""
        obj = self.get(object_id or "", object_type)
        if obj is None or obj.get("deleted"):
            raise resource_missing(kind, object_id or "", param)
        return obj

    def remove(self, object_id: str) -> None:
        obj = self._objects.pop(object_id, None)
        if obj is not None:
            self._by_type[obj["object"]].pop(object_id, None)
        self._seq.pop(object_id, None)

    def all(self, object_type: str, where: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """Objects of one type, newest first."""
        of_type = self._by_type.get(object_type, {}).values()
        found = [o for o in of_type if where is None or where(o)]
        found.sort(key=self.sort_key, reverse=True)
        return found

    def count(self, object_type: str) -> int:
        return len(self._by_type.get(object_type, ()))

    def sort_key(self, obj: Obj) -> tuple[int, int]:
        return (int(obj.get("created", 0)), self._seq.get(obj["id"], 0))

    def clear(self) -> None:
        self._objects.clear()
        self._by_type.clear()
        self._seq.clear()


def list_params(params: Params, *filters: str) -> Params:
    return params.allow("limit", "starting_after", "ending_before", "expand", *filters)


def paginate(store: Store, items: list[Obj], params: Params, kind: str) -> tuple[list[Obj], bool]:
    """One page of `items` (already filtered, newest first) after `starting_after` or before
    `ending_before`; returns the page and `has_more`."""
    limit = params.integer("limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")
    after = params.text("starting_after")
    before = params.text("ending_before")
    if after and before:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
    if after:
        cursor = _cursor(store, after, kind, "starting_after")
        rest = [o for o in items if store.sort_key(o) < cursor]
        return rest[:limit], len(rest) > limit
    if before:
        cursor = _cursor(store, before, kind, "ending_before")
        earlier = [o for o in items if store.sort_key(o) > cursor]
        return earlier[-limit:], len(earlier) > limit
    return items[:limit], len(items) > limit


def _cursor(store: Store, object_id: str, kind: str, param: str) -> tuple[int, int]:
    obj = store.get(object_id)
    if obj is None:
        raise resource_missing(kind, object_id, param)
    return store.sort_key(obj)


def list_object(data: Iterable[Obj], has_more: bool, url: str) -> Obj:
    return {"object": "list", "data": list(data), "has_more": has_more, "url": url}


def match_created(obj: Obj, created: dict[str, int] | None, field: str = "created") -> bool:
    if not created:
        return True
    value = int(obj.get(field) or 0)
    checks = {
        "eq": lambda b: value == b,
        "gt": lambda b: value > b,
        "gte": lambda b: value >= b,
        "lt": lambda b: value < b,
        "lte": lambda b: value <= b,
    }
    return all(checks[op](bound) for op, bound in created.items())
