"""A deleted account: the goodbye email (and no deactivation email beside it), then, on `user.erased`,
every delivery to the person's addresses forgotten."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_delivery import parts

from conftest import Stack, envelope, new_email, sample, wait_for_deliveries, wait_for_mail
from gatehouse_contracts.events import UserErased
from gatehouse_platform import testing
from gatehouse_platform.models import ProcessedEvent
from notification_service.models import Delivery

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]


async def test_a_deleted_account_gets_a_goodbye_and_its_erasure_forgets_its_deliveries(
    stack: Stack, maildir: Path, db: Db
) -> None:
    user_id, email, old_email = uuid.uuid4(), new_email(), new_email()
    changed = envelope(sample("user.email_changed", user_id=user_id, old_email=old_email, new_email=email))
    await stack.publish(changed)
    await wait_for_deliveries(db, changed.id, "sent", "sent")
    deactivated = envelope(sample("user.deactivated", user_id=user_id, email=email, deleted=True))
    deleted = envelope(sample("user.deleted", user_id=user_id, email=email, by="self"))
    await stack.publish(deactivated)
    await stack.publish(deleted)

    mails = await wait_for_mail(maildir, email, count=2)  # the email change's, and the goodbye
    [goodbye] = [m for m in mails if "deleted" in m["Subject"]]
    assert goodbye["Subject"].startswith("Your Gatehouse account will be deleted on")
    text, html = parts(goodbye)
    assert "cancel the deletion" in text and "Keep my account" in html
    await wait_for_deliveries(db, deleted.id, "sent")

    # The deactivation that starts a deletion sends nothing of its own.
    async def handled() -> bool:
        async with db() as session:
            done = await session.get(ProcessedEvent, (stack.settings.consumer_name, deactivated.id))
        return done is not None

    await testing.eventually(handled, "the deactivation to be handled")
    async with db() as session:
        count = await session.scalar(select(func.count()).where(Delivery.event_id == deactivated.id))
    assert count == 0

    other = new_email()  # someone else's email stays
    kept = envelope(sample("user.password_changed", email=other))
    await stack.publish(kept)
    await wait_for_deliveries(db, kept.id, "sent")

    await stack.publish(envelope(UserErased(user_id=user_id, erased_at=datetime.now(UTC))))

    async def forgotten() -> bool:
        return not await testing.rows_mentioning(stack.settings.database_url, email, old_email)

    await testing.eventually(forgotten, "the deliveries to the erased user's addresses to go")
    await wait_for_deliveries(db, kept.id, "sent")
