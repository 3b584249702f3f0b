"""The streaming forwarder: one pooled keep-alive HTTP client per upstream, hop-by-hop headers
stripped both ways, bodies streamed both ways, retries and the circuit breaker around each exchange.

The client is aiohttp's (C-accelerated parser, pooled keep-alive connections), not httpx: every
microsecond here is paid on every request, and on our 2-core machine one keep-alive exchange cost
about 100 µs of CPU with aiohttp against about 390 µs with httpx (build_request + send(stream=True)).

Retries: only idempotent methods, only after a connect failure (nothing reached the upstream),
and only while the request body has not started to stream (so it can be sent again whole).
Errors become problem+json before any byte of a response is sent: connect failure, open circuit or
exhausted pool → 503 with Retry-After, invalid answer → 502, timeout → 504; once the upstream's
response has started, a failure can only cut the connection (the client sees a truncated body,
never a wrong one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from gatehouse_platform.errors import DomainError, ServiceUnavailable
from gateway.breaker import CircuitBreaker
from gateway.clientip import ClientAddress
from gateway.metrics import RETRIES, UPSTREAM_FAILURES, record_breaker_state
from gateway.settings import UpstreamSettings

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)  # plus every proxy-* header and whatever Connection names
# Request headers the gateway sets itself (or must not pass on).
REQUEST_REPLACED = frozenset(
    {
        b"host",
        b"expect",  # uvicorn answered 100-continue already
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"x-real-ip",
    }
)
# Response headers the gateway sets itself: the server adds Server and Date; CORS is the edge's.
RESPONSE_REPLACED = frozenset({b"server", b"date", b"x-request-id"})
BUFFER_BODY_BELOW = 64 * 1024  # smaller request bodies are read whole: cheaper, and retryable
WATCH_DISCONNECT_ABOVE = 256 * 1024  # stop reading large downloads when the client goes away
# aiohttp adds these unless told not to: a proxy sends the client's own (an Accept-Encoding the
# client never sent would get it a gzipped body it cannot read).
NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class BadGateway(DomainError):
    status = 502
    slug = "bad-gateway"
    title = "Bad gateway"


class UpstreamUnreachable(ServiceUnavailable):
    """Nothing reached the service (it is down, restarting or not listening yet): 503, as for an
    open circuit, so a client sees one answer, with Retry-After, for the whole outage."""

    slug = "upstream-unreachable"
    title = "Upstream unreachable"


class UpstreamTimeout(DomainError):
    status = 504
    slug = "upstream-timeout"
    title = "Upstream timed out"


class UpstreamBusy(ServiceUnavailable):
    slug = "upstream-busy"
    title = "Upstream busy"


class BodyTooLarge(DomainError):
    status = 413
    slug = "body-too-large"
    title = "Request body too large"


class ClientDisconnected(Exception):
    """The client went away while we were reading its request."""


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    return names


def _is_hop_by_hop(name: bytes, named: set[bytes]) -> bool:
    return name in HOP_BY_HOP or name.startswith(b"proxy-") or name in named


def upstream_request_headers(
    headers: list[tuple[bytes, bytes]],
    *,
    request_id: str,
    traceparent: str,
    tracestate: bytes | None,
    client: ClientAddress,
    peer: str | None,
    scheme: str,
) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop ones, plus X-Request-ID, traceparent and
    X-Forwarded-*. Forwarding headers from a peer that is not a trusted proxy are replaced, never
    extended: the upstream must not believe what a client wrote about itself."""
    named = _connection_tokens(headers)
    out: list[tuple[bytes, bytes]] = []
    forwarded_for = forwarded_proto = forwarded_host = host = None
    for name, value in headers:
        # ASGI servers give lower-case names already.
        if name in REQUEST_REPLACED:
            if name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name == b"x-forwarded-host":
                forwarded_host = value
            elif name == b"host":
                host = value
            continue
        if _is_hop_by_hop(name, named):
            continue
        out.append((name, value))
    hop = (peer or "unknown").encode("latin-1")
    trusted = client.peer_trusted
    out.append((b"x-forwarded-for", forwarded_for + b", " + hop if trusted and forwarded_for else hop))
    out.append((b"x-forwarded-proto", forwarded_proto if trusted and forwarded_proto else scheme.encode()))
    original_host = forwarded_host if trusted and forwarded_host else host
    if original_host:
        out.append((b"x-forwarded-host", original_host))
    out.append((b"x-request-id", request_id.encode("latin-1")))
    out.append((b"traceparent", traceparent.encode("latin-1")))
    if tracestate is not None:
        out.append((b"tracestate", tracestate))
    return CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in out)


