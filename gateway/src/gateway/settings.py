"""gateway settings: environment variables prefixed GATEWAY_ (e.g. GATEWAY_AUTH_URL).

Lists and tables (`GATEWAY_UPSTREAMS`, `GATEWAY_ACCESS_RULES`, `GATEWAY_RATE_LIMIT_RULES`,
`GATEWAY_CORS_ORIGINS`, `GATEWAY_TRUSTED_PROXIES`) are JSON. Path patterns are matched against the
decoded request path: `*` matches within one segment, `**` across segments, and a pattern ending in
`/**` also matches the path without it (`/auth/sessions/**` covers `/auth/sessions`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from limits import parse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from gatehouse_contracts.revocations import JWKS_PATH, REVOCATIONS_PATH, revocations_url_beside
from gatehouse_platform.clientip import TrustedProxyCidrs
from gatehouse_platform.settings import ServiceSettings

Access = Literal["public", "token", "admin"]

API_KEY_EXCHANGE_PATH = "/auth/internal/api-keys/exchange"  # auth-service's, refused from outside

# The web front's pages that live under billing-service's `/billing` prefix: the emails link to
# `/billing`, and Stripe Checkout returns to `/billing/success` and `/billing/cancel`.
WEB_PAGES_UNDER_API = (
    "/billing",
    "/billing/success",
    "/billing/cancel",
    "/billing/subscribe",
    "/billing/change",
    "/billing/cancellation",
    "/billing/resume",
    "/billing/manage",
)


def _check_pattern(pattern: str) -> str:
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern {pattern!r} must start with '/'")
    return pattern


def _check_methods(methods: list[str]) -> list[str]:
    upper = [m.upper() for m in methods]
    if not upper:
        raise ValueError("give at least one method, or '*'")
    return upper


class UpstreamSettings(BaseModel):
    """One service behind the gateway and how to talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Base URL, scheme://host:port (paths are forwarded unchanged)")
    prefixes: list[str] = Field(min_length=1, description="Path prefixes routed here, e.g. ['/auth']")
    paths: list[str] = Field(
        default_factory=list,
        description="Exact paths routed here before any prefix is considered (the web front's "
        "`/billing` pages, under billing-service's `/billing` API prefix)",
    )
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    read_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest silence before and within the response: a hung upstream answers 504 after "
        "it (routes in `route_timeouts` have their own)",
    )
    max_in_flight: int = Field(
        default=128,
        ge=1,
        description="Requests in flight to this upstream at most; beyond it, 503 upstream-busy at once "
        "(a hung upstream must not hold every connection and the gateway's memory)",
    )
    keepalive_expiry_seconds: float = Field(
        default=4.0,
        ge=0,
        description="Idle keep-alive connections close after this (keep it below the upstream's own "
        "idle timeout, uvicorn's is 5 s, so we never send on a connection it is closing); 0 = none",
    )
    connect_retries: int = Field(
        default=2, ge=0, description="Extra attempts after a connect failure (idempotent methods only)"
    )
    retry_backoff_seconds: float = Field(default=0.05, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1, description="Consecutive failures that open it")
    breaker_slow_seconds: float = Field(
        default=3.0,
        gt=0,
        description="An answer whose head has not come after this is slow (routes in `route_timeouts` "
        "have their own)",
    )
    breaker_slow_threshold: int = Field(
        default=10, ge=0, description="Slow answers within the window that open it (0 = slowness never does)"
    )
    breaker_slow_window_seconds: float = Field(default=10.0, gt=0)
    breaker_cooldown_seconds: float = Field(default=10.0, gt=0, description="Open this long, then one probe")
    breaker_failure_statuses: list[int] = Field(
        default_factory=list,
        description="Upstream statuses that count as failures too (default none: a 5xx from one "
        "endpoint must not cut off the whole service)",
    )
    openapi_path: str | None = "/openapi.json"
    readyz_path: str | None = "/readyz"

    @field_validator("url")
    @classmethod
    def _origin_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream url {url!r} must be http(s)://host[:port]")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"upstream url {url!r} must not have a path: paths are forwarded unchanged")
        return url.rstrip("/")

    @field_validator("prefixes", "paths")
    @classmethod
    def _prefixes(cls, prefixes: list[str]) -> list[str]:
        return [_check_pattern(p).rstrip("/") or "/" for p in prefixes]


