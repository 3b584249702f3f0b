"""Events published to RabbitMQ become emails at a real SMTP server: content, headers, exactly once."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import (
    Stack,
    deliveries_of,
    envelope,
    new_email,
    read_maildir,
    sample,
    wait_for_deliveries,
    wait_for_mail,
)
from gatehouse_contracts.events import REGISTRY
from notification_service.email.catalogue import TEMPLATES
from notification_service.email.links import Links
from notification_service.events.handlers import HANDLERS
from notification_service.previews.samples import SAMPLE_EVENTS
from notification_service.settings import Settings

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]
SECURITY_TEMPLATES = {
    "email_verification",
    "sign_up_attempted",
    "password_reset",
    "login_code",
    "password_changed",
    "email_changed_old",
    "email_changed_new",
    "account_deactivated",
    "account_deleted",
    "identity_linked",
    "mfa_enabled",
    "mfa_disabled",
    "recovery_code_used",
    "mfa_reset_by_admin",
    "passkey_added",
    "passkey_removed",
    "new_sign_in",
    "api_key_created",
}


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "expected text/plain and text/html alternatives"
    return str(text.get_content()), str(html.get_content())


def test_every_event_a_person_should_hear_about_is_consumed() -> None:
    assert set(HANDLERS) == {
        "user.email_verification_requested",
        "user.sign_up_attempted",
        "user.password_reset_requested",
        "user.login_code_requested",
        "user.password_changed",
        "user.email_changed",
        "user.deactivated",
        "user.reactivated",
        "user.deleted",
        "user.identity_linked",
        "user.identity_unlinked",
        "user.mfa_enabled",
        "user.mfa_disabled",
        "user.recovery_code_used",
        "user.mfa_reset_by_admin",
        "user.passkey_added",
        "user.passkey_removed",
        "user.new_sign_in",
        "api_key.created",
        "subscription.activated",
        "subscription.renewed",
        "subscription.plan_changed",
        "subscription.cancel_scheduled",
        "subscription.resumed",
        "subscription.past_due",
        "subscription.ended",
        "subscription.trial_will_end",
        "payment.succeeded",
        "payment.failed",
        "payment.recovered",
        "payment.refunded",
        "payment.disputed",
        "payment_method.expiring",
        "org.invitation_sent",
        "org.member_removed",
    }
    assert set(HANDLERS) <= set(REGISTRY)
    assert set(SAMPLE_EVENTS) == set(HANDLERS)
    assert {spec.event_type for spec in TEMPLATES.values()} == set(HANDLERS)


async def test_verification_link_email(stack: Stack, maildir: Path, db: Db) -> None:
    to = new_email()
    event = envelope(sample("user.email_verification_requested", email=to, token="tok-Verify/+=123"))
    await stack.publish(event)

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    link = "https://app.gatehouse.test/verify-email?token=tok-Verify%2F%2B%3D123"
    assert link in text
    assert f'href="{link}"' in html
    assert message["Subject"] == "Confirm your email address for Gatehouse"
    assert message["From"] == "Gatehouse <no-reply@gatehouse.test>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert re.fullmatch(r"<[^@<>]+@mail\.gatehouse\.test>", str(message["Message-ID"]))

    [delivery] = await wait_for_deliveries(db, event.id, "sent")
    assert delivery.message_id == message["Message-ID"]
    assert (delivery.recipient, delivery.template, delivery.attempts) == (to, "email_verification", 1)
    assert delivery.event_data is None  # the event carried a secret: nothing of it is kept


async def test_sign_up_attempt_email_points_to_sign_in_and_reset(stack: Stack, maildir: Path, db: Db) -> None:
    to = new_email()
    event = envelope(sample("user.sign_up_attempted", email=to, username="ada"))
    await stack.publish(event)

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "Someone tried to sign up for Gatehouse with your address"
    for link in ("https://app.gatehouse.test/login", "https://app.gatehouse.test/forgot-password"):
        assert link in text
        assert f'href="{link}"' in html
    assert "already has an account" in text and "Hi ada" in text
    assert "token" not in text  # nothing in it lets a stranger who triggered it act on the account
    assert message["List-Unsubscribe"] is None
    [delivery] = await wait_for_deliveries(db, event.id, "sent")
    assert (delivery.recipient, delivery.template) == (to, "sign_up_attempted")


async def test_password_reset_link_email(stack: Stack, maildir: Path) -> None:
    to = new_email()
    await stack.publish(envelope(sample("user.password_reset_requested", email=to, token="reset-tok-42")))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert "https://app.gatehouse.test/reset-password?token=reset-tok-42" in text
    assert 'href="https://app.gatehouse.test/reset-password?token=reset-tok-42"' in html
    assert message["List-Unsubscribe"] is None


async def test_login_code_email_carries_the_code_but_the_delivery_row_does_not(
    stack: Stack, maildir: Path, db: Db
) -> None:
    to = new_email()
    event = envelope(sample("user.login_code_requested", email=to, code="615243"))
    await stack.publish(event)

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert "615243" in text and "615243" in html
    assert "615243" not in str(message["Subject"])
    [delivery] = await wait_for_deliveries(db, event.id, "sent")
    stored = " ".join(str(value) for value in vars(delivery).values())
    assert "615243" not in stored


async def test_receipt_carries_one_click_unsubscribe_and_formatted_amounts(
    stack: Stack, maildir: Path
) -> None:
    to = new_email()
    await stack.publish(envelope(sample("payment.succeeded", email=to, amount=999, currency="eur")))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert "€9.99 EUR" in text and "€9.99 EUR" in html
    assert "24 November 2026 – 24 December 2026" in text
    assert message["Subject"] == "Receipt: €9.99 EUR paid to Gatehouse"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://api.gatehouse.test/notifications/unsubscribe?token=")
    assert parse_qs(urlsplit(unsubscribe.strip("<>")).query)["token"]
    assert unsubscribe.strip("<>") in text


async def test_a_receipt_shows_the_discount_taken_off(stack: Stack, maildir: Path) -> None:
    to, plain = new_email(), new_email()
    await stack.publish(envelope(sample("payment.succeeded", email=to, amount=2400, amount_discount=600)))
    await stack.publish(envelope(sample("payment.succeeded", email=plain, amount=3000)))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert "Amount paid: $24.00" in text and "Discount: −$6.00" in text
    assert "Discount" in html and "−$6.00" in html
    [without] = await wait_for_mail(maildir, plain)
    assert "Discount" not in parts(without)[0]


async def test_a_card_expiring_soon_asks_for_a_new_one_on_the_billing_page(
    stack: Stack, maildir: Path
) -> None:
    to = new_email()
    event = sample(
        "payment_method.expiring", email=to, brand="mastercard", last4="4444", exp_month=1, exp_year=2027
    )
    await stack.publish(envelope(event))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "Your Mastercard card ending in 4444 expires soon: please update it"
    assert "Mastercard ending in 4444, expires at the end of 01/2027" in text
    assert (
        "https://app.gatehouse.test/billing" in text and 'href="https://app.gatehouse.test/billing"' in html
    )
    assert "Manage billing" in text


async def test_email_change_is_told_to_the_old_and_the_new_address(
    stack: Stack, maildir: Path, db: Db
) -> None:
    old, new = new_email(), new_email()
    event = envelope(sample("user.email_changed", old_email=old, new_email=new))
    await stack.publish(event)

    [to_old] = await wait_for_mail(maildir, old)
    [to_new] = await wait_for_mail(maildir, new)
    assert to_old["Subject"] == "The email address of your Gatehouse account was changed"
    assert to_new["Subject"] == "This is now the email address of your Gatehouse account"
    for message in (to_old, to_new):
        text, html = parts(message)
        assert old in text and new in text and old in html and new in html
        assert message["List-Unsubscribe"] is None
    rows = await wait_for_deliveries(db, event.id, "sent", "sent")
    assert {(r.template, r.recipient) for r in rows} == {
        ("email_changed_old", old),
        ("email_changed_new", new),
    }
    assert to_old["Message-ID"] != to_new["Message-ID"]


async def test_a_used_recovery_code_says_how_many_are_left(stack: Stack, maildir: Path) -> None:
    to = new_email()
    await stack.publish(envelope(sample("user.recovery_code_used", email=to, codes_left=1)))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "A recovery code was used to sign in to Gatehouse"
    assert "You have 1 recovery code left." in text
    assert "Make new ones" in text and "Make new ones" in html
    assert message["List-Unsubscribe"] is None


async def test_a_new_sign_in_says_where_from_and_links_to_a_password_reset(
    stack: Stack, maildir: Path
) -> None:
    to = new_email()
    await stack.publish(
        envelope(
            sample(
                "user.new_sign_in",
                email=to,
                ip="198.51.100.23",
                place="Lyon, France",
                user_agent="Agent/7 (a new phone)",
                new_device=True,
                new_network=False,
            )
        )
    )
    unplaced = new_email()  # no GeoIP database at auth-service: no place, and no line for it
    await stack.publish(envelope(sample("user.new_sign_in", email=unplaced, place=None)))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "New sign-in to your Gatehouse account"
    assert "from a device we have not seen you use lately" in text
    assert "Where (approximately): Lyon, France" in text
    for body in (text, html):
        assert "198.51.100.23" in body and "Agent/7 (a new phone)" in body and "Password" in body
        assert "Lyon, France" in body
        assert "https://app.gatehouse.test/forgot-password" in body
    assert "t me: reset my password" in html  # the apostrophe is escaped in HTML
    assert message["List-Unsubscribe"] is None
    [other] = await wait_for_mail(maildir, unplaced)
    assert all("Where (approximately)" not in body for body in parts(other))


async def test_an_event_delivered_three_times_sends_one_email(stack: Stack, maildir: Path, db: Db) -> None:
    to = new_email()
    event = envelope(sample("user.password_changed", email=to))
    for _ in range(3):
        await stack.publish(event)

    await wait_for_mail(maildir, to)
    await wait_for_deliveries(db, event.id, "sent")
    await asyncio.sleep(0.5)  # time for the duplicates to be handled (and skipped)
    assert len(await wait_for_mail(maildir, to)) == 1
    assert len(await deliveries_of(db, event.id)) == 1


async def test_an_upgrade_ending_the_old_subscription_sends_no_ended_email(
    stack: Stack, maildir: Path, db: Db
) -> None:
    to = new_email()
    replaced = envelope(sample("subscription.ended", email=to, reason="replaced"))
    canceled = envelope(sample("subscription.ended", email=to, reason="canceled"))
    await stack.publish(replaced)
    await stack.publish(canceled)

    [message] = await wait_for_mail(maildir, to)
    assert "as it was canceled" in parts(message)[0]
    await wait_for_deliveries(db, canceled.id, "sent")
    assert await deliveries_of(db, replaced.id) == []


async def test_a_refund_tells_the_customer_what_came_back(stack: Stack, maildir: Path) -> None:
    to = new_email()
    data = sample("payment.refunded", email=to, amount=1000, amount_paid=3000, amount_refunded=3000)
    await stack.publish(envelope(type(data).model_validate({**data.model_dump(), "fully_refunded": True})))

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "Refund: $10.00 back from Gatehouse"
    assert "Refunded in all: $30.00 of $30.00" in text and "$30.00 of $30.00" in html
    assert "refunded in full" in text
    assert message["List-Unsubscribe"] is None


async def test_a_dispute_is_told_to_the_admins(stack: Stack, maildir: Path, db: Db) -> None:
    customer = new_email()
    event = envelope(sample("payment.disputed", email=customer, dispute_status="lost", ends_access=True))
    await stack.publish(event)

    [row] = await wait_for_deliveries(db, event.id, "sent")
    assert row.recipient == "support@gatehouse.test"  # no NOTIFICATION_ADMIN_EMAILS: the support address
    [message] = [m for m in await wait_for_mail(maildir, row.recipient) if customer in str(m["Subject"])]
    text, _ = parts(message)
    assert message["Subject"] == f"Dispute lost: $12.00 from {customer}"
    assert "their subscription was ended" in text and "dp_1QxSampleDispute" in text


def test_admin_notices_go_to_the_configured_admins() -> None:
    data = sample("payment.disputed")
    configured = Links(Settings(admin_emails=["ops@example.com", "cfo@example.com"]))
    assert [n.recipient for n in HANDLERS["payment.disputed"](data, configured)] == [
        "ops@example.com",
        "cfo@example.com",
    ]


@pytest.mark.parametrize("event_type", sorted(SAMPLE_EVENTS))
async def test_each_consumed_event_sends_its_emails(
    stack: Stack, maildir: Path, db: Db, event_type: str
) -> None:
    to, other = new_email(), new_email()
    changes = {"old_email": other, "new_email": to} if event_type == "user.email_changed" else {"email": to}
    event = envelope(sample(event_type, **changes))
    await stack.publish(event)

    expected = sorted(spec.name for spec in TEMPLATES.values() if spec.event_type == event_type)
    rows = await wait_for_deliveries(db, event.id, *["sent"] * len(expected))
    assert sorted(r.template for r in rows) == expected
    for row in rows:
        # Admin notices share one address across tests: this event's message is the one with its subject.
        [message] = [m for m in await wait_for_mail(maildir, row.recipient) if m["Subject"] == row.subject]
        text, html = parts(message)
        assert message["Subject"] == row.subject
        assert "Gatehouse" in text and "Gatehouse" in html
        assert "support@gatehouse.test" in text
        unsubscribable = TEMPLATES[row.template].unsubscribe_category is not None
        assert (message["List-Unsubscribe"] is not None) == unsubscribable
        if row.template in SECURITY_TEMPLATES:
            assert not unsubscribable
        assert row.event_data == (None if REGISTRY[event_type].carries_secret else event.data)


async def test_a_created_api_key_is_told_to_its_creator_by_its_prefix(
    stack: Stack, maildir: Path, db: Db
) -> None:
    to = new_email()
    event = envelope(
        sample("api_key.created", email=to, name="nightly export", prefix="gk_live_0a1b2c3d4e5f")
    )
    await stack.publish(event)

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    assert message["Subject"] == "A new API key was created on your Gatehouse account"
    for body in (text, html):
        assert "nightly export" in body and "gk_live_0a1b2c3d4e5f" in body
        assert "profile:read" in body and "billing:read" in body
        assert "/account/api-keys" in body
    assert message["List-Unsubscribe"] is None  # security notices cannot be turned off
    [row] = await wait_for_deliveries(db, event.id, "sent")
    assert row.template == "api_key_created" and row.recipient == to


async def test_an_org_invitation_email_carries_the_one_time_accept_link(
    stack: Stack, maildir: Path, db: Db
) -> None:
    to = new_email()
    event = envelope(sample("org.invitation_sent", email=to, token="invite-Tok/42", org_name="Acme Ltd"))
    await stack.publish(event)

    [message] = await wait_for_mail(maildir, to)
    text, html = parts(message)
    link = "https://app.gatehouse.test/invitations/accept?token=invite-Tok%2F42"
    assert link in text and f'href="{link}"' in html
    assert message["Subject"] == "grace invited you to join Acme Ltd on Gatehouse"
    assert "as a member" in text and "works once" in text
    [delivery] = await wait_for_deliveries(db, event.id, "sent")
    assert delivery.template == "org_invitation"
    assert delivery.event_data is None  # the token is a secret: nothing of the event is kept


async def test_a_removed_member_is_told_and_one_who_left_is_not(stack: Stack, maildir: Path, db: Db) -> None:
    removed, left = new_email(), new_email()
    gone = envelope(sample("org.member_removed", email=removed, org_name="Acme Ltd", reason="removed"))
    quit_ = envelope(sample("org.member_removed", email=left, reason="left", removed_by=None))
    await stack.publish(quit_)
    await stack.publish(gone)

    [message] = await wait_for_mail(maildir, removed)
    text, html = parts(message)
    assert message["Subject"] == "You were removed from Acme Ltd on Gatehouse"
    assert "https://app.gatehouse.test/account" in text and "removed you" in html
    [delivery] = await wait_for_deliveries(db, gone.id, "sent")
    assert delivery.template == "org_member_removed"
    assert await deliveries_of(db, quit_.id) == []
    assert read_maildir(maildir, left) == []
