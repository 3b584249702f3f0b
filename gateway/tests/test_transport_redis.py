"""The gateway's Redis lane against the real Redis (and two fake servers for broken ones):
pipelined batches get their own replies, error replies come back in place, and a lost, slow or
garbled connection fails only the batches on it, the next batch connecting afresh."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from conftest import on_uvloop
from gateway.transport.redis import RedisLane, pack

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(f"{REDIS}/0")
    yield client
    await client.aclose()


@pytest.fixture
async def lane() -> AsyncIterator[RedisLane]:
    lane = RedisLane(f"{REDIS}/0", timeout=0.5)
    yield lane
    await lane.aclose()


def key(run_name: str) -> str:
    return f"{run_name}:lane:{uuid.uuid4().hex}"


def test_commands_are_packed_as_resp_arrays() -> None:
    assert pack([("SET", "k", 1.5), (b"GET", b"k")]) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    )


async def test_concurrent_batches_share_one_connection_and_get_their_own_replies(
    lane: RedisLane, redis: Redis, run_name: str
) -> None:
    keys = [key(run_name) for _ in range(200)]

    async def batch(i: int) -> list[object]:
        return await lane.execute(("SET", keys[i], i, "EX", 60), ("INCRBY", keys[i], i), ("GET", keys[i]))

    results = await asyncio.gather(*(batch(i) for i in range(200)))

    assert results == [[b"OK", 2 * i, str(2 * i).encode()] for i in range(200)]
    assert await redis.get(keys[7]) == b"14"
    (clients,) = await lane.execute(("CLIENT", "INFO"))
    (ids,) = await lane.execute(("CLIENT", "ID"))
    assert f"id={ids} ".encode() in clients  # still the one connection


async def test_an_error_reply_comes_back_in_place_without_hiding_the_others(
    lane: RedisLane, run_name: str
) -> None:
    name = key(run_name)
    replies = await lane.execute(
        ("SET", name, "text", "EX", 60),
        ("INCR", name),
        ("EVALSHA", "0" * 40, 0),
        ("GET", name),
    )

    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError) and "not an integer" in str(replies[1])
    assert isinstance(replies[2], NoScriptError)
    assert replies[3] == b"text"


async def test_a_killed_connection_fails_its_batch_and_the_next_batch_reconnects(
    lane: RedisLane, redis: Redis, run_name: str
) -> None:
    name = key(run_name)
    (first,) = await lane.execute(("CLIENT", "ID"))
    waiting = asyncio.ensure_future(lane.execute(("BLPOP", name, 5)))
    await asyncio.sleep(0.05)

    assert await redis.client_kill_filter(_id=first) == 1

    with pytest.raises(ConnectionError):
        await waiting
    (second,) = await lane.execute(("CLIENT", "ID"))
    assert second != first
    assert await lane.execute(("SET", name, "after", "EX", 60), ("GET", name)) == [b"OK", b"after"]


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped(run_name: str) -> None:
    lane = RedisLane(f"{REDIS}/0", timeout=0.2)
    try:
        name = key(run_name)
        (first,) = await lane.execute(("CLIENT", "ID"))
        blocked = asyncio.ensure_future(lane.execute(("BLPOP", name, 1)))
        behind = asyncio.ensure_future(lane.execute(("PING",)))

        with pytest.raises(TimeoutError):
            await blocked
        with pytest.raises(TimeoutError):  # its reply would have come after BLPOP's
            await behind
        (second,) = await lane.execute(("CLIENT", "ID"))
        assert second != first
    finally:
        await lane.aclose()


async def test_the_url_selects_the_database_and_authenticates(redis: Redis, run_name: str) -> None:
    user, password = f"{run_name}-lane-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await redis.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    try:
        lane = RedisLane(f"redis://{user}:{password}@127.0.0.1:6379/5", timeout=0.5)
        name = key(run_name)
        assert await lane.execute(("SET", name, "in five", "EX", 60)) == [b"OK"]
        assert await lane.execute(("ACL", "WHOAMI")) == [user.encode()]
        await lane.aclose()
        five = Redis.from_url(f"{REDIS}/5")
        assert await five.get(name) == b"in five"
        assert await redis.get(name) is None
        await five.delete(name)
        await five.aclose()

        refused = RedisLane(f"redis://{user}:wrong@127.0.0.1:6379/0", timeout=0.5)
        with pytest.raises(ConnectionError, match="refused"):
            await refused.execute(("PING",))
        await refused.aclose()
    finally:
        await redis.acl_deluser(user)


async def test_nothing_listening_is_a_connection_error() -> None:
    lane = RedisLane("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(ConnectionError):
        await lane.execute(("PING",))


async def _serve(answer: bytes) -> tuple[asyncio.Server, int, list[int]]:
    """A fake Redis answering `answer` to each connection's first write; counts connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.read(1024)
        writer.write(answer)
        await writer.drain()
        await reader.read(1024)  # stay open until the lane writes again or leaves
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(b"?what\r\n", ConnectionError, id="garbage"),
        pytest.param(b"", TimeoutError, id="silence"),
    ],
)
async def test_a_broken_server_fails_the_batch_cleanly(answer: bytes, error: type[Exception]) -> None:
    server, port, _ = await _serve(answer)
    lane = RedisLane(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    try:
        with pytest.raises(error):
            await lane.execute(("PING",))
    finally:
        await lane.aclose()
        server.close()


async def test_a_reply_nobody_asked_for_drops_the_connection() -> None:
    server, port, connections = await _serve(b"+PONG\r\n+PONG\r\n")
    lane = RedisLane(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    try:
        assert await lane.execute(("PING",)) == [b"PONG"]
        await asyncio.sleep(0.05)
        assert await lane.execute(("PING",)) == [b"PONG"]  # on a new connection
        assert len(connections) == 2
    finally:
        await lane.aclose()
        server.close()


@pytest.mark.parametrize(
    "case",
    [
        test_concurrent_batches_share_one_connection_and_get_their_own_replies,
        test_an_error_reply_comes_back_in_place_without_hiding_the_others,
        test_a_killed_connection_fails_its_batch_and_the_next_batch_reconnects,
    ],
    ids=lambda case: case.__name__.removeprefix("test_"),
)
def test_on_uvloop(case: Callable[..., Awaitable[None]], run_name: str) -> None:
    async def run() -> None:
        lane, redis = RedisLane(f"{REDIS}/0", timeout=0.5), Redis.from_url(f"{REDIS}/0")
        try:
            wants = case.__code__.co_varnames[: case.__code__.co_argcount]
            given = {"lane": lane, "redis": redis, "run_name": run_name}
            await case(**{name: given[name] for name in wants})
        finally:
            await lane.aclose()
            await redis.aclose()

    on_uvloop(run)
    on_uvloop(test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped, run_name)
