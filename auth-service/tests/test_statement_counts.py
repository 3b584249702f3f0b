"""How many SQL statements the hottest paths send: each is a round trip to PostgreSQL, and these
paths run for every sign-in and every refresh. A counter, not a timer: a change that adds one is
seen here, whatever the machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from conftest import bearer, login, refresh, register

BACKGROUND = ("outbox", "processed_event")  # the relay and the consumer poll on the same engine


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    sent: list[str] = []
    engine = app.state.services.engine.sync_engine

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not any(table in statement for table in BACKGROUND):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_a_password_login_sends_five_statements(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client)
    with statements(app) as sent:
        await login(client, user["email"])
    assert len(sent) <= 5, "\n".join(sent)


async def test_a_refresh_sends_two_statements(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    with statements(app) as sent:
        response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert len(sent) <= 2, "\n".join(sent)


async def test_my_profile_reads_the_user_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    with statements(app) as sent:
        response = await client.get("/auth/me", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == user["email"]
    assert len(sent) == 1, "\n".join(sent)
