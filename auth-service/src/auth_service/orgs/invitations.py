"""Invitations: an owner or admin invites an address with a role; the emailed link's token (single
use, stored as SHA-256, valid `org_invitation_ttl_days`) is accepted by a signed-in person whose
verified email is that address. Someone without an account signs up first; the invitation waits.

A pending invitation holds a seat: sending one is refused past the member or seat limit, counting
members and pending invitations; accepting counts the members only (its seat was held), under the
org's row lock, so concurrent accepts never exceed a limit lowered meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import service as audit
from auth_service.errors import (
    AlreadyMember,
    EmailNotVerified,
    InvitationEmailMismatch,
    InvitationInvalid,
    InvitationNotFound,
    OrgRoleRequired,
)
from auth_service.events import emit
from auth_service.models import Org, OrgInvitation, OrgMember, User
from auth_service.orgs import service as orgs
from auth_service.orgs.repository import OrgInvitationRepository, OrgMemberRepository, OrgRepository
from auth_service.security import new_token, token_digest
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.events.orgs import OrgInvitationSent
from gatehouse_contracts.tokens import OrgRole
from gatehouse_platform.db import utcnow


async def invite(
    db: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    actor: User,
    org_id: uuid.UUID,
    email: str,
    role: OrgRole,
) -> OrgInvitation:
    """A new invitation (one pending per address: inviting again replaces the earlier link)."""
    found = await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS, lock=True)
    if role == "owner" and found.member.role != "owner":
        raise OrgRoleRequired("Only an owner can invite an owner.")
    if any(
        user.email.lower() == email.lower() for _, user in await OrgMemberRepository(db).with_users(org_id)
    ):
        raise AlreadyMember("This address belongs to a member already.")
    await throttle.invitation(str(org_id), str(actor.id))
    now = utcnow()
    invitations = OrgInvitationRepository(db)
    for earlier in await invitations.pending_for(org_id, email, now):
        earlier.revoked_at = now  # its seat passes to the new one
    await db.flush()
    await orgs.require_room(db, found.org, count_pending=True)
    token = new_token()
    invitation = invitations.add(
        OrgInvitation(
            id=uuid.uuid4(),
            org_id=org_id,
            email=email,
            role=role,
            token_hash=token_digest(token),
            invited_by=actor.id,
            created_at=now,
            expires_at=now + timedelta(days=settings.org_invitation_ttl_days),
        )
    )
    await db.flush()
    audit.record(
        db,
        audit.AuditEventType.ORG_INVITATION_SENT,
        actor.id,
        details={"org_id": str(org_id), "invitation_id": str(invitation.id), "role": role},
    )
    await emit(
        db,
        OrgInvitationSent(
            org_id=org_id,
            org_name=found.org.name,
            invitation_id=invitation.id,
            email=email,
            role=role,
            invited_by=actor.id,
            invited_by_name=actor.username,
            token=token,
            expires_at=invitation.expires_at,
        ),
        user_id=actor.id,
    )
    return invitation


async def pending(db: AsyncSession, actor: User, org_id: uuid.UUID) -> list[OrgInvitation]:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS)
    return await OrgInvitationRepository(db).pending(org_id, utcnow())


async def revoke(db: AsyncSession, actor: User, org_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS)
    invitation = await OrgInvitationRepository(db).lock(
        OrgInvitation.id == invitation_id, OrgInvitation.org_id == org_id
    )
    now = utcnow()
    if invitation is None or invitation.accepted_at or invitation.revoked_at or invitation.expires_at <= now:
        raise InvitationNotFound("No such pending invitation.")
    invitation.revoked_at = now
    audit.record(
        db,
        audit.AuditEventType.ORG_INVITATION_REVOKED,
        actor.id,
        details={"org_id": str(org_id), "invitation_id": str(invitation_id)},
    )


async def accept(db: AsyncSession, user: User, token: str) -> tuple[Org, OrgMember]:
    invitation = await OrgInvitationRepository(db).by_digest(token_digest(token))
    now = utcnow()
    if invitation is None:
        raise InvitationInvalid("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation was already used.")
    if invitation.revoked_at is not None:
        raise InvitationInvalid("This invitation was withdrawn.")
    if invitation.expires_at <= now:
        raise InvitationInvalid("This invitation has expired; ask for a new one.")
    if invitation.email.lower() != user.email.lower():
        raise InvitationEmailMismatch(
            "This invitation was sent to another address: sign in with the invited address."
        )
    if not user.email_verified:
        raise EmailNotVerified("Verify your email address, then accept the invitation.")
    org = await OrgRepository(db).lock(Org.id == invitation.org_id)
    assert org is not None  # the foreign key cascades
    if await OrgMemberRepository(db).find(org.id, user.id) is not None:
        raise AlreadyMember("You are already a member of this organization.")
    await orgs.require_room(db, org, count_pending=False)
    invitation.accepted_at = now
    invitation.accepted_by = user.id
    member = await orgs.add_member(db, org, user, invitation.role, via="invitation")
    return org, member
