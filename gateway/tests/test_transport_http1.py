"""The gateway's HTTP/1.1 client against scripted upstreams on real sockets: what goes on the wire,
every way a response can be framed, keep-alive kept and given up exactly when it should be, and
each way an upstream can fail (closing mid-body, garbage, silence) ending the exchange cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from conftest import on_uvloop
from gateway.transport.http1 import (
    MAX_RESPONSE_HEAD_BYTES,
    READ_PAUSE_ABOVE,
    ConnectFailed,
    ConnectionLost,
    ConnectionPool,
    ProtocolFailed,
    ReadTimedOut,
    write_streamed,
)
from scripted_upstream import GET, OK, Answer, exchange, pool_for, sent, upstream


async def test_the_request_goes_out_as_one_http11_message_with_the_upstreams_host() -> None:
    async with upstream(OK) as server:
        pool = ConnectionPool(f"{server.url}/base/", connect_timeout=1, read_timeout=2, keepalive_expiry=4)
        _, status, headers, body = await exchange(pool, "POST", b"/x?q=1", b'{"a": 1}')

    assert (status, body) == (200, b"ok")
    assert (b"content-length", b"2") in headers
    (request,) = server.requests
    assert (request.method, request.url, request.body) == (b"POST", b"/base/x?q=1", b'{"a": 1}')
    assert request.headers == [
        (b"host", server.url.removeprefix("http://").encode()),
        (b"x-test", b"1"),
        (b"content-length", b"8"),
    ]


async def test_a_chunked_body_is_decoded_and_the_connection_kept() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with upstream(chunked, OK) as server:
        pool = pool_for(server.url)
        first, _, _, body = await exchange(pool)
        second, _, _, again = await exchange(pool)

    assert (body, again) == (b"hello world", b"ok")
    assert first is second and server.connections == 1


async def test_a_body_without_length_ends_with_the_connection() -> None:
    async def until_close(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async with upstream(until_close, OK) as server:
        pool = pool_for(server.url)
        first, status, _, body = await exchange(pool)
        second, _, _, again = await exchange(pool)

    assert (status, body, again) == (200, b"all of it", b"ok")
    assert first is not second and server.connections == 2


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        pytest.param("HEAD", b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n", id="HEAD"),
        pytest.param("GET", b"HTTP/1.1 204 No Content\r\n\r\n", id="204"),
        pytest.param("GET", b"HTTP/1.1 304 Not Modified\r\ncontent-length: 1234\r\n\r\n", id="304"),
    ],
)
async def test_responses_that_have_no_body_keep_the_connection_in_step(method: str, answer: bytes) -> None:
    async with upstream(answer, OK) as server:
        pool = pool_for(server.url, read_timeout=0.5)
        first, status, _, body = await exchange(pool, method)
        second, _, _, after = await exchange(pool)

    assert body == b"" and status in (200, 204, 304)
    assert after == b"ok"  # the next response is read as its own, not as a body
    assert first is second and server.connections == 1


async def test_interim_responses_are_skipped() -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
    async with upstream(hints + OK) as server:
        _, status, headers, body = await exchange(pool_for(server.url))

    assert (status, body) == (200, b"ok")
    assert all(name != b"link" for name, _ in headers)


@pytest.mark.parametrize(
    "closing",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", id="connection: close"
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", id="HTTP/1.0"),
    ],
)
async def test_a_connection_the_upstream_will_close_is_not_reused(closing: bytes) -> None:
    async with upstream(closing, OK) as server:
        pool = pool_for(server.url)
        first, _, _, _ = await exchange(pool)
        second, _, _, after = await exchange(pool)

    assert first is not second and after == b"ok" and server.connections == 2


async def test_idle_connections_expire_and_closed_ones_are_passed_over() -> None:
    async def ok_then_close(writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        await writer.drain()
        writer.close()  # while idle in our pool

    async with upstream(OK, OK, ok_then_close, OK) as server:
        pool = pool_for(server.url, keepalive_expiry=0.2)
        first, _, _, _ = await exchange(pool)
        await asyncio.sleep(0.3)
        second, _, _, _ = await exchange(pool)
        third, _, _, _ = await exchange(pool)
        await asyncio.sleep(0.05)
        fourth, _, _, after = await exchange(pool)

    assert first is not second  # expired
    assert second is third  # young enough
    assert third is not fourth and after == b"ok"  # closed by the upstream: not used
    assert server.connections == 3


async def test_a_response_cut_short_fails_the_read() -> None:
    async def cut(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    async with upstream(cut) as server:
        with pytest.raises(ProtocolFailed, match="closed mid-response") as failed:
            await exchange(pool_for(server.url))
    assert not isinstance(failed.value, ConnectionLost)  # a wrong answer: the proxy's 502


async def test_a_connection_closed_or_reset_before_any_answer_is_a_lost_connection() -> None:
    """Not a wrong answer, no answer at all (the upstream restarting): the proxy's 503."""

    async def hang_up(writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def reset(writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    for answer in (hang_up, reset):
        async with upstream(answer) as server:
            with pytest.raises(ConnectionLost, match="before any answer"):
                await exchange(pool_for(server.url))


async def test_a_head_later_than_slow_after_is_reported_once_while_it_is_awaited() -> None:
    """The pool's on_slow runs the moment a head is overdue (the breaker counts it then, not when
    the answer ends); the exchange goes on, and a prompt head reports nothing."""
    reports: list[bool] = []

    async def late(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.4)
        writer.write(OK)
        await writer.drain()

    async with upstream(OK, late) as server:
        pool = ConnectionPool(
            server.url,
            connect_timeout=1,
            read_timeout=2,
            keepalive_expiry=4,
            on_slow=lambda: reports.append(True),
        )
        for expected_reports in (0, 1):
            connection = await pool.acquire()
            connection.begin(head_only=False, slow_after=0.1)
            connection.write(GET)
            head = asyncio.ensure_future(connection.response_head())
            await asyncio.sleep(0.25)
            assert len(reports) == expected_reports  # reported before the head came
            assert (await head)[0] == 200
            assert await connection.read_chunk() == b"ok"
            assert connection.slow is bool(expected_reports)
            pool.release(connection)
    assert reports == [True]


async def test_a_route_read_timeout_replaces_the_pools() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with upstream(silent) as server:
        connection = await pool_for(server.url, read_timeout=30).acquire()
        connection.begin(head_only=False, read_timeout=0.2)
        connection.write(GET)
        with pytest.raises(ReadTimedOut, match=r"for 0\.2 s"):
            await asyncio.wait_for(connection.response_head(), 3)


async def test_an_invalid_response_fails_the_exchange() -> None:
    async with upstream(b"SMTP ready\r\n\r\n") as server:
        with pytest.raises(ProtocolFailed, match="invalid response"):
            await exchange(pool_for(server.url))


async def test_bytes_after_the_response_retire_the_connection() -> None:
    async with upstream(OK + OK, OK) as server:
        pool = pool_for(server.url)
        first, _, _, body = await exchange(pool)
        await asyncio.sleep(0.05)
        second, _, _, after = await exchange(pool)

    assert (body, after) == (b"ok", b"ok")
    assert first is not second


# Found by the framing properties (test_transport_http1_framing.py); each failed before its fix.


async def test_trailer_fields_are_not_taken_for_header_fields() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nset-cookie: session=forged\r\nx-trailer: 1\r\n\r\n"
    )
    async with upstream(chunked, OK) as server:
        pool = pool_for(server.url)
        first, _, headers, body = await exchange(pool)
        second, _, _, after = await exchange(pool)

    assert headers == [(b"transfer-encoding", b"chunked")]  # the gateway forwards no trailers
    assert (body, after) == (b"ok", b"ok")
    assert first is second


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 000 X\r\ncontent-length: 4\r\n\r\nevil" + OK, id="000"),
        pytest.param(b"HTTP/1.1 099 X\r\ncontent-length: 0\r\n\r\n" + OK, id="099"),
        pytest.param(b"HTTP/1.1 600 X\r\ncontent-length: 2\r\n\r\nok", id="600"),
        pytest.param(b"HTTP/1.1 999 X\r\ncontent-length: 2\r\n\r\nok", id="999"),
    ],
)
async def test_a_status_outside_100_to_599_is_an_invalid_response(answer: bytes) -> None:
    async with upstream(answer) as server:
        with pytest.raises(ProtocolFailed, match="invalid response"):
            await exchange(pool_for(server.url, read_timeout=0.5))


