"""The streaming forwarder: one pool of keep-alive connections per upstream (`transport.http1`),
hop-by-hop headers stripped both ways, bodies streamed both ways, retries and the circuit breaker
around each exchange.

Retries: only idempotent methods, only after a connect failure (nothing reached the upstream),
and only while the request body has not started to stream (so it can be sent again whole).
Errors become problem+json before any byte of a response is sent: connect failure, a connection
reset before any answer (the upstream restarting), open circuit or too many requests in flight →
503 with Retry-After, invalid answer → 502, timeout → 504; once the upstream's response has
started, a failure can only cut the connection (the client sees a truncated body, never a wrong
one).

A hung upstream is shed in seconds: each request has its route's deadline (`read_timeout`); the
requests in flight to one upstream are capped (`max_in_flight`, a plain counter: beyond it, 503 at
once); and the breaker counts an answer as slow the moment it becomes so (the connection's timer
reports it), opening after `breaker_slow_threshold` of them within the window.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from gatehouse_platform.clientip import ClientAddress
from gatehouse_platform.errors import DomainError, ServiceUnavailable
from gateway.breaker import CircuitBreaker
from gateway.metrics import RETRIES, UPSTREAM_FAILURES, UpstreamMetrics, record_breaker_state
from gateway.settings import UpstreamSettings
from gateway.transport.http1 import (
    ConnectFailed,
    Connection,
    ConnectionLost,
    ConnectionPool,
    Headers,
    ReadTimedOut,
    UpstreamError,
    write_streamed,
)

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
        b"content-length",  # the body's framing is the forwarder's (it may buffer or stream it)
    }
)
# Response headers the gateway sets itself: the server adds Server and Date; CORS is the edge's.
RESPONSE_REPLACED = frozenset({b"server", b"date", b"x-request-id"})
RESPONSE_DROPPED = HOP_BY_HOP | RESPONSE_REPLACED
RESPONSE_DROPPED_PREFIXES = (b"proxy-", b"access-control-")  # CORS is decided at the edge
BUFFER_BODY_BELOW = 64 * 1024  # smaller request bodies are read whole: cheaper, and retryable
WATCH_DISCONNECT_ABOVE = 256 * 1024  # stop reading large downloads when the client goes away


class BadGateway(DomainError):
    status = 502
    slug = "bad-gateway"
    title = "Bad gateway"


class UpstreamUnreachable(ServiceUnavailable):
    """Nothing reached the service (it is down, restarting or not listening yet): 503, as for an
    open circuit, so a client sees one answer, with Retry-After, for the whole outage."""

    slug = "upstream-unreachable"
    title = "Upstream unreachable"


class UpstreamReset(ServiceUnavailable):
    """The connection was closed or reset before any answer: the upstream is restarting (or
    stopping). 503 like unreachable, not 502: nothing it answered was wrong."""

    slug = "upstream-reset"
    title = "Upstream connection reset"


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
    """The header names a Connection header lists (hop-by-hop too). Names are lower-case here:
    uvicorn and `transport.http1` both give them so."""
    names: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    return names


def upstream_request_headers(
    headers: list[tuple[bytes, bytes]],
    *,
    request_id: str,
    traceparent: str,
    tracestate: bytes | None,
    client: ClientAddress,
    peer: str | None,
    scheme: str,
    authorization: bytes | None = None,
) -> Headers:
    """The client's headers minus hop-by-hop ones (and its body framing), plus X-Request-ID, traceparent and
    X-Forwarded-*. Forwarding headers from a peer that is not a trusted proxy are replaced, never
    extended: the upstream must not believe what a client wrote about itself. `authorization`
    replaces the client's (an API key's exchanged access token: upstreams never see a key)."""
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
        if name in HOP_BY_HOP or name in named or name.startswith(b"proxy-"):
            continue
        if authorization is not None and name == b"authorization":
            continue
        out.append((name, value))
    if authorization is not None:
        out.append((b"authorization", authorization))
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
    return out


def downstream_response_headers(
    headers: list[tuple[bytes, bytes]], edge_headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones, followed by the edge's own
    (X-Request-ID, CORS, rate limits), which replace any the upstream sent of the same name."""
    dropped = RESPONSE_DROPPED.union([name for name, _ in edge_headers], _connection_tokens(headers))
    kept = [
        header
        for header in headers
        if not (header[0] in dropped or header[0].startswith(RESPONSE_DROPPED_PREFIXES))
    ]
    return kept + edge_headers


