"""A scripted upstream on a real socket and the client-side helpers the HTTP/1.1 client's tests
share (test_transport_http1 and its Hypothesis framing tests): the upstream reads each request
(framed by httptools' request parser) and writes the next scripted answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httptools

from gateway.transport.http1 import Connection, ConnectionPool

Answer = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


@dataclass
class Received:
    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass
class Upstream:
    """Answers each request it reads (framed by httptools' request parser) with the next answer;
    a new connection is first sent the next of `greetings`, if any (bytes nobody asked for)."""

    answers: list[Answer]
    greetings: list[bytes] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        complete: list[Received] = []
        current: list[Received] = []

        class Callbacks:
            def on_url(self, url: bytes) -> None:
                current.append(Received(parser.get_method(), url, []))

            def on_header(self, name: bytes, value: bytes) -> None:
                current[-1].headers.append((name.lower(), value))

            def on_body(self, body: bytes) -> None:
                current[-1].body += body

            def on_message_complete(self) -> None:
                complete.append(current.pop())

        parser = httptools.HttpRequestParser(Callbacks())
        try:
            if self.greetings:
                writer.write(self.greetings.pop(0))
                await writer.drain()
            while self.answers:
                data = await reader.read(65536)
                if not data:
                    return
                parser.feed_data(data)
                while complete and self.answers:
                    self.requests.append(complete.pop(0))
                    answer = self.answers.pop(0)
                    if isinstance(answer, bytes):
                        writer.write(answer)
                        await writer.drain()
                    else:
                        await answer(writer)
            await reader.read()  # keep the connection until the client leaves
        except (ConnectionError, httptools.HttpParserError, asyncio.CancelledError):
            pass  # the client left, or the test ended
        finally:
            writer.close()


@asynccontextmanager
async def upstream(*answers: Answer, greetings: tuple[bytes, ...] = ()) -> AsyncIterator[Upstream]:
    server_side = Upstream(list(answers), list(greetings))
    server = await asyncio.start_server(server_side.handle, "127.0.0.1", 0)
    server_side.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield server_side
    finally:
        server.close()


def pool_for(
    url: str, *, read_timeout: float = 2.0, keepalive_expiry: float = 4.0, connect_timeout: float = 1.0
) -> ConnectionPool:
    return ConnectionPool(
        url, connect_timeout=connect_timeout, read_timeout=read_timeout, keepalive_expiry=keepalive_expiry
    )


async def sent(pool: ConnectionPool, request: bytes) -> Connection:
    """A pooled connection with `request` written on it, its response not read yet."""
    connection = await pool.acquire()
    connection.begin(head_only=False)
    connection.write(request)
    return connection


async def exchange(
    pool: ConnectionPool,
    method: str = "GET",
    target: bytes = b"/x",
    body: bytes | None = None,
    seen: list[Connection] | None = None,
) -> tuple[Connection, int, list[tuple[bytes, bytes]], bytes]:
    """One request; the connection goes back to the pool (or is closed) as the proxy does it.
    The connection used is appended to `seen`, if given (also when the exchange fails)."""
    connection = await pool.acquire()
    if seen is not None:
        seen.append(connection)
    connection.begin(head_only=method == "HEAD")
    framing = b"content-length: %d\r\n" % len(body) if body is not None else b""
    connection.write(pool.request_head(method, target, [(b"x-test", b"1")], framing) + (body or b""))
    try:
        status, headers = await connection.response_head()
        parts = []
        while chunk := await connection.read_chunk():
            parts.append(chunk)
    except BaseException:
        connection.close()
        raise
    pool.release(connection)
    return connection, status, headers, b"".join(parts)
