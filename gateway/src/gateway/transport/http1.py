"""HTTP/1.1 to the upstreams: a pool of keep-alive connections per upstream, responses parsed by
httptools (llhttp, the C parser uvicorn reads our clients' requests with).

The gateway forwards every request, so what one exchange costs is paid on all of them. A general
client does much a proxy never needs (URL objects, cookies, redirects, auth, tracing hooks,
decompression, a task per request): profiled with py-spy, aiohttp's client was a quarter of the
gateway's CPU per proxied request, about 250 µs (httpx's cost several times aiohttp's). Here an
exchange is one write of the request head (and of a small body with it), llhttp's callbacks
filling in the response, and a future per wait; bench/gateway.py's "proxy CPU" column shows the
gateway's whole cost per request.

Covered: Content-Length, chunked and read-until-close response bodies; bodies of HEAD, 204 and 304
responses (none); 1xx interim responses (skipped); trailer fields (dropped: the gateway forwards
none); keep-alive as the response allows it; backpressure both ways (reading pauses while a large
body waits for the client; writing waits while the socket's buffer is full); a read timeout
between bytes of the response (per exchange: each route has its own); connect timeout; a head
overdue by the exchange's `slow_after` reported once, while it is still awaited, through the pool's
`on_slow` (the circuit breaker counts slow answers; the read timeout's timer serves both). A
connection closed or reset before any byte of the response is `ConnectionLost` (the upstream
restarting: nothing it answered was wrong), any other broken exchange `ProtocolFailed`. The request
head is built from headers the ASGI server has validated already.

Framing is strict, so that the gateway and an upstream can never disagree about where a response
ends (a disagreement would hand one request's leftovers to the next): llhttp refuses
Content-Length with Transfer-Encoding, duplicate or invalid lengths and chunk sizes, bare LF,
obs-fold and control bytes; on top of it a status outside 100-599 (or a 101), any transfer coding
but one `chunked`, a head or trailer section over MAX_RESPONSE_HEAD_BYTES (httptools would buffer
it whole), and bytes nobody asked for (before the request, after the response, a body after HEAD's
head) are protocol failures. Any failure closes
the connection: only an exchange read to its end puts a connection back in the pool.
tests/test_transport_http1_framing.py holds this against generated valid and hostile responses.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

READ_PAUSE_ABOVE = 256 * 1024  # bytes of response body waiting for the client
READ_RESUME_BELOW = 64 * 1024
MAX_RESPONSE_HEAD_BYTES = 64 * 1024  # a response's status lines and fields: interim ones, trailers too


class UpstreamError(Exception):
    """The exchange with the upstream failed."""


class ConnectFailed(UpstreamError):
    """Nothing reached the upstream: refused, unreachable, or no connection within the timeout."""


class ReadTimedOut(UpstreamError):
    """The upstream sent nothing for longer than the read timeout."""


class ProtocolFailed(UpstreamError):
    """An invalid response, or the connection closed before the response was complete."""


class ConnectionLost(ProtocolFailed):
    """The connection closed (or was reset) before a byte of the response came: the upstream is
    restarting, or closed the connection as we sent. Unlike an invalid or truncated answer, this
    says nothing bad about what the upstream answers, only that it is not answering now."""


Headers = list[tuple[bytes, bytes]]


class Connection(asyncio.Protocol):
    """One keep-alive connection and the exchange on it (one at a time)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read_timeout: float,
        on_slow: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._default_read_timeout = read_timeout
        self._read_timeout = read_timeout
        self._on_slow = on_slow
        self._slow_at = math.inf
        self.slow = False  # this exchange's head took longer than its slow_after
        self._received = False  # any byte of this exchange's response
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self.status = 0
        self.headers: Headers = []
        self._keep_alive = False
        self._until_eof = False
        self._head_bytes = 0  # of the head (and trailers), interim responses included
        self._without_body = 0  # bytes received since the last body bytes (of a head, or trailers)
        self._body_seen = False  # in the bytes being parsed
        self.complete = True  # no exchange yet
        self._error: UpstreamError | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None

    # --- the exchange, as the proxy drives it --------------------------------------------------

    def begin(self, head_only: bool, read_timeout: float | None = None, slow_after: float = math.inf) -> None:
        """Start an exchange: the response that follows is parsed afresh. `read_timeout` (default
        the pool's) is the longest silence before and within the response; a head that has not come
        `slow_after` seconds from now calls the pool's `on_slow` once (the exchange goes on)."""
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._read_timeout = self._default_read_timeout if read_timeout is None else read_timeout
        self.slow = False
        self._received = False
        self.status = 0
        self.headers = []
        self._keep_alive = False
        self._until_eof = False
        self._head_bytes = 0
        self._without_body = 0
        self.complete = False
        self._body.clear()
        self._buffered = 0
        self._last_read = now = self._loop.time()
        self._slow_at = now + slow_after

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self.closed:  # the upstream closed it (after a complete answer, say)
            raise ConnectionLost("the connection is closed")
        assert self.transport is not None
        try:
            self.transport.write(data)
        except (RuntimeError, OSError) as exc:  # closed under us (uvloop raises RuntimeError)
            error = ConnectionLost(f"cannot send: {exc}")
            self._fail(error)
            raise error from None

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        while self._drained is not None and self._error is None:
            await asyncio.shield(self._drained)
        if self._error is not None:
            raise self._error

    async def response_head(self) -> tuple[int, Headers]:
        while not self.status:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self.status, self.headers

    async def read_chunk(self) -> bytes:
        """The body received so far and not yet read; b"" once the body is complete."""
        while not self._body:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        chunk = self._body.popleft() if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def at_eof(self) -> bool:
        return self.complete and not self._body

    @property
    def usable(self) -> bool:
        """Open, and not being closed by the upstream (whose close we may not have handled yet)."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    @property
    def reusable(self) -> bool:
        return self.complete and self._keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        self._received = True
        parser = self._parser
        if parser is None:
            self._fail(ProtocolFailed("the upstream sent bytes nobody asked for"))
            return
        self._body_seen = False
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolFailed(f"invalid response: {exc}"))
            return
        if self._body_seen or self.complete:
            self._without_body = 0
        else:  # a head or trailer field that does not end would be buffered by httptools, whole
            self._without_body += len(data)
            if self._without_body > MAX_RESPONSE_HEAD_BYTES:
                error = f"a head or trailer section over {MAX_RESPONSE_HEAD_BYTES} bytes"
                self._fail(ProtocolFailed(f"invalid response: {error}"))

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self._error is None:
            if self.status and self._until_eof:
                self._finish()  # the body ends where the connection does
            elif not self._received:
                self._fail(
                    ConnectionLost(f"the connection closed before any answer ({exc or 'by the upstream'})")
                )
            else:
                self._fail(ProtocolFailed(f"the connection closed mid-response ({exc or 'by the upstream'})"))
        self._cancel_timer()
        self._release_writers()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        self._release_writers()

    # --- llhttp's callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise httptools.HttpParserError("a second response to one request")

    def on_status(self, reason: bytes) -> None:
        self._head_bytes += len(reason) + 15  # "HTTP/1.1 200 " and CRLF

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > MAX_RESPONSE_HEAD_BYTES:
            raise httptools.HttpParserError(f"a head over {MAX_RESPONSE_HEAD_BYTES} bytes")
        if not self.status:  # else a trailer field, after a chunked body: not forwarded
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._head_bytes += 2  # the empty line
        if self._head_bytes > MAX_RESPONSE_HEAD_BYTES:
            raise httptools.HttpParserError(f"a head over {MAX_RESPONSE_HEAD_BYTES} bytes")
        status = self._parser.get_status_code()
        if not 100 <= status <= 599:  # llhttp takes any three digits; 0xx would pass for interim
            raise httptools.HttpParserError(f"status {status:03d}")
        if status < 200:
            if status == 101:  # the gateway never asks to switch protocols
                raise httptools.HttpParserError("unexpected 101 Switching Protocols")
            self.headers = []  # an interim response (103 Early Hints): the real one follows
            return
        framed = chunked = False
        for name, value in self.headers:
            if name == b"transfer-encoding":
                # Only `chunked`, once: llhttp would decode `gzip, chunked` and pass the gzip on
                # unnamed (the header is hop-by-hop), and read `gzip` alone to the close.
                if chunked or value.strip().lower() != b"chunked":
                    raise httptools.HttpParserError(f"transfer coding {value!r}")
                framed = chunked = True
            elif name == b"content-length":
                framed = True
        self.status = status
        self._keep_alive = self._parser.should_keep_alive()
        if self._head_only:
            self._finish()  # no body follows a response to HEAD, whatever its headers say
            return
        self._until_eof = not framed and status not in (204, 304)
        self._wake()

    def on_chunk_header(self) -> None:
        if self.complete:  # chunks after HEAD's head: the stream is out of step
            raise httptools.HttpParserError("a body where none belongs")

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body after HEAD's headers: the stream is out of step
            raise httptools.HttpParserError("a body where none belongs")
        self._body_seen = True
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_PAUSE_ABOVE and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status and not self.complete:
            self._finish()
        # else: the end of an interim response, or of HEAD's (finished at its headers)

    # --- internals -------------------------------------------------------------------------------

    def _finish(self) -> None:
        self.complete = True
        self._parser = None  # bytes after the response are a protocol error
        self._cancel_timer()
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self._parser = None
        self.close()
        self._wake()
        self._release_writers()

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        if self._timer is None:
            self._timer = self._loop.call_at(self._next_check(), self._on_timer)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _next_check(self) -> float:
        deadline = self._last_read + self._read_timeout
        if not self.status and not self.slow and self._slow_at < deadline:
            return self._slow_at
        return deadline

    def _on_timer(self) -> None:
        """One timer per exchange, moved on as bytes arrive: it reports a slow head once (the
        breaker counts slow answers while they are still coming) and fails the exchange only when
        a read is waiting and nothing came for the read timeout."""
        self._timer = None
        if self.complete or self._error is not None:
            return
        now = self._loop.time()
        if not self.status and not self.slow and now >= self._slow_at:
            self.slow = True
            if self._on_slow is not None:
                self._on_slow()
        if self._waiter is not None and now >= self._last_read + self._read_timeout:
            self._fail(ReadTimedOut(f"no response bytes for {self._read_timeout} s"))
        elif self._waiter is not None:
            self._timer = self._loop.call_at(self._next_check(), self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release_writers(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)


class ConnectionPool:
    """Keep-alive connections to one upstream (plain HTTP, or HTTPS for an https:// URL), most
    recently used first. How many are in use at once is the caller's to bound."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        keepalive_expiry: float,
        on_slow: Callable[[], None] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream URL must be http(s)://host[:port]: {url}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc.rpartition("@")[2].encode("ascii")
        self.path_prefix = parts.path.rstrip("/").encode("ascii")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keepalive_expiry = keepalive_expiry
        self._on_slow = on_slow
        self._idle: list[Connection] = []

    async def acquire(self) -> Connection:
        """An idle connection that is still open and young enough, else a new one."""
        now = time.monotonic()  # not the loop's clock: asyncio.get_running_loop() costs a getpid()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable and now - connection.idle_since < self._keepalive_expiry:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop, self._read_timeout, self._on_slow),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                )
        except TimeoutError:
            raise ConnectFailed(f"no connection within {self._connect_timeout} s") from None
        except OSError as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from None
        return connection

    def release(self, connection: Connection) -> None:
        """Back into the pool if its exchange ended cleanly and the upstream keeps it alive."""
        if connection.reusable and self._keepalive_expiry > 0:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def request_head(self, method: str, target: bytes, headers: Headers, framing: bytes) -> bytes:
        """The request line and headers; `framing` is the Content-Length or Transfer-Encoding line
        (or b"" for no body)."""
        line = (method.encode(), self.path_prefix, target, self.host_header)
        lines = [b"%s %s%s HTTP/1.1\r\nhost: %s\r\n" % line]
        lines += [b"%s: %s\r\n" % header for header in headers]
        lines.append(framing)
        lines.append(b"\r\n")
        return b"".join(lines)


async def write_streamed(connection: Connection, body: AsyncIterable[bytes], chunked: bool) -> None:
    """Send a request body as it arrives from the client (chunk-encoded if its length is unknown)."""
    async for chunk in body:
        connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        await connection.drain()
    if chunked:
        connection.write(b"0\r\n\r\n")