def downstream_response_headers(
    headers: list[tuple[bytes, bytes]], edge_headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones, followed by the edge's own
    (X-Request-ID, CORS, rate limits), which replace any the upstream sent of the same name."""
    named = _connection_tokens(headers)
    ours = {name for name, _ in edge_headers}
    kept = [
        (name, value)
        for name, value in headers
        if not (
            name in RESPONSE_REPLACED
            or name in ours
            or _is_hop_by_hop(name, named)
            or name.startswith(b"access-control-")  # CORS is decided at the edge
        )
    ]
    return kept + edge_headers


class RequestBody:
    """The client's body as it arrives, counted against the size limit (which Content-Length
    alone cannot enforce: chunked bodies have none). `started` tells whether any of it may have
    been sent upstream, which rules out a retry."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self.started = False
        self.received = 0

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            self.received += len(chunk)
            if self.received > self._limit:
                raise BodyTooLarge(f"The request body exceeds {self._limit} bytes.")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


class Upstream:
    """One upstream service: its connection pool, circuit breaker and retry policy.

    The HTTP session is opened in `start()`, inside the event loop that will use it.
    """

    def __init__(self, name: str, config: UpstreamSettings) -> None:
        self.name = name
        self.config = config
        self.base_url = config.url
        self._session: aiohttp.ClientSession | None = None
        # Our own pool limit, so that waiting for a free connection (overload: 503, no verdict
        # on the upstream) is told apart from failing to connect (the upstream's fault).
        self._slots = asyncio.Semaphore(config.max_connections)
        self.breaker = CircuitBreaker(
            name,
            failure_threshold=config.breaker_failure_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
            on_change=record_breaker_state,
        )
        self._failure_statuses = frozenset(config.breaker_failure_statuses)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0,  # bounded by self._slots
                keepalive_timeout=self.config.keepalive_expiry_seconds or None,
                force_close=self.config.keepalive_expiry_seconds == 0,
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout_seconds,
                sock_read=self.config.read_timeout_seconds,
            ),
            auto_decompress=False,  # bytes pass through as the upstream encoded them
            cookie_jar=aiohttp.DummyCookieJar(),  # a proxy keeps no cookies
            skip_auto_headers=NO_AUTO_HEADERS,
            trust_env=False,  # no proxy or netrc from the environment between us and our services
        )
        # aiohttp re-sends an idempotent request once when the connection drops before the
        # answer, though the upstream may have acted on it; retries are ours to decide (only
        # after connect failures), so that is switched off (no public switch; tests guard it).
        self._session._retry_connection = False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"upstream {self.name} not started")
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, *, within: float) -> tuple[int, bytes]:
        """A plain GET of the upstream's own (readiness, OpenAPI): no breaker, no retries."""
        async with self.session.get(
            self.base_url + path, timeout=aiohttp.ClientTimeout(total=within), allow_redirects=False
        ) as response:
            return response.status, await response.read()

    async def send(
        self,
        method: str,
        target: bytes,
        headers: CIMultiDict[str],
        body: RequestBody | bytes | None,
    ) -> ForwardedResponse:
        """Send the request; the response comes back with its body unread (stream it, then close)."""
        url = URL(self.base_url + target.decode("latin-1"), encoded=True)
        retries_left = self.config.connect_retries if method in IDEMPOTENT_METHODS else 0
        try:
            if self._slots.locked():  # only then is there a wait worth a timeout
                await asyncio.wait_for(self._slots.acquire(), self.config.pool_timeout_seconds)
            else:
                await self._slots.acquire()
        except TimeoutError:
            UPSTREAM_FAILURES.labels(self.name, "pool").inc()
            raise UpstreamBusy(
                f"Too many requests in flight to the {self.name} service.", headers={"Retry-After": "1"}
            ) from None
        try:
            while True:
                probe = self.breaker.acquire()
                try:
                    response = await self.session.request(
                        method, url, headers=headers, data=body, allow_redirects=False
                    )
                except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                    self.breaker.failure(probe)
                    streamed = isinstance(body, RequestBody) and body.started
                    if retries_left > 0 and not streamed:
                        retries_left -= 1
                        RETRIES.labels(self.name).inc()
                        await asyncio.sleep(self.config.retry_backoff_seconds)
                        continue
                    raise self._failure(exc) from None
                except aiohttp.ClientError as exc:
                    client_side = _client_side_cause(exc)
                    if client_side is not None:
                        # The client's body failed us (too large, or the client left): no verdict.
                        self.breaker.release(probe)
                        raise client_side from None
                    self.breaker.failure(probe)
                    raise self._failure(exc) from None
                except BaseException:
                    self.breaker.release(probe)
                    raise
                if response.status in self._failure_statuses:
                    UPSTREAM_FAILURES.labels(self.name, "status").inc()
                    self.breaker.failure(probe)
                else:
                    self.breaker.success(probe)
                return ForwardedResponse(self, response)
        except BaseException:
            self._slots.release()
            raise

    def _failure(self, exc: aiohttp.ClientError) -> DomainError:
        if isinstance(exc, aiohttp.ServerTimeoutError):
            UPSTREAM_FAILURES.labels(self.name, "timeout").inc()
            log.warning("upstream timed out", extra={"upstream": self.name, "error": type(exc).__name__})
            return UpstreamTimeout(f"The {self.name} service did not answer in time.")
        if isinstance(exc, aiohttp.ClientConnectorError):
            UPSTREAM_FAILURES.labels(self.name, "connect").inc()
            log.warning("upstream unreachable", extra={"upstream": self.name, "error": str(exc)[:200]})
            return UpstreamUnreachable(
                f"The {self.name} service cannot be reached.", headers={"Retry-After": "1"}
            )
        UPSTREAM_FAILURES.labels(self.name, "protocol").inc()
        log.warning("upstream exchange failed", extra={"upstream": self.name, "error": type(exc).__name__})
        return BadGateway(f"The {self.name} service sent no valid response.")


