"""The request pipeline at the edge, as plain ASGI in front of the gateway's own FastAPI routes
(which proxied requests never enter: their per-request middleware would cost every request).

For each request: request id and trace context; CORS (preflights answered here); route lookup
(paths no upstream serves fall through to /healthz, /readyz, /metrics, /openapi.json, /docs or
404); size limit; the edge token check; rate limits; then the streaming forward. Every refusal
is problem+json carrying X-Request-ID, the CORS headers and, on limited routes, the RateLimit
headers. Nothing here answers 500 for an upstream's failure: 502, 503 or 504 say which.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from asgi_correlation_id import correlation_id
from opentelemetry.trace import Span
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.errors import DomainError, problem_response
from gatehouse_platform.jwt import InvalidToken
from gateway.api_keys import ApiKeys, api_key_of
from gateway.auth import EdgeAuth
from gateway.cors import CorsPolicy, PreflightRefused
from gateway.proxy import (
    BUFFER_BODY_BELOW,
    BodyTooLarge,
    ClientDisconnected,
    RequestBody,
    Upstream,
    downstream_response_headers,
    relay_response,
    request_target,
    upstream_request_headers,
)
from gateway.ratelimits import RateLimits, too_many_requests
from gateway.routing import Route, RouteTable, is_ambiguous
from gateway.settings import Settings
from gateway.tracing import EdgeSpans, next_traceparent, request_id
from gateway.transport.redis import RedisLane

log = logging.getLogger("gateway.requests")

_WANTED = frozenset(
    {
        b"origin",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"authorization",
        b"content-length",
        b"transfer-encoding",
        b"x-forwarded-for",
        b"access-control-request-method",
        b"access-control-request-headers",
    }
)


class BadRequest(DomainError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class InternalError(DomainError):
    status = 500
    slug = "internal-error"
    title = "Internal server error"


class CorsRefused(DomainError):
    status = 403
    slug = "cors-refused"
    title = "Cross-origin request refused"


def _scan(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The request headers the edge reads, in one pass (X-Forwarded-For lines joined)."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _WANTED:
            if name in found and name == b"x-forwarded-for":
                found[name] += b", " + value
            else:
                found.setdefault(name, value)
    return found


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


@dataclass
class Edge:
    settings: Settings
    table: RouteTable
    upstreams: dict[str, Upstream]
    auth: EdgeAuth
    keys: ApiKeys
    limits: RateLimits
    lane: RedisLane
    cors: CorsPolicy
    proxies: TrustedProxies
    spans: EdgeSpans | None = None  # server spans, when tracing is on
    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    async def drain(self, grace_seconds: float) -> None:
        """Wait (up to `grace_seconds`) for proxied requests in flight to finish."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning("shutting down with %d requests in flight", self.in_flight)

    async def handle(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        headers = _scan(scope["headers"])
        rid = request_id(_text(headers.get(b"x-request-id")))
        token = correlation_id.set(rid)
        try:
            origin = _text(headers.get(b"origin"))
            method: str = scope["method"]
            if method == "OPTIONS" and origin is not None and b"access-control-request-method" in headers:
                await self._preflight(scope, receive, send, headers, origin, rid)
                return
            cors_headers = self.cors.response_headers(origin)
            route = self.table.match(method, scope["path"])
            if route is None:
                await app(scope, receive, _adding(send, cors_headers) if cors_headers else send)
                return
            edge_headers = [(b"x-request-id", rid.encode("latin-1")), *cors_headers]
            self.in_flight += 1
            self._idle.clear()
            try:
                await self._proxy(scope, receive, send, route, headers, rid, edge_headers)
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._idle.set()
        finally:
            correlation_id.reset(token)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], origin: str, rid: str
    ) -> None:
        request_headers = [(b"x-request-id", rid.encode("latin-1"))]
        try:
            allowed = self.cors.preflight(
                origin,
                _text(headers.get(b"access-control-request-method")),
                _text(headers.get(b"access-control-request-headers")),
            )
        except PreflightRefused as refused:
            await _problem(scope, receive, send, CorsRefused(refused.reason), request_headers)
            return
        await send({"type": "http.response.start", "status": 204, "headers": allowed + request_headers})
        await send({"type": "http.response.body", "body": b""})

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        headers: dict[bytes, bytes],
        rid: str,
        edge_headers: list[tuple[bytes, bytes]],
    ) -> None:
        start = time.perf_counter()
        upstream = self.upstreams[route.upstream]
        method: str = scope["method"]
        status = 500
        started = False
        span: Span | None = None
        try:
            length = self._check_request(scope, headers)
            peer = scope["client"][0] if scope.get("client") else None
            client = self.proxies.client(peer, _text(headers.get(b"x-forwarded-for")))
            claims, authorization = await self._authorize(route, headers, client.ip, edge_headers)
            await self._revocation_and_limits(route, claims, client.ip, edge_headers)
            if claims is not None:
                self.auth.require(claims, route.access)

            if self.spans is not None:
                span = self.spans.start(method, upstream.name, scope["path"], headers)
                traceparent, tracestate = self.spans.upstream_headers(span)
            else:
                traceparent, continued = next_traceparent(_text(headers.get(b"traceparent")))
                tracestate = headers.get(b"tracestate") if continued else None
            forward_headers = upstream_request_headers(
                scope["headers"],
                request_id=rid,
                traceparent=traceparent,
                tracestate=tracestate,
                client=client,
                peer=peer,
                scheme=scope.get("scheme", "http"),
                authorization=authorization,
            )
            body: RequestBody | bytes | None = None
            if length is not None or b"transfer-encoding" in headers:
                body = RequestBody(receive, self.settings.max_request_body_bytes, length)
                if length is not None and length <= BUFFER_BODY_BELOW:
                    body = await body.read_all()
            forwarded = await upstream.send(
                method,
                request_target(scope),
                forward_headers,
                body,
                read_timeout=route.read_timeout,
                slow_after=route.slow_after,
            )
            status = forwarded.status
            try:
                response_headers = downstream_response_headers(forwarded.raw_headers, edge_headers)
                started = True
                await relay_response(forwarded, response_headers, receive, send)
            finally:
                await forwarded.close()
        except DomainError as error:
            status = error.status
            await _problem(scope, receive, send, error, edge_headers)
        except ClientDisconnected:
            status = 499  # nginx's "client closed request": nobody is left to answer
        except Exception:
            if started:
                raise  # mid-response: only cutting the connection tells the client
            log.exception("unexpected error at the edge")
            status = 500
            await _problem(scope, receive, send, InternalError(), edge_headers)
        finally:
            elapsed = time.perf_counter() - start
            upstream.metrics.observe(status, elapsed)
            if span is not None:
                EdgeSpans.finish(span, status)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "upstream": upstream.name,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )

    def _check_request(self, scope: Scope, headers: dict[bytes, bytes]) -> int | None:
        """The declared body length; refuses dot segments and bodies declared too large."""
        if is_ambiguous(scope["path"]):
            raise BadRequest("Paths with empty, '.' or '..' segments are not accepted.")
        declared = headers.get(b"content-length")
        if declared is None:
            return None
        if not declared.isdigit():
            raise BadRequest("Invalid Content-Length.")
        length = int(declared)
        if length > self.settings.max_request_body_bytes:
            raise BodyTooLarge(f"The request body exceeds {self.settings.max_request_body_bytes} bytes.")
        return length

    async def _revocation_and_limits(
        self, route: Route, claims: AccessTokenClaims | None, ip: str, edge_headers: list[tuple[bytes, bytes]]
    ) -> None:
        """The token's denylist lookup and the rate-limit hit, in one Redis round trip. Redis
        failing: the token is refused (503), the limits let the request pass."""
        user = str(claims.sub) if claims is not None else None
        key = str(claims.sid) if claims is not None and claims.is_api_key else None
        pending = (
            self.limits.prepare(route.rate_limit, ip=ip, user=user, api_key=key) if route.rate_limit else None
        )
        if claims is None:
            if pending is None:
                return
            verdict = await self.limits.run(pending)
        else:
            commands: list[tuple[Any, ...]] = [("MGET", *self.auth.keys_for(claims))]
            if pending is not None:
                commands.append(self.limits.command(pending))
            try:
                replies = await self.lane.execute(*commands)
            except RedisError as exc:
                raise self.auth.revocation_unknown(exc) from None
            try:
                self.auth.judge(claims, replies[0])
            except InvalidToken:
                if claims.is_api_key:  # revoked: the next request asks auth-service, which refuses it
                    self.keys.forget(claims.sid)
                raise
            if pending is None:
                return
            verdict = await self.limits.verdict(pending, replies[1])
        edge_headers += verdict.headers
        if not verdict.admitted:
            raise too_many_requests(verdict)

    async def _authorize(
        self,
        route: Route,
        headers: dict[bytes, bytes],
        ip: str,
        edge_headers: list[tuple[bytes, bytes]],
    ) -> tuple[AccessTokenClaims | None, bytes | None]:
        """The verified claims (None on a public route without an API key) and, for an API key,
        the `Authorization` to send upstream instead: a key is exchanged on any route, so no
        upstream ever sees one."""
        authorization = headers.get(b"authorization")
        key = api_key_of(authorization)
        try:
            if key is not None:
                exchanged = await self.keys.exchange(key)
                return exchanged.claims, exchanged.authorization
            if route.access == "public":
                return None, None
            return await self.auth.check(authorization), None
        except DomainError:
            # The token check answers first: a refused token is a 401 (a 429 would tell the
            # client to wait for something waiting cannot fix). It still spends the address's
            # budget, so a client guessing tokens finds its other requests limited.
            if route.rate_limit is not None:
                verdict = await self.limits.hit(route.rate_limit, ip=ip, user=None)
                edge_headers += verdict.headers
            raise


async def _problem(
    scope: Scope, receive: Receive, send: Send, error: DomainError, headers: list[tuple[bytes, bytes]]
) -> None:
    response = problem_response(
        error.status,
        error.title,
        type_=error.problem_type(),
        detail=error.detail,
        instance=scope["path"],
        headers=error.headers,
        **error.extra,
    )
    response.raw_headers.extend(headers)
    await response(scope, receive, send)


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return sender