@pytest.mark.parametrize(
    "codings",
    [
        pytest.param(b"transfer-encoding: gzip, chunked\r\n", id="gzip, chunked"),
        pytest.param(b"transfer-encoding: chunked, chunked\r\n", id="chunked twice"),
        pytest.param(b"transfer-encoding: gzip\r\n", id="gzip"),
        pytest.param(b"transfer-encoding: chunked, gzip\r\n", id="chunked, gzip"),
        pytest.param(b"transfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n", id="two fields"),
    ],
)
async def test_a_transfer_coding_other_than_chunked_is_an_invalid_response(codings: bytes) -> None:
    # Decoding the chunks and passing the rest on as identity would hand the client a body in
    # an encoding nobody names; reading to the close would stall the exchange.
    answer = b"HTTP/1.1 200 OK\r\n" + codings + b"\r\n5\r\nhello\r\n0\r\n\r\n"
    async with upstream(answer) as server:
        with pytest.raises(ProtocolFailed, match="invalid response"):
            await exchange(pool_for(server.url, read_timeout=0.5))


async def test_a_chunked_body_after_a_head_response_retires_the_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    async with upstream(head + b"0\r\n\r\n", OK) as server:
        pool = pool_for(server.url)
        first, status, _, body = await exchange(pool, "HEAD")
        second, _, _, after = await exchange(pool)

    assert (status, body, after) == (200, b"", b"ok")
    assert first is not second