def _client_side_cause(exc: BaseException) -> BaseException | None:
    """aiohttp writes the body in a task of its own and wraps what our body iterator raised."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BodyTooLarge | ClientDisconnected):
            return seen
        seen = seen.__cause__
    return None


class ForwardedResponse:
    """The upstream's response, body unread; `close()` frees its connection and pool slot."""

    def __init__(self, upstream: Upstream, response: aiohttp.ClientResponse) -> None:
        self.upstream = upstream
        self.response = response
        self.status = response.status
        self.raw_headers = [(name.lower(), value) for name, value in response.raw_headers]
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            # A body read to its end returns the connection to the pool; otherwise it is closed.
            self.response.release()
            self.upstream._slots.release()


async def relay_response(
    forwarded: ForwardedResponse, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send
) -> None:
    """Stream the upstream's response to the client as it arrives. A large or open-ended body is
    abandoned when the client disconnects, instead of being read to the end for nobody."""
    response = forwarded.response
    await send({"type": "http.response.start", "status": forwarded.status, "headers": headers})
    length = response.content_length
    if response.method == "HEAD" or (length is not None and length <= WATCH_DISCONNECT_ABOVE):
        await _pump(forwarded, send)
        return
    pump = asyncio.ensure_future(_pump(forwarded, send))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watcher):
            if not task.done():
                task.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    if not pump.cancelled():
        pump.result()  # re-raises a failure mid-body, so the server cuts the connection


async def _pump(forwarded: ForwardedResponse, send: Send) -> None:
    content = forwarded.response.content
    try:
        while True:
            chunk = await content.readany()
            if not chunk:
                break
            # Finish the client's response with the last byte, not one read later.
            await send({"type": "http.response.body", "body": chunk, "more_body": not content.at_eof()})
            if content.at_eof():
                return
    except aiohttp.ClientError as exc:
        UPSTREAM_FAILURES.labels(forwarded.upstream.name, "truncated").inc()
        log.warning(
            "upstream response cut short",
            extra={"upstream": forwarded.upstream.name, "error": type(exc).__name__},
        )
        raise UpstreamResponseBroken(type(exc).__name__) from exc
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class UpstreamResponseBroken(Exception):
    """The upstream failed after its response started: all we can do is cut the connection."""


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def request_target(scope: Scope) -> bytes:
    raw_path: bytes | None = scope.get("raw_path")
    if not raw_path:
        raw_path = quote(scope["path"]).encode("ascii")
    query: bytes = scope.get("query_string", b"")
    return raw_path + b"?" + query if query else raw_path
