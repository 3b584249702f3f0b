"""Deleting an account: asked for (by its owner after a recent sign-in, or by an admin), cancelled
within the grace period, erased after it.

Asking disables the account at once as deactivation does (every session revoked, `user.deactivated`
for the verifiers' denylist and billing) and announces `user.deleted` with the time of erasure. The
owner's own deletion is undone by signing in with the right password: the sign-in answers 403
`account-pending-deletion` (with `erase_at`), and `POST /auth/me/deletion/cancel` with the same
credentials restores the account (`user.reactivated`) and signs in. An admin's deletion is not the
owner's to cancel. Asking also takes the account out of its organizations at once
(org.member_removed, reason account_deleted; cancelling does not bring it back): where it was the
last owner, the longest-standing admin (else member) becomes owner, and an org left with nobody is
deleted. When `erase_at` is past, the beat erases the account: the users row stays as a tombstone
of its id with no personal data, everything personal the user owns is deleted, the audit trail
loses addresses, devices and emails, and `user.erased` tells every service to erase theirs.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.accounts.service import deactivate
from auth_service.audit import service as audit
from auth_service.errors import AccountAlreadyDeleted, AccountNotPendingDeletion
from auth_service.events import emit
from auth_service.models import User
from auth_service.orgs import service as orgs
from auth_service.orgs.repository import OrgInvitationRepository
from auth_service.settings import Settings
from gatehouse_contracts.events import UserDeleted, UserErased, UserReactivated
from gatehouse_platform.db import utcnow
from gatehouse_platform.retention import forget_user_events

log = logging.getLogger(__name__)

ERASED_EMAIL_DOMAIN = "erased.invalid"  # RFC 2606: can never be anyone's address


async def request_deletion(
    db: AsyncSession,
    settings: Settings,
    user: User,
    *,
    by: Literal["self", "admin"],
    admin: User | None = None,
) -> User:
    """Disable `user` now and schedule the erasure; `user` is locked by the caller."""
    if user.deletion_requested_at is not None:
        raise AccountAlreadyDeleted(
            "This account is already deleted."
            if user.erased_at
            else "This account is already scheduled for deletion."
        )
    now = utcnow()
    user.deletion_requested_at = now
    user.deletion_requested_by = by
    user.erase_at = now + timedelta(days=settings.deletion_grace_days)
    if admin is not None:
        audit.record(db, audit.AuditEventType.ADMIN_DELETED, user.id, actor_id=admin.id)
    else:
        audit.record(db, audit.AuditEventType.DELETION_REQUESTED, user.id)
    await deactivate(db, user, by=by, deleted=True)
    await orgs.leave_all_for_deletion(db, user)
    await emit(
        db,
        UserDeleted(
            user_id=user.id,
            email=user.email,
            username=user.username,
            by=by,
            requested_at=now,
            erase_at=user.erase_at,
        ),
        user_id=user.id,
    )
    return user


def restore(db: AsyncSession, user: User) -> None:
    """Undo a pending deletion: the account is active again (`user.reactivated` lifts the denylist).
    The subscription billing cancelled stays cancelled."""
    if not user.pending_deletion:
        raise AccountNotPendingDeletion("This account is not scheduled for deletion.")
    user.is_active = True
    user.deactivated_at = None
    user.deletion_requested_at = None
    user.deletion_requested_by = None
    user.erase_at = None
    audit.record(db, audit.AuditEventType.DELETION_CANCELLED, user.id)


async def announce_restored(db: AsyncSession, user: User) -> None:
    await emit(
        db, UserReactivated(user_id=user.id, email=user.email, reactivated_at=utcnow()), user_id=user.id
    )


async def erase(db: AsyncSession, user: User, *, now: datetime) -> None:
    """Erase a deleted account's personal data; `user` is locked by the caller."""
    users = UserRepository(db)
    await users.erase_belongings(user.id)
    await OrgInvitationRepository(db).forget_address(user.email)  # invitations name the address
    await audit.strip_personal_data(db, user.id)
    await forget_user_events(db, user.id)
    user.email = f"erased-{user.id.hex}@{ERASED_EMAIL_DOMAIN}"
    user.username = f"erased-{user.id.hex[:24]}"
    user.password_hash = None
    user.email_verified_at = None
    user.last_login_at = None
    user.roles = []
    user.erased_at = now
    audit.record(db, audit.AuditEventType.ACCOUNT_ERASED, user.id)
    await emit(db, UserErased(user_id=user.id, erased_at=now), user_id=user.id)


async def erase_due(db: AsyncSession, *, now: datetime | None = None, limit: int = 100) -> list[uuid.UUID]:
    """Erase the deleted accounts whose grace ended by `now` (a batch of `limit`); their ids."""
    at = now or utcnow()
    due = await UserRepository(db).due_for_erasure(at, limit=limit)
    for user in due:
        await erase(db, user, now=at)
    if due:
        log.info("erased deleted accounts", extra={"count": len(due)})
    return [user.id for user in due]
