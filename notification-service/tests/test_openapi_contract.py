"""The OpenAPI document says what notification-service answers (issue 22: 401s went undocumented)."""

from __future__ import annotations

import httpx

from gatehouse_platform.fuzz import assert_every_operation_lists_its_answers, openapi_document


async def test_every_operation_lists_its_problem_answers(client: httpx.AsyncClient) -> None:
    document = await openapi_document(client)
    assert_every_operation_lists_its_answers(document)
    dead_letters = document["paths"]["/notifications/dead-letters/replay"]["post"]["responses"]
    assert {"401", "403", "503"} <= set(dead_letters)