class RequestBody:
    """The client's body as it arrives, counted against the size limit (which Content-Length
    alone cannot enforce: chunked bodies have none). `started` tells whether any of it may have
    been sent upstream, which rules out a retry."""

    def __init__(self, receive: Receive, limit: int, length: int | None) -> None:
        self._receive = receive
        self._limit = limit
        self.length = length  # as declared (Content-Length), or None for a chunked body
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
    """One upstream service: its connection pool, circuit breaker and retry policy."""

    def __init__(self, name: str, config: UpstreamSettings) -> None:
        self.name = name
        self.config = config
        self.breaker = CircuitBreaker(
            name,
            failure_threshold=config.breaker_failure_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
            slow_threshold=config.breaker_slow_threshold,
            slow_window_seconds=config.breaker_slow_window_seconds,
            on_change=record_breaker_state,
        )
        self.pool = ConnectionPool(
            config.url,
            connect_timeout=config.connect_timeout_seconds,
            read_timeout=config.read_timeout_seconds,
            keepalive_expiry=config.keepalive_expiry_seconds,
            on_slow=self._slow,
        )
        # Requests in flight (each holds one connection), capped: beyond the cap, 503 at once (no
        # verdict on the upstream: it may only be busy). A counter, not a semaphore: nothing waits.
        self.in_flight = 0
        self._max_in_flight = config.max_in_flight
        self._failure_statuses = frozenset(config.breaker_failure_statuses)
        self.metrics = UpstreamMetrics(name)

    async def aclose(self) -> None:
        self.pool.close()

    async def get(self, path: str, *, within: float) -> tuple[int, bytes]:
        """A plain GET of the upstream's own (readiness, OpenAPI): no breaker, no retries."""
        async with asyncio.timeout(within):
            connection = await self.pool.acquire()
            try:
                connection.begin(head_only=False, slow_after=math.inf)  # not the breaker's business
                connection.write(self.pool.request_head("GET", path.encode(), [], b""))
                status, _ = await connection.response_head()
                body = b"".join([chunk async for chunk in _chunks(connection)])
            except BaseException:
                connection.close()
                raise
            self.pool.release(connection)
            return status, body

    async def send(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: RequestBody | bytes | None,
        *,
        read_timeout: float | None = None,
        slow_after: float | None = None,
    ) -> ForwardedResponse:
        """Send the request; the response comes back with its body unread (stream it, then close).
        `read_timeout` and `slow_after` are the route's (default: the upstream's)."""
        if self.in_flight >= self._max_in_flight:
            UPSTREAM_FAILURES.labels(self.name, "busy").inc()
            raise UpstreamBusy(
                f"Too many requests in flight to the {self.name} service.", headers={"Retry-After": "1"}
            )
        if slow_after is None:
            slow_after = self.config.breaker_slow_seconds
        retries_left = self.config.connect_retries if method in IDEMPOTENT_METHODS else 0
        self.in_flight += 1
        try:
            while True:
                probe = self.breaker.acquire()
                try:
                    response = await self._exchange(method, target, headers, body, read_timeout, slow_after)
                except ConnectFailed as exc:
                    self.breaker.failure(probe)
                    streamed = isinstance(body, RequestBody) and body.started
                    if retries_left > 0 and not streamed:
                        retries_left -= 1
                        RETRIES.labels(self.name).inc()
                        await asyncio.sleep(self.config.retry_backoff_seconds)
                        continue
                    raise self._failure(exc) from None
                except UpstreamError as exc:
                    self.breaker.failure(probe)
                    raise self._failure(exc) from None
                except BaseException:  # the client's body failed us (too large, or it left): no verdict
                    self.breaker.release(probe)
                    raise
                if response.status in self._failure_statuses:
                    UPSTREAM_FAILURES.labels(self.name, "status").inc()
                    self.breaker.failure(probe)
                else:
                    self.breaker.success(probe)
                return response
        except BaseException:
            self.in_flight -= 1
            raise

    def _slow(self) -> None:
        """A head has not come within its route's slow threshold (the connection's timer)."""
        UPSTREAM_FAILURES.labels(self.name, "slow").inc()
        self.breaker.slow()

    async def _exchange(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: RequestBody | bytes | None,
        read_timeout: float | None,
        slow_after: float,
    ) -> ForwardedResponse:
        connection = await self.pool.acquire()
        writer: asyncio.Future[None] | None = None
        try:
            connection.begin(method == "HEAD", read_timeout, slow_after)
            if body is None or isinstance(body, bytes):
                framing = b"content-length: %d\r\n" % len(body) if body is not None else b""
                head = self.pool.request_head(method, target, headers, framing)
                connection.write(head + body if body else head)  # one write for a small request
                status, response_headers = await connection.response_head()
            else:
                chunked = body.length is None
                framing = (
                    b"transfer-encoding: chunked\r\n"
                    if body.length is None
                    else b"content-length: %d\r\n" % body.length
                )
                connection.write(self.pool.request_head(method, target, headers, framing))
                writer = asyncio.ensure_future(write_streamed(connection, body, chunked))
                status, response_headers = await _head_while_writing(connection, writer)
        except BaseException:
            connection.close()
            if writer is not None and not writer.done():
                writer.cancel()
            raise
        return ForwardedResponse(self, connection, method, status, response_headers, writer)

    def _failure(self, exc: UpstreamError) -> DomainError:
        if isinstance(exc, ReadTimedOut):
            UPSTREAM_FAILURES.labels(self.name, "timeout").inc()
            log.warning("upstream timed out", extra={"upstream": self.name, "error": str(exc)})
            return UpstreamTimeout(f"The {self.name} service did not answer in time.")
        if isinstance(exc, ConnectFailed):
            UPSTREAM_FAILURES.labels(self.name, "connect").inc()
            log.warning("upstream unreachable", extra={"upstream": self.name, "error": str(exc)[:200]})
            return UpstreamUnreachable(
                f"The {self.name} service cannot be reached.", headers={"Retry-After": "1"}
            )
        if isinstance(exc, ConnectionLost):
            UPSTREAM_FAILURES.labels(self.name, "reset").inc()
            log.warning("upstream connection reset", extra={"upstream": self.name, "error": str(exc)[:200]})
            return UpstreamReset(
                f"The {self.name} service closed the connection without answering (restarting?).",
                headers={"Retry-After": "1"},
            )
        UPSTREAM_FAILURES.labels(self.name, "protocol").inc()
        log.warning("upstream exchange failed", extra={"upstream": self.name, "error": str(exc)[:200]})
        return BadGateway(f"The {self.name} service sent no valid response.")


