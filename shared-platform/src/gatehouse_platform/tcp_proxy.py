"""A TCP forwarder for tests: put it between a client and a server, close it to cut the link.

Closing it drops every open connection at once and refuses new ones, which is how a broker outage
or a network partition looks to the client; opening it again heals the link. Stalling it keeps
every connection open (and accepts new ones) but passes no byte either way, which is how a hung
server looks; resuming it passes on what was held.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"amqp": 5672, "redis": 6379, "postgresql": 5432, "smtp": 25, "http": 80}


class TcpProxy:
    """Forwards a local port to `target_host:target_port` while open."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @classmethod
    def before(cls, url: str) -> TcpProxy:
        """A proxy to the server of `url` (amqp://, redis://, postgresql://…)."""
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        return cls(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[scheme])

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's (credentials, path kept)."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def stall(self) -> None:
        """Hold every byte, both ways, until `resume()`: the server seems hung."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, broker_writer}
        await asyncio.gather(
            self._pipe(client_reader, broker_writer),
            self._pipe(broker_reader, client_writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