class RouteTimeout(BaseModel):
    """A deadline of its own for matching requests (routes that wait on a third party: Stripe, an
    OAuth provider). The first matching rule wins; other requests have their upstream's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: list[str] = Field(default_factory=lambda: ["*"])
    paths: list[str] = Field(min_length=1)
    read_timeout_seconds: float = Field(gt=0)
    slow_seconds: float = Field(gt=0, description="When its answer counts as slow for the breaker")

    _methods = field_validator("methods")(_check_methods)

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        return [_check_pattern(p) for p in paths]


class AccessRule(BaseModel):
    """What a matching request must carry at the edge. The first matching rule wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: list[str] = Field(default_factory=lambda: ["*"])
    path: str
    access: Access

    _methods = field_validator("methods")(_check_methods)
    _path = field_validator("path")(_check_pattern)


class RateLimitRule(BaseModel):
    """Limits ("N/period", the `limits` syntax) for matching requests, counted per client IP and
    per user (`sub` of a token verified at the edge). The first matching rule wins; each rule has
    its own counters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    methods: list[str] = Field(default_factory=lambda: ["*"])
    paths: list[str] = Field(min_length=1)
    ip: str | None = None
    user: str | None = None
    api_key: str | None = Field(
        default=None, description="Per API key (the `sid` of a token exchanged from one), on top of `user`"
    )

    _methods = field_validator("methods")(_check_methods)

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        return [_check_pattern(p) for p in paths]

    @field_validator("ip", "user", "api_key")
    @classmethod
    def _limit(cls, limit: str | None) -> str | None:
        if limit is not None:
            parse(limit)  # raises ValueError on bad syntax
        return limit


def _rule(methods: str, path: str, access: Access) -> AccessRule:
    return AccessRule(methods=methods.split(","), path=path, access=access)


# docs/architecture.md's API table. Public routes need no rule (default_access is "public"); services still
# verify tokens themselves, so the edge check is the first line, not the only one.
DEFAULT_ACCESS_RULES: list[AccessRule] = [
    _rule("*", "/auth/admin/**", "admin"),
    _rule("POST", "/auth/me/deletion/cancel", "public"),  # a password sign-in: there is no session
    _rule("*", "/auth/me/**", "token"),
    _rule("POST", "/auth/change-*", "token"),
    _rule("POST", "/auth/deactivate", "token"),
    _rule("*", "/auth/sessions/**", "token"),
    _rule("*", "/auth/api-keys/**", "token"),
    _rule("POST", "/auth/logout*", "token"),
    _rule("*", "/auth/identities/**", "token"),
    _rule("POST", "/auth/request/verify", "token"),
    _rule("POST", "/auth/*/link", "token"),
    _rule("*", "/auth/orgs/**", "token"),
    _rule("POST", "/auth/invitations/accept", "token"),
    _rule("*", "/billing/admin/**", "admin"),
    _rule("POST,PUT,PATCH,DELETE", "/billing/plans/**", "admin"),
    _rule("*", "/billing/coupons/**", "admin"),
    _rule("*", "/billing/subscriptions/**", "token"),
    _rule("*", "/billing/entitlements/**", "token"),
    _rule("*", "/billing/orgs/**", "token"),
    _rule("*", "/billing/payments/**", "token"),
    _rule("*", "/billing/payment-method/**", "token"),
    _rule("*", "/billing/invoices/**", "token"),
    _rule("*", "/billing/me/**", "token"),
    _rule("*", "/notifications/unsubscribe/**", "public"),  # the emailed link: no session needed
    _rule("*", "/notifications/deliveries/**", "admin"),
    _rule("*", "/notifications/dead-letters/**", "admin"),
    _rule("*", "/notifications/admin/**", "admin"),
    _rule("*", "/notifications/**", "token"),
]

# Routes that wait on a third party before they answer get longer than the upstreams' 5 s: billing's
# Stripe calls (BILLING_STRIPE_TIMEOUT_SECONDS, 20 s) and auth-service's calls to Google and GitHub
# (AUTH_OAUTH_HTTP_TIMEOUT_SECONDS, 10 s, two of them for a sign-in), so that their own answer to
# a third party's failure gets through rather than the gateway's 504.
DEFAULT_ROUTE_TIMEOUTS: list[RouteTimeout] = [
    RouteTimeout(
        methods=["POST", "PUT", "PATCH", "DELETE"],
        paths=["/billing/plans/**", "/billing/coupons/**"],
        read_timeout_seconds=25,
        slow_seconds=10,
    ),
    RouteTimeout(paths=["/billing/subscriptions/**"], read_timeout_seconds=25, slow_seconds=10),
    RouteTimeout(
        methods=["POST"], paths=["/billing/orgs/*/portal"], read_timeout_seconds=25, slow_seconds=10
    ),
    # the data export reads every invoice and the card from Stripe
    RouteTimeout(paths=["/billing/me/export"], read_timeout_seconds=25, slow_seconds=10),
    RouteTimeout(
        paths=["/auth/*/login", "/auth/*/link", "/auth/*/callback"], read_timeout_seconds=25, slow_seconds=10
    ),
    # an org's domain verification fetches the domain's well-known file (AUTH_ORG_DOMAIN_VERIFICATION_*)
    RouteTimeout(paths=["/auth/orgs/*/domains/*/verify"], read_timeout_seconds=15, slow_seconds=10),
]

CREDENTIAL_PATHS = [
    "/auth/login",
    "/auth/login/code",
    "/auth/register",
    "/auth/forget-password",
    "/auth/new-password",
    "/auth/request/**",
    "/auth/refresh-token",
    "/auth/me/deletion/cancel",
]

DEFAULT_RATE_LIMIT_RULES: list[RateLimitRule] = [
    RateLimitRule(name="credentials", methods=["POST"], paths=CREDENTIAL_PATHS, ip="20/minute"),
    RateLimitRule(name="default", paths=["/**"], ip="1200/minute", user="600/minute", api_key="300/minute"),
]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    # Upstreams: the three URLs, or the whole table as JSON (`GATEWAY_UPSTREAMS`), which wins.
    auth_url: str = "http://127.0.0.1:8001"
    billing_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    web_url: str = Field(
        default="http://127.0.0.1:8004",
        description="The web front: every path no API prefix claims (`/`, `/login`, `/account`, …)",
    )
    upstreams: dict[str, UpstreamSettings] = Field(
        default_factory=dict,
        description="name → upstream; empty = auth, billing, notifications and web from the URLs",
    )
    connect_timeout_seconds: float = Field(default=1.0, gt=0, description="For upstreams built from URLs")
    read_timeout_seconds: float = Field(
        default=5.0, gt=0, description="For the API upstreams built from URLs"
    )
    web_read_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="For the web front built from its URL (a page waits on WEB_API_TIMEOUT_SECONDS)",
    )
    route_timeouts: list[RouteTimeout] = Field(
        default_factory=lambda: list(DEFAULT_ROUTE_TIMEOUTS),
        description="Deadlines of their own for matching requests, first match wins",
    )
    blocked_paths: list[str] = Field(
        default_factory=lambda: ["/billing/stripe/webhook/**", "/auth/internal/**"],
        description="Never routed (404 here): Stripe posts to billing-service directly; "
        "auth-service's internal routes serve the deployment's own services",
    )

    # Tokens at the edge
    access_rules: list[AccessRule] = Field(default_factory=lambda: list(DEFAULT_ACCESS_RULES))
    default_access: Access = "public"
    jwks_url: str | None = Field(default=None, description="Default: the auth upstream's JWKS")
    revocations_url: str | None = Field(
        default=None,
        description="Where the denylist is rebuilt from after Redis lost its data. Default: the "
        "revocation list on the JWKS's host",
    )
    issuer: str = "http://127.0.0.1:8000/auth"
    audience: str = "gatehouse"
    token_leeway_seconds: int = Field(default=5, ge=0)
    jwks_cache_seconds: float = Field(default=600.0, gt=0)
    jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    verified_token_cache_size: int = Field(
        default=10_000, ge=0, description="Tokens whose verified claims are remembered until they expire"
    )
    api_key_exchange_url: str | None = Field(
        default=None,
        description="Where `Bearer gk_live_…` keys are exchanged for access tokens. Default: auth-service's "
        "internal exchange on the JWKS's host",
    )
    api_key_exchange_timeout_seconds: float = Field(default=2.0, gt=0)
    api_key_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Keys whose exchanged token is remembered until shortly before it expires",
    )
    access_token_max_ttl_seconds: int = Field(
        default=900,
        ge=60,
        description="At least auth-service's access-token TTL: how long denylist entries live",
    )

    # Redis (rate limits, denylist) and the events that feed the denylist
    redis_key_prefix: str = "gatehouse-gateway"
    redis_timeout_seconds: float = Field(default=0.5, gt=0, description="Connect and command timeout")
    consume_events: bool = True
    consumer_name: str = "gateway"

    # Rate limits
    rate_limits_enabled: bool = True
    rate_limit_rules: list[RateLimitRule] = Field(default_factory=lambda: list(DEFAULT_RATE_LIMIT_RULES))
    trusted_proxies: TrustedProxyCidrs = Field(
        default_factory=list,
        description="CIDRs whose X-Forwarded-For is believed; the client is the right-most other address",
    )

    # Requests
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=0)

    # CORS (browsers); no origins = no CORS headers, preflights refused
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = True
    cors_allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE"])
    cors_allow_headers: list[str] = Field(
        default_factory=lambda: [
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-Request-ID",
            "traceparent",
            "tracestate",
        ]
    )
    cors_expose_headers: list[str] = Field(
        default_factory=lambda: [
            "X-Request-ID",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "WWW-Authenticate",
            "Location",
        ]
    )
    cors_max_age_seconds: int = Field(default=600, ge=0)

    # Aggregated OpenAPI document
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    openapi_fetch_timeout_seconds: float = Field(default=2.0, gt=0)

    # Graceful shutdown: how long in-flight requests may take to finish (uvicorn, via `gateway serve`)
    shutdown_grace_seconds: int = Field(default=30, ge=0)

    @field_validator("blocked_paths")
    @classmethod
    def _blocked(cls, paths: list[str]) -> list[str]:
        return [_check_pattern(p) for p in paths]

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port]")
        return [o.rstrip("/") for o in origins]

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "GATEWAY_CORS_ORIGINS='*' with credentials would let any site act as the signed-in user: "
                "list the origins, or set GATEWAY_CORS_ALLOW_CREDENTIALS=false"
            )
        if not self.upstreams:
            timeouts = {
                "connect_timeout_seconds": self.connect_timeout_seconds,
                "read_timeout_seconds": self.read_timeout_seconds,
            }
            self.upstreams = {
                "auth": UpstreamSettings(url=self.auth_url, prefixes=["/auth", "/.well-known"], **timeouts),
                "billing": UpstreamSettings(url=self.billing_url, prefixes=["/billing"], **timeouts),
                "notifications": UpstreamSettings(
                    url=self.notifications_url, prefixes=["/notifications"], **timeouts
                ),
                # Pages, not API: nothing of it goes into the merged OpenAPI document.
                "web": UpstreamSettings(
                    url=self.web_url,
                    prefixes=["/"],
                    paths=list(WEB_PAGES_UNDER_API),
                    openapi_path=None,
                    connect_timeout_seconds=self.connect_timeout_seconds,
                    read_timeout_seconds=self.web_read_timeout_seconds,
                ),
            }
        if self.jwks_url is None:
            if "auth" not in self.upstreams:
                raise ValueError("set GATEWAY_JWKS_URL when no upstream is named 'auth'")
            self.jwks_url = f"{self.upstreams['auth'].url}{JWKS_PATH}"
        if self.revocations_url is None:
            self.revocations_url = revocations_url_beside(self.jwks_url)
        if self.api_key_exchange_url is None:
            self.api_key_exchange_url = (
                revocations_url_beside(self.jwks_url).removesuffix(REVOCATIONS_PATH) + API_KEY_EXCHANGE_PATH
            )
        return self

    @property
    def jwks(self) -> str:
        assert self.jwks_url is not None  # filled in by the validator
        return self.jwks_url

    @property
    def api_key_exchange(self) -> str:
        assert self.api_key_exchange_url is not None  # filled in by the validator
        return self.api_key_exchange_url

    @property
    def revocations(self) -> str:
        assert self.revocations_url is not None  # filled in by the validator
        return self.revocations_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
