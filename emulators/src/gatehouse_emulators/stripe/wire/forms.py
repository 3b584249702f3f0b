"""Stripe's v1 wire format: `application/x-www-form-urlencoded` with bracketed keys.

`a[b][c]=1` is a nested hash, `a[0][b]=1` and `a[]=1` are arrays (stripe-python always sends indexed
arrays; curl users send `expand[]=...`), booleans are `true`/`false`, and an empty value means "unset"
(`metadata=` clears all metadata). `Params` reads the decoded tree with Stripe's error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl

from gatehouse_emulators.stripe.wire.errors import StripeError, invalid, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode(body: str) -> dict[str, Any]:
    """Decode a form body (or query string) into nested dicts and lists."""
    return build(parse_qsl(body, keep_blank_values=True))


def build(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        segments = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if segment == "":  # `a[]`: append at the next free index
                segment = str(sum(1 for k in node if k.isdigit()))
            if last:
                if isinstance(node.get(segment), dict):
                    raise invalid(f"Invalid value for {key}: it is also used as a hash.", param=key)
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    if child != "":
                        raise invalid(f"Invalid value for {key}: it is also used as a scalar.", param=key)
                    child = node[segment] = {}
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Params:
    """Typed, validated access to one level of decoded parameters; `path` names it in errors."""

    def __init__(self, data: dict[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}[{key}]" if self.path else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> Iterator[str]:
        return iter(self.data)

    def allow(self, *names: str) -> Params:
        """Refuse parameters this endpoint does not know, as Stripe does (`parameter_unknown`)."""
        allowed = set(names)
        for key in self.data:
            if key not in allowed:
                raise unknown_param(self.name(key))
        return self

    def require(self, key: str) -> None:
        if key not in self.data or self.data[key] == "":
            raise missing_param(self.name(key))

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str, *, required: bool = False, empty_is_none: bool = True) -> str | None:
        if required:
            self.require(key)
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {self.name(key)} must be a string.", param=self.name(key))
        if value == "" and empty_is_none:
            return None
        return value

    def req_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid(f"Invalid integer: {value}", param=self.name(key)) from None
        if minimum is not None and number < minimum:
            raise invalid(
                f"Invalid {self.name(key)}: must be greater than or equal to {minimum}",
                param=self.name(key),
            )
        return number

    def flag(self, key: str) -> bool | None:
        value = self.text(key)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise invalid(f"Invalid boolean: {value}", param=self.name(key))

    def enum(self, key: str, choices: Sequence[str], *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and value not in choices:
            raise invalid(
                f"Invalid {self.name(key)}: must be one of {', '.join(choices)}",
                param=self.name(key),
            )
        return value

    def hash(self, key: str) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, list):  # `a[0]=...` arrived where a hash was expected
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self.name(key)} must be a hash.", param=self.name(key))
        return Params(value, self.name(key))

    def array(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, dict):
            raise invalid(f"Invalid array: {self.name(key)} must be an array.", param=self.name(key))
        if isinstance(value, str):
            return [value]
        return list(value)

    def hashes(self, key: str) -> list[Params]:
        out = []
        for index, item in enumerate(self.array(key)):
            if not isinstance(item, dict):
                raise invalid(f"Invalid object: {self.name(key)}[{index}] must be a hash.")
            out.append(Params(item, f"{self.name(key)}[{index}]"))
        return out

    def strings(self, key: str) -> list[str]:
        items = self.array(key)
        for item in items:
            if not isinstance(item, str):
                raise invalid(f"Invalid array: {self.name(key)} must hold strings.", param=self.name(key))
        return items

    def timestamp_filter(self, key: str) -> dict[str, int] | None:
        """`created=123` or `created[gte]=...` (gt, gte, lt, lte) as {op: value}."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            number = self.integer(key)
            assert number is not None
            return {"eq": number}
        sub = self.hash(key)
        assert sub is not None
        sub.allow("gt", "gte", "lt", "lte")
        return {op: v for op in ("gt", "gte", "lt", "lte") if (v := sub.integer(op)) is not None}

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """The metadata update: None when absent; {} plus `""` values mean unset (see `merge_metadata`)."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if isinstance(value, list):  # numeric keys were read as an array
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self.name(key)} must be a hash.", param=self.name(key))
        if len(value) > 50:
            raise invalid("You can have a maximum of 50 metadata keys.", param=self.name(key))
        for k, v in value.items():
            if not isinstance(v, str):
                raise invalid(f"Invalid metadata value for key {k}.", param=f"{self.name(key)}[{k}]")
            if len(k) > 40:
                raise invalid("Metadata keys can be at most 40 characters.", param=f"{self.name(key)}[{k}]")
            if len(v) > 500:
                raise invalid(
                    "Metadata values can be at most 500 characters.", param=f"{self.name(key)}[{k}]"
                )
        return dict(value)


def merge_metadata(
    current: dict[str, str], update: dict[str, str] | None, *, cleared: bool
) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value removes its key, `metadata=` clears all."""
    if update is None:
        return current
    merged = {} if cleared else dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def read_metadata_update(params: Params, current: dict[str, str], key: str = "metadata") -> dict[str, str]:
    update = params.metadata(key)
    cleared = params.raw(key) == ""
    return merge_metadata(current, update, cleared=cleared)


def expand_paths(params: Params) -> list[str]:
    paths = params.strings("expand")
    for path in paths:
        if path.count(".") >= 4:
            raise StripeError(
                400, f"You cannot expand more than 4 levels of a property. Property: {path}", param="expand"
            )
    return paths