async def _head_while_writing(connection: Connection, writer: asyncio.Future[None]) -> tuple[int, Headers]:
    """The response's head, which may come before the whole body is sent (an early 413, say);
    the client's body failing (too large, or the client left) ends the exchange first."""
    head = asyncio.ensure_future(connection.response_head())
    try:
        done, _ = await asyncio.wait(
            {head, cast("asyncio.Future[Any]", writer)}, return_when=asyncio.FIRST_COMPLETED
        )
        if head in done:
            return head.result()
        writer.result()  # raises what stopped the body: the client's failure, or the upstream's
        return await head  # the whole body is sent: now the answer
    finally:
        if not head.done():
            head.cancel()


async def _chunks(connection: Connection) -> AsyncIterator[bytes]:
    while chunk := await connection.read_chunk():
        yield chunk


class ForwardedResponse:
    """The upstream's response, body unread; `close()` frees its connection and pool slot."""

    def __init__(
        self,
        upstream: Upstream,
        connection: Connection,
        method: str,
        status: int,
        headers: Headers,
        writer: asyncio.Future[None] | None,
    ) -> None:
        self.upstream = upstream
        self.connection = connection
        self.method = method
        self.status = status
        self.raw_headers = headers
        self._writer = writer
        self._closed = False

    @property
    def content_length(self) -> int | None:
        for name, value in self.raw_headers:
            if name == b"content-length":
                return int(value) if value.isdigit() else None
        return None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            writer = self._writer
            if writer is not None and not writer.done():
                writer.cancel()  # the upstream answered before taking the whole body
                self.connection.close()
            elif writer is not None and not writer.cancelled() and writer.exception() is not None:
                self.connection.close()  # the body failed after the upstream had answered
            # A body read to its end returns the connection to the pool; otherwise it is closed.
            self.upstream.pool.release(self.connection)
            self.upstream.in_flight -= 1


async def relay_response(
    forwarded: ForwardedResponse, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send
) -> None:
    """Stream the upstream's response to the client as it arrives. A large or open-ended body is
    abandoned when the client disconnects, instead of being read to the end for nobody."""
    await send({"type": "http.response.start", "status": forwarded.status, "headers": headers})
    length = forwarded.content_length
    if forwarded.method == "HEAD" or (length is not None and length <= WATCH_DISCONNECT_ABOVE):
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
    connection = forwarded.connection
    try:
        while True:
            chunk = await connection.read_chunk()
            # Finish the client's response with the last byte, not one read later.
            done = connection.at_eof()
            await send({"type": "http.response.body", "body": chunk, "more_body": not done})
            if done:
                return
    except UpstreamError as exc:
        UPSTREAM_FAILURES.labels(forwarded.upstream.name, "truncated").inc()
        extra = {"upstream": forwarded.upstream.name, "error": str(exc)[:200]}
        log.warning("upstream response cut short", extra=extra)
        raise UpstreamResponseBroken(type(exc).__name__) from exc


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
