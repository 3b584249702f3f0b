"""List-Unsubscribe links work (RFC 8058 one-click): receipts stop, security emails do not."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import Stack, envelope, new_email, read_maildir, sample, wait_for_deliveries, wait_for_mail

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]


async def test_one_click_unsubscribe_stops_receipts_but_not_security_emails(
    stack: Stack, client: httpx.AsyncClient, maildir: Path, db: Db
) -> None:
    to = new_email()
    await stack.publish(envelope(sample("payment.succeeded", email=to)))
    [receipt] = await wait_for_mail(maildir, to)
    url = urlsplit(str(receipt["List-Unsubscribe"]).strip("<>"))
    assert (url.scheme, url.netloc, url.path) == ("https", "api.gatehouse.test", "/notifications/unsubscribe")

    page = await client.get(f"{url.path}?{url.query}")  # a link scanner or a person: only a page
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert to in page.text and '<form method="post">' in page.text

    # What a mail client sends for one-click unsubscribe.
    clicked = await client.post(
        f"{url.path}?{url.query}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    assert clicked.json() == {"category": "billing_receipts", "unsubscribed": True}
    again = await client.post(f"{url.path}?{url.query}")
    assert again.status_code == 200  # idempotent

    renewal = envelope(sample("subscription.renewed", email=to.upper()))
    await stack.publish(renewal)
    [suppressed] = await wait_for_deliveries(db, renewal.id, "suppressed")
    assert suppressed.attempts == 0

    security = envelope(sample("user.password_changed", email=to))
    await stack.publish(security)
    await wait_for_deliveries(db, security.id, "sent")
    messages = read_maildir(maildir, to)
    assert [m["Subject"] for m in messages] == [
        "Receipt: $12.00 paid to Gatehouse",
        "Your Gatehouse password was changed",
    ]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token-at-all",
        "YmlsbGluZ19yZWNlaXB0cwphZGFAZXhhbXBsZS5jb20.AAAAAAAAAAAAAAAAAAAAAA",  # forged signature
        "!!!!!!!!!!.@@@@@@@@@@",
    ],
)
async def test_a_link_we_did_not_sign_is_refused(client: httpx.AsyncClient, token: str) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, "/notifications/unsubscribe", params={"token": token})
        assert response.status_code == 400, response.text
        assert response.json()["type"].endswith("/invalid-unsubscribe-link")
