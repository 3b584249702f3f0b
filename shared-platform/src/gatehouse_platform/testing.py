"""Helpers for tests: a throw-away Postgres database and RabbitMQ vhost per test run.

Every test run creates its own names (random suffix) and drops them afterwards, so two runs on
one machine never collide and nothing is left behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import asyncpg

PG_ADMIN_DSN = os.environ.get("GATEHOUSE_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("GATEHOUSE_TEST_PG_HOST", "postgres@127.0.0.1:5432")
AMQP_HOST = os.environ.get("GATEHOUSE_TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_HOST}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607


@contextmanager
def rabbitmq_vhost(name: str) -> Iterator[str]:
    """A fresh vhost with full rights for guest; yields its AMQP URL, deletes it afterwards."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://{AMQP_HOST}/{quote(name, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", name)
