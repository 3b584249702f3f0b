"""Redis commands on the request path: one pipelined connection, replies parsed by hiredis.

Every proxied request makes one small batch of Redis commands (the denylist lookup and the
rate-limit script). redis-py's client spends more CPU on a batch than the round trip itself takes
(its pool bookkeeping, retry and observability layers, command packing and the stream reader:
about 160 µs of a request's 1 ms here, by py-spy), so the lane talks to Redis itself: commands
are packed into one write, and the replies are parsed by hiredis (the C RESP parser redis-py uses
when installed) as they arrive. Requests in flight share the connection: Redis answers in order,
so each batch waits for the next replies in turn (pipelining, as redis-py's own pipelines do).

Failures are redis-py's exception classes, so callers need to know no other: the connection
failing or refusing is `ConnectionError`, no answer within the timeout is `TimeoutError` (the
connection is then dropped, as a late reply would go to the wrong batch), and a command's error
reply comes back in its place as `ResponseError` (`NoScriptError` for NOSCRIPT). A dropped
connection is made again by the next batch. The URL is read as redis-py reads it (redis://,
rediss:// for TLS, unix://; user, password and database number); a password or database is
sent as AUTH and SELECT ahead of the connection's first batch.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# (future of the batch's replies, how many replies it waits for, the replies so far)
_Batch = tuple[asyncio.Future[list[Any]], int, list[Any]]


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """The commands in RESP, as one buffer. Arguments are bytes, str, int or float."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for argument in command:
            data = argument if isinstance(argument, bytes) else str(argument).encode()
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def _reply(reply: Any) -> Any:
    if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.reader = hiredis.Reader(replyError=ResponseError, protocolError=RedisConnectionError)
        self.waiting: deque[_Batch] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        try:
            while (reply := self.reader.gets()) is not False:
                future, count, replies = waiting[0]
                replies.append(_reply(reply))
                if len(replies) == count:
                    waiting.popleft()
                    if not future.done():
                        future.set_result(replies)
        except (RedisConnectionError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.fail(RedisConnectionError(f"Redis sent an unexpected reply: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail_waiting(RedisConnectionError(f"Connection to Redis lost: {exc or 'closed'}"))

    def fail(self, exc: Exception) -> None:
        """Give up on the connection: every batch waiting on it fails with `exc`."""
        self.lost = True
        self._fail_waiting(exc)
        if self.transport is not None:
            self.transport.abort()

    def _fail_waiting(self, exc: Exception) -> None:
        while self.waiting:
            future, _, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class RedisLane:
    def __init__(self, url: str, *, timeout: float) -> None:
        options = parse_url(url)
        self._timeout = timeout
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = int(options.get("port", 6379))
        self._ssl = ssl.create_default_context() if options.get("connection_class") is SSLConnection else None
        if self._path is not None and options.get("connection_class") is not UnixDomainSocketConnection:
            raise ValueError(f"unsupported Redis URL: {url}")
        handshake: list[tuple[Any, ...]] = []
        if options.get("password") is not None:
            user = options.get("username")
            handshake.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if int(options.get("db", 0)):
            handshake.append(("SELECT", int(options["db"])))
        self._handshake = handshake
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def execute(self, *commands: Sequence[Any]) -> list[Any]:
        """Each command's reply, in order; a command's error reply comes back as the exception
        (not raised), so one failing command does not hide the others' replies."""
        protocol = self._protocol
        if protocol is None or protocol.lost or protocol.transport is None or protocol.transport.is_closing():
            protocol = await self._connect()
        return await self._send(protocol, pack(commands), len(commands))

    async def _send(self, protocol: _Protocol, data: bytes, count: int) -> list[Any]:
        loop = protocol.loop  # asyncio.get_running_loop() costs a getpid() system call on 3.11
        future: asyncio.Future[list[Any]] = loop.create_future()
        protocol.waiting.append((future, count, []))
        assert protocol.transport is not None
        try:
            protocol.transport.write(data)
        except (RuntimeError, OSError) as exc:  # closed under us (uvloop raises RuntimeError)
            protocol.fail(RedisConnectionError(f"Cannot send to Redis: {exc}"))
        timer = loop.call_later(self._timeout, _time_out, protocol, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def _connect(self) -> _Protocol:
        """The connection, made once for every batch that finds none."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                if self._path is not None:
                    _, protocol = await loop.create_unix_connection(_Protocol, self._path)
                else:
                    _, protocol = await loop.create_connection(
                        _Protocol, self._host, self._port, ssl=self._ssl
                    )
        except TimeoutError:
            raise RedisTimeoutError("Timed out connecting to Redis") from None
        except OSError as exc:
            raise RedisConnectionError(f"Cannot connect to Redis: {exc}") from None
        if self._handshake:
            for reply in await self._send(protocol, pack(self._handshake), len(self._handshake)):
                if isinstance(reply, Exception):
                    protocol.fail(RedisConnectionError(f"Redis refused the connection: {reply}"))
                    raise RedisConnectionError(f"Redis refused the connection: {reply}")
        self._protocol = protocol
        return protocol

    async def aclose(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()


def _time_out(protocol: _Protocol, future: asyncio.Future[list[Any]]) -> None:
    if not future.done():
        # Its replies may still come, and would then be taken for the next batch's.
        protocol.fail(RedisTimeoutError("Timed out waiting for Redis"))
