"""The route table: which upstream serves a path, what the edge demands of the caller (access
rule), which rate-limit rule counts the request, and how long its answer may take (the route's
deadline, or its upstream's). Everything is matched on the decoded path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.settings import Access, AccessRule, RateLimitRule, RouteTimeout, Settings

ROUTE_CACHE_SIZE = 4096
# The gateway's own routes (main.py, openapi.py): never proxied, even by an upstream on prefix "/"
# (the web front takes every path no API prefix claims).
GATEWAY_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`*` matches within a segment, `**` across segments; a trailing `/**` also matches the bare
    path (`/auth/sessions/**` covers `/auth/sessions` and `/auth/sessions/1`)."""
    suffix = ""
    if pattern.endswith("/**"):
        pattern, suffix = pattern[:-3], "(?:/.*)?"
    parts = re.split(r"(\*\*|\*)", pattern)
    body = "".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in parts)
    return re.compile(body + suffix, re.DOTALL)


class PathPattern:
    __slots__ = ("_methods", "_regexes", "text")

    def __init__(self, methods: Iterable[str], patterns: Sequence[str]) -> None:
        methods = frozenset(methods)
        self._methods = None if "*" in methods else methods
        self._regexes = [compile_pattern(p) for p in patterns]
        self.text = ", ".join(patterns)

    def matches(self, method: str, path: str) -> bool:
        if self._methods is not None and method not in self._methods:
            return False
        return any(regex.fullmatch(path) for regex in self._regexes)


@dataclass(frozen=True, slots=True)
class Route:
    upstream: str
    access: Access
    rate_limit: RateLimitRule | None
    read_timeout: float  # the longest silence before and within the answer: then 504
    slow_after: float  # a head not come by then counts as slow for the breaker


def is_ambiguous(path: str) -> bool:
    """`/auth/./me`, `/billing/../auth/me` or `/auth//me`: refused, so that the edge and an
    upstream that normalises paths can never disagree about which route a path names."""
    if "//" in path:
        return True
    return "/." in path and any(segment in (".", "..") for segment in path.split("/"))


class RouteTable:
    def __init__(self, settings: Settings) -> None:
        prefixes = [(prefix, name) for name, up in settings.upstreams.items() for prefix in up.prefixes]
        self._prefixes = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)  # longest first
        self._paths = {path: name for name, up in settings.upstreams.items() for path in up.paths}
        self._blocked = PathPattern(["*"], settings.blocked_paths)
        self._access: list[tuple[PathPattern, AccessRule]] = [
            (PathPattern(rule.methods, [rule.path]), rule) for rule in settings.access_rules
        ]
        self._default_access = settings.default_access
        self._timeouts: list[tuple[PathPattern, RouteTimeout]] = [
            (PathPattern(rule.methods, rule.paths), rule) for rule in settings.route_timeouts
        ]
        self._upstreams = settings.upstreams
        self._recent: dict[tuple[str, str], Route | None] = {}
        self._limits: list[tuple[PathPattern, RateLimitRule]] = (
            [(PathPattern(rule.methods, rule.paths), rule) for rule in settings.rate_limit_rules]
            if settings.rate_limits_enabled
            else []
        )

    def upstream_for(self, path: str) -> str | None:
        if path in GATEWAY_PATHS:
            return None
        exact = self._paths.get(path)
        if exact is not None:
            return exact
        for prefix, name in self._prefixes:
            if path == prefix or path.startswith(prefix + "/") or prefix == "/":
                return name
        return None

    def is_blocked(self, path: str) -> bool:
        return self._blocked.matches("*", path)

    def access_for(self, method: str, path: str) -> Access:
        for pattern, rule in self._access:
            if pattern.matches(method, path):
                return rule.access
        return self._default_access

    def rate_limit_for(self, method: str, path: str) -> RateLimitRule | None:
        for pattern, rule in self._limits:
            if pattern.matches(method, path):
                return rule
        return None

    def timeouts_for(self, upstream: str, method: str, path: str) -> tuple[float, float]:
        """(read timeout, slow threshold): the first matching route rule's, else the upstream's."""
        for pattern, rule in self._timeouts:
            if pattern.matches(method, path):
                return rule.read_timeout_seconds, rule.slow_seconds
        config = self._upstreams[upstream]
        return config.read_timeout_seconds, config.breaker_slow_seconds

    def match(self, method: str, path: str) -> Route | None:
        """The route serving `method path`, or None when no upstream takes the path (or it is
        blocked: the caller answers 404 either way). Recent answers are remembered."""
        key = (method, path)
        try:
            return self._recent[key]
        except KeyError:
            pass
        upstream = self.upstream_for(path)
        route = (
            None
            if upstream is None or self.is_blocked(path)
            else Route(
                upstream,
                self.access_for(method, path),
                self.rate_limit_for(method, path),
                *self.timeouts_for(upstream, method, path),
            )
        )
        if len(self._recent) >= ROUTE_CACHE_SIZE:
            self._recent.clear()  # paths carry ids: start over rather than grow without bound
        self._recent[key] = route
        return route