async def endless_trailer(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-trailer: ")
    for _ in range(8 * MAX_RESPONSE_HEAD_BYTES // 4096):  # until the client gives up
        writer.write(b"a" * 4096)
        await writer.drain()
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nx-big: %s\r\ncontent-length: 2\r\n\r\nok" % (b"a" * MAX_RESPONSE_HEAD_BYTES),
            id="one field",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * (2 * MAX_RESPONSE_HEAD_BYTES), id="unterminated"),
        pytest.param(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" * (MAX_RESPONSE_HEAD_BYTES // 40) + OK,
            id="interim responses",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
            + b"x-trailer: 1\r\n" * (MAX_RESPONSE_HEAD_BYTES // 14),
            id="trailer fields",
        ),
        pytest.param(endless_trailer, id="endless trailer"),
    ],
)
async def test_a_head_or_trailer_section_over_the_limit_is_an_invalid_response(answer: Answer) -> None:
    async with upstream(answer) as server:
        with pytest.raises(ProtocolFailed, match="invalid response"):
            await exchange(pool_for(server.url, read_timeout=0.5))


async def test_silence_is_a_read_timeout_before_the_head_and_between_body_bytes() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def stalls(writer: asyncio.StreamWriter) -> None:
        for piece in (b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n", b"a", b"b"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.15)  # under the timeout each time: the timer moves on
        await asyncio.sleep(5)

    async with upstream(silent) as server:
        with pytest.raises(ReadTimedOut):
            await asyncio.wait_for(exchange(pool_for(server.url, read_timeout=0.3)), 3)
    async with upstream(stalls) as server:
        connection = await sent(pool_for(server.url, read_timeout=0.3), GET)
        assert (await connection.response_head())[0] == 200
        received: list[bytes] = []

        async def read_on() -> None:
            while chunk := await connection.read_chunk():
                received.append(chunk)

        with pytest.raises(ReadTimedOut):
            await asyncio.wait_for(read_on(), 3)
        assert b"".join(received) == b"ab"
        assert connection.closed


async def test_writing_after_the_upstream_answered_and_closed_is_a_protocol_failure() -> None:
    async def answer_and_close(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 413 Content Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with upstream(answer_and_close) as server:
        connection = await sent(
            pool_for(server.url), b"PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nfirst part"
        )
        assert (await connection.response_head())[0] == 413
        await asyncio.sleep(0.05)

        with pytest.raises(ProtocolFailed, match="closed"):  # not uvloop's RuntimeError
            connection.write(b"PUT / HTTP/1.1\r\nhost: x\r\n\r\n")


async def test_nothing_listening_is_a_connect_failure() -> None:
    with pytest.raises(ConnectFailed):
        await pool_for("http://127.0.0.1:1").acquire()


async def test_streamed_request_bodies_are_framed_by_length_or_by_chunks() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"abc", b"defg"):
            yield piece

    async with upstream(OK, OK) as server:
        pool = pool_for(server.url)
        for framing, chunked in (
            (b"content-length: 7\r\n", False),
            (b"transfer-encoding: chunked\r\n", True),
        ):
            connection = await sent(pool, pool.request_head("PUT", b"/up", [], framing))
            await write_streamed(connection, pieces(), chunked)
            assert await connection.response_head() == (200, [(b"content-length", b"2")])
            assert await connection.read_chunk() == b"ok"
            pool.release(connection)

    assert [r.body for r in server.requests] == [b"abcdefg", b"abcdefg"]
    assert (b"transfer-encoding", b"chunked") in server.requests[1].headers


async def test_a_body_the_client_is_slow_to_take_pauses_reading_from_the_upstream() -> None:
    total, written = 64 * 1024 * 1024, [0]

    async def large(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        block = b"x" * 65536
        while written[0] < total:
            writer.write(block)
            await writer.drain()
            written[0] += len(block)

    async with upstream(large) as server:
        connection = await sent(pool_for(server.url), GET)
        await connection.response_head()
        await asyncio.sleep(0.5)  # nobody reads: the upstream must be held back

        held_back_at = written[0]
        received = 0
        while chunk := await connection.read_chunk():
            assert len(chunk) <= READ_PAUSE_ABOVE + 256 * 1024  # at most one socket read more
            received += len(chunk)

    assert held_back_at < 16 * 1024 * 1024  # our buffer plus the kernel's, not the whole body
    assert received == total


@pytest.mark.parametrize(
    ("case", "args"),
    [
        pytest.param(case, args, id=case.__name__.removeprefix("test_"))
        for case, args in [
            (test_the_request_goes_out_as_one_http11_message_with_the_upstreams_host, ()),
            (test_a_chunked_body_is_decoded_and_the_connection_kept, ()),
            (test_a_body_without_length_ends_with_the_connection, ()),
            (
                test_responses_that_have_no_body_keep_the_connection_in_step,
                ("HEAD", b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"),
            ),
            (test_idle_connections_expire_and_closed_ones_are_passed_over, ()),
            (test_a_response_cut_short_fails_the_read, ()),
            (test_a_connection_closed_or_reset_before_any_answer_is_a_lost_connection, ()),
            (test_a_head_later_than_slow_after_is_reported_once_while_it_is_awaited, ()),
            (test_writing_after_the_upstream_answered_and_closed_is_a_protocol_failure, ()),
            (test_silence_is_a_read_timeout_before_the_head_and_between_body_bytes, ()),
            (test_streamed_request_bodies_are_framed_by_length_or_by_chunks, ()),
            (test_a_body_the_client_is_slow_to_take_pauses_reading_from_the_upstream, ()),
        ]
    ],
)
def test_on_uvloop(case: Callable[..., Awaitable[None]], args: tuple[object, ...]) -> None:
    on_uvloop(case, *args)
