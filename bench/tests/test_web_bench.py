"""bench/web.py runs in this process against the web app and its stand-in API: it must keep up
with the pages (a page that starts asking the API for something new fails here, not in
`make bench`)."""

from __future__ import annotations

import asyncio

import pytest

import web


def test_every_page_renders_with_the_stand_in_api_and_gets_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(web.main(requests=2))  # asserts each page's status on every request
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| /")]
    pages = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert pages == [page.split("?")[0] for page in web.PAGES]
    assert all(float(row.split(" | ")[4]) > 0 for row in rows)  # each page has HTML
