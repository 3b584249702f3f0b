"""Organizations and their members: create, rename, delete; roles, removal, leaving; acting in an
org (a switch); the room left under the member and seat limits.

Roles: `owner` (everything, deleting the org included), `admin` (the org's settings, members and
invitations, but never an owner's membership), `member`. An org always keeps an owner: the last one
can be neither demoted nor removed, nor leave; ownership is transferred first. Any org the caller is
not in answers 404, like one that does not exist, so org ids cannot be probed.

Tokens acting in an org (`org_id`, `org_role` claims) belong to a session made by a switch. When a
person's access to the org ends or shrinks (removed, left, demoted, the org deleted), the sessions
acting in it are revoked: session.revoked puts them on every verifier's denylist at once. The org's
API keys belong to the org, not to the member who made them: they outlive that membership, and die
with the org (api_key.revoked, reason `org_deleted`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.api_keys.revocation import revoke_all_of_org
from auth_service.audit import service as audit
from auth_service.errors import (
    InvalidField,
    LastOwner,
    MemberLimitReached,
    MemberNotFound,
    OrgNotFound,
    OrgRoleRequired,
    OrgSlugTaken,
    SeatLimitReached,
)
from auth_service.events import emit
from auth_service.keys.service import KeyRing
from auth_service.models import AuthSession, Org, OrgMember, User
from auth_service.orgs.repository import (
    OrgInvitationRepository,
    OrgMemberRepository,
    OrgRepository,
    OrgSessionRepository,
)
from auth_service.principal import OrgKeyCaller, Principal
from auth_service.sessions.service import IssuedTokens, revoke_sessions, switch_session
from auth_service.settings import Settings
from gatehouse_contracts.events.orgs import (
    OrgCreated,
    OrgDeleted,
    OrgMemberAdded,
    OrgMemberRemoved,
    OrgMemberRoleChanged,
)
from gatehouse_contracts.tokens import OrgRole
from gatehouse_platform.db import utcnow

ROLE_RANK: dict[str, int] = {"member": 0, "admin": 1, "owner": 2}
MANAGERS = ("owner", "admin")
RemovalReason = Literal["left", "removed", "account_deleted"]


@dataclass(frozen=True)
class Membership:
    org: Org
    member: OrgMember


async def membership(
    db: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID, *roles: str, lock: bool = False
) -> Membership:
    """The caller's membership of the org (404 when they are not in it), holding one of `roles`
    when given (else 403). `lock`: the org row is locked, so membership changes take turns."""
    orgs = OrgRepository(db)
    org = await (orgs.lock(Org.id == org_id) if lock else orgs.get(org_id))
    member = await OrgMemberRepository(db).find(org_id, user_id) if org else None
    if org is None or member is None:
        raise OrgNotFound("No such organization.")
    if roles and member.role not in roles:
        raise OrgRoleRequired(f"This needs the role {' or '.join(roles)} in the organization.")
    return Membership(org, member)


async def create(db: AsyncSession, settings: Settings, user: User, name: str, slug: str) -> Membership:
    orgs = OrgRepository(db)
    if await orgs.slug_taken(slug):
        raise OrgSlugTaken("This slug is taken; choose another.")
    now = utcnow()
    org = orgs.add(
        Org(
            id=uuid.uuid4(),
            name=name,
            slug=slug,
            created_by=user.id,
            created_at=now,
            updated_at=now,
            member_limit=settings.org_default_member_limit,
            membership_version=1,
            seat_limit_version=0,
            allow_domain_join=False,
        )
    )
    member = OrgMemberRepository(db).add(
        OrgMember(org_id=org.id, user_id=user.id, role="owner", joined_at=now, via="created")
    )
    await db.flush()
    audit.record(db, audit.AuditEventType.ORG_CREATED, user.id, details={"org_id": str(org.id), "slug": slug})
    await emit(
        db,
        OrgCreated(
            org_id=org.id,
            name=name,
            slug=slug,
            owner_id=user.id,
            member_count=1,
            membership_version=1,
            created_at=now,
        ),
        user_id=user.id,
    )
    return Membership(org, member)


async def mine(db: AsyncSession, user_id: uuid.UUID) -> list[Membership]:
    return [Membership(org, member) for org, member in await OrgRepository(db).of_user(user_id)]


async def member_count(db: AsyncSession, org_id: uuid.UUID) -> int:
    return await OrgMemberRepository(db).count(org_id)


async def update(
    db: AsyncSession,
    settings: Settings,
    user: User,
    org_id: uuid.UUID,
    *,
    name: str | None = None,
    allow_domain_join: bool | None = None,
    member_limit: int | None = None,
) -> Membership:
    found = await membership(db, user.id, org_id, *MANAGERS, lock=True)
    org = found.org
    changes: dict[str, object] = {}
    if name is not None and name != org.name:
        changes["name"] = name
        org.name = name
    if allow_domain_join is not None and allow_domain_join != org.allow_domain_join:
        changes["allow_domain_join"] = allow_domain_join
        org.allow_domain_join = allow_domain_join
    if member_limit is not None and member_limit != org.member_limit:
        if member_limit > settings.org_max_member_limit:
            raise InvalidField("member_limit", f"must be at most {settings.org_max_member_limit}")
        changes["member_limit"] = member_limit
        org.member_limit = member_limit
    if changes:
        org.updated_at = utcnow()
        audit.record(
            db, audit.AuditEventType.ORG_UPDATED, user.id, details={"org_id": str(org.id), **changes}
        )
        await db.flush()
    return found


async def delete(db: AsyncSession, user: User, org_id: uuid.UUID) -> None:
    """Only an owner deletes an org. Billing ends its subscription on org.deleted; the sessions
    acting in it are revoked here."""
    found = await membership(db, user.id, org_id, "owner", lock=True)
    org = found.org
    now = utcnow()
    await _revoke_org_sessions(db, await OrgSessionRepository(db).acting_in(org.id))
    await revoke_all_of_org(db, org.id, by=user.id)
    audit.record(
        db, audit.AuditEventType.ORG_DELETED, user.id, details={"org_id": str(org.id), "slug": org.slug}
    )
    await emit(
        db,
        OrgDeleted(org_id=org.id, name=org.name, slug=org.slug, deleted_by=user.id, deleted_at=now),
        user_id=user.id,
    )
    await db.delete(org)  # members, invitations and domains cascade
    await db.flush()


async def read(db: AsyncSession, caller: Principal | OrgKeyCaller, org_id: uuid.UUID) -> tuple[Org, str]:
    """The org and the caller's role in it, for reading: a member, or the org's own API key (which
    reads as a member, its own org only); 404 for anyone else."""
    if isinstance(caller, OrgKeyCaller):
        org = await OrgRepository(db).get(org_id) if caller.org_id == org_id else None
        if org is None:
            raise OrgNotFound("No such organization.")
        return org, "member"
    found = await membership(db, caller.user.id, org_id)
    return found.org, found.member.role


async def members(
    db: AsyncSession, caller: Principal | OrgKeyCaller, org_id: uuid.UUID
) -> list[tuple[OrgMember, User]]:
    await read(db, caller, org_id)
    return await OrgMemberRepository(db).with_users(org_id)


async def change_role(
    db: AsyncSession, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID, role: OrgRole
) -> OrgMember:
    """Owners set any role; admins move people between member and admin and never touch an owner.
    The last owner cannot be demoted. A demotion revokes the person's sessions acting in the org
    (their tokens claim the old role), except the caller's own current session, whose next refresh
    carries the new role."""
    actor = principal.user
    found = await membership(db, actor.id, org_id, *MANAGERS, lock=True)
    target = await OrgMemberRepository(db).find(org_id, user_id, for_update=True)
    if target is None:
        raise MemberNotFound("No such member of this organization.")
    if found.member.role != "owner" and "owner" in (target.role, role):
        raise OrgRoleRequired("Only an owner can grant, take or transfer ownership.")
    if target.role == role:
        return target
    old = target.role
    if old == "owner" and await OrgMemberRepository(db).count(org_id, role="owner") <= 1:
        raise LastOwner("Make someone else an owner first.")
    target.role = role
    now = utcnow()
    if ROLE_RANK[role] < ROLE_RANK[old]:
        sessions = await OrgSessionRepository(db).acting_in(org_id, user_id=user_id)
        keep = [s for s in sessions if s.id == principal.session_id]
        for session in keep:
            session.org_role = role
        await _revoke_org_sessions(db, [s for s in sessions if s.id != principal.session_id])
    audit.record(
        db,
        audit.AuditEventType.ORG_MEMBER_ROLE_CHANGED,
        actor.id,
        details={"org_id": str(org_id), "user_id": str(user_id), "from": old, "to": role},
    )
    await emit(
        db,
        OrgMemberRoleChanged(
            org_id=org_id,
            user_id=user_id,
            old_role=cast(OrgRole, old),
            new_role=role,
            changed_by=actor.id,
            changed_at=now,
        ),
        user_id=actor.id,
    )
    await db.flush()
    return target


async def transfer_ownership(
    db: AsyncSession, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """The member `user_id` becomes an owner and the calling owner an admin, in one step."""
    if user_id == principal.user.id:
        await membership(db, principal.user.id, org_id, "owner")
        return
    await change_role(db, principal, org_id, user_id, "owner")
    await change_role(db, principal, org_id, principal.user.id, "admin")


async def remove(db: AsyncSession, actor: User, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """An owner removes anyone; an admin removes admins and members, never an owner."""
    if user_id == actor.id:
        await leave(db, actor, org_id)
        return
    found = await membership(db, actor.id, org_id, *MANAGERS, lock=True)
    target = await OrgMemberRepository(db).find(org_id, user_id, for_update=True)
    if target is None:
        raise MemberNotFound("No such member of this organization.")
    if target.role == "owner" and found.member.role != "owner":
        raise OrgRoleRequired("Only an owner can remove an owner.")
    await _end_membership(db, found.org, target, reason="removed", by=actor.id)


async def leave(db: AsyncSession, user: User, org_id: uuid.UUID) -> None:
    found = await membership(db, user.id, org_id, lock=True)
    await _end_membership(db, found.org, found.member, reason="left", by=None)


async def _end_membership(
    db: AsyncSession, org: Org, member: OrgMember, *, reason: RemovalReason, by: uuid.UUID | None
) -> None:
    members = OrgMemberRepository(db)
    if member.role == "owner" and await members.count(org.id, role="owner") <= 1:
        raise LastOwner("The last owner cannot leave or be removed: transfer ownership first.")
    user = await UserRepository(db).by_id(member.user_id)
    assert user is not None  # the foreign key
    await _revoke_org_sessions(db, await OrgSessionRepository(db).acting_in(org.id, user_id=member.user_id))
    await db.delete(member)
    await db.flush()
    org.membership_version += 1
    now = utcnow()
    actor = by or member.user_id
    entry = audit.AuditEventType.ORG_LEFT if reason != "removed" else audit.AuditEventType.ORG_MEMBER_REMOVED
    audit.record(
        db,
        entry,
        actor,
        details={"org_id": str(org.id), "user_id": str(member.user_id), "reason": reason},
    )
    await emit(
        db,
        OrgMemberRemoved(
            org_id=org.id,
            org_name=org.name,
            user_id=member.user_id,
            email=user.email,
            reason=reason,
            removed_by=by,
            member_count=await members.count(org.id),
            membership_version=org.membership_version,
            removed_at=now,
        ),
        user_id=actor,
    )


async def add_member(
    db: AsyncSession, org: Org, user: User, role: str, *, via: Literal["invitation", "domain"]
) -> OrgMember:
    """`org` is locked by the caller, who checked the room left."""
    now = utcnow()
    member = OrgMemberRepository(db).add(
        OrgMember(org_id=org.id, user_id=user.id, role=role, joined_at=now, via=via)
    )
    await db.flush()
    org.membership_version += 1
    audit.record(
        db,
        audit.AuditEventType.ORG_JOINED,
        user.id,
        details={"org_id": str(org.id), "via": via, "role": role},
    )
    await emit(
        db,
        OrgMemberAdded(
            org_id=org.id,
            org_name=org.name,
            user_id=user.id,
            email=user.email,
            role=cast(OrgRole, role),
            via=via,
            member_count=await OrgMemberRepository(db).count(org.id),
            membership_version=org.membership_version,
            added_at=now,
        ),
        user_id=user.id,
    )
    return member


async def require_room(db: AsyncSession, org: Org, *, count_pending: bool) -> None:
    """Refuse one more person past the org's member limit or billing's seat limit. The seats held
    are the members, and (for a new invitation or a domain join) the pending invitations; accepting
    an invitation turns its held seat into a member, so it counts the members only. `org` is locked
    by the caller: concurrent additions take turns and cannot both take the last seat."""
    held = await OrgMemberRepository(db).count(org.id)
    if count_pending:
        held += await OrgInvitationRepository(db).count_pending(org.id, utcnow())
    if org.seat_limit is not None and held >= org.seat_limit and org.seat_limit <= org.member_limit:
        raise SeatLimitReached(
            f"The organization's plan allows {org.seat_limit} seats, and members and pending "
            "invitations hold them all: upgrade the plan, or remove someone first.",
            seat_limit=org.seat_limit,
            seats_held=held,
        )
    if held >= org.member_limit:
        raise MemberLimitReached(
            f"The organization's member limit is {org.member_limit}, and members and pending "
            "invitations reach it.",
            member_limit=org.member_limit,
            seats_held=held,
        )


async def switch(
    db: AsyncSession, keyring: KeyRing, settings: Settings, principal: Principal, org_id: uuid.UUID | None
) -> IssuedTokens:
    """New tokens acting in the org (or personal, for None), carrying `org_id` and `org_role`."""
    role: str | None = None
    if org_id is not None:
        role = (await membership(db, principal.user.id, org_id)).member.role
    issued = await switch_session(db, keyring, settings, principal, org_id=org_id, org_role=role)
    audit.record(
        db,
        audit.AuditEventType.ORG_SWITCHED,
        principal.user.id,
        details={"org_id": str(org_id) if org_id else None},
    )
    return issued


async def apply_seat_limit(
    db: AsyncSession, org_id: uuid.UUID, max_seats: int | None, limit_version: int
) -> bool:
    """Billing's org.seat_limit_changed: keep the highest version; whether it applied. Members past
    a lowered limit stay; new invitations and joins are refused until there is room."""
    org = await OrgRepository(db).lock(Org.id == org_id)
    if org is None or limit_version <= org.seat_limit_version:
        return False
    org.seat_limit = max_seats
    org.seat_limit_version = limit_version
    return True


async def leave_all_for_deletion(db: AsyncSession, user: User) -> None:
    """A deleted account leaves every org (reason account_deleted). Where it is the last owner,
    the longest-standing admin (else member) becomes owner; an org with nobody else is deleted."""
    for member in await OrgMemberRepository(db).memberships(user.id):
        org = await OrgRepository(db).lock(Org.id == member.org_id)
        assert org is not None  # the foreign key
        members = OrgMemberRepository(db)
        if member.role == "owner" and await members.count(org.id, role="owner") <= 1:
            heirs = await members.longest_standing(org.id, excluding=user.id)
            if not heirs:
                await _delete_abandoned(db, org, user)
                continue
            heir = heirs[0]
            old = heir.role
            heir.role = "owner"
            audit.record(
                db,
                audit.AuditEventType.ORG_MEMBER_ROLE_CHANGED,
                heir.user_id,
                details={
                    "org_id": str(org.id),
                    "user_id": str(heir.user_id),
                    "from": old,
                    "to": "owner",
                    "reason": "last_owner_deleted",
                },
            )
            await emit(
                db,
                OrgMemberRoleChanged(
                    org_id=org.id,
                    user_id=heir.user_id,
                    old_role=cast(OrgRole, old),
                    new_role="owner",
                    changed_by=user.id,
                    changed_at=utcnow(),
                ),
                user_id=heir.user_id,
            )
            await db.flush()
        await _end_membership(db, org, member, reason="account_deleted", by=None)


async def _delete_abandoned(db: AsyncSession, org: Org, user: User) -> None:
    await _revoke_org_sessions(db, await OrgSessionRepository(db).acting_in(org.id))
    await revoke_all_of_org(db, org.id, by=user.id)
    audit.record(
        db, audit.AuditEventType.ORG_DELETED, user.id, details={"org_id": str(org.id), "slug": org.slug}
    )
    await emit(
        db,
        OrgDeleted(org_id=org.id, name=org.name, slug=org.slug, deleted_by=user.id, deleted_at=utcnow()),
        user_id=user.id,
    )
    await db.delete(org)
    await db.flush()


async def _revoke_org_sessions(db: AsyncSession, sessions: Sequence[AuthSession]) -> None:
    by_user: dict[uuid.UUID, list[AuthSession]] = defaultdict(list)
    for session in sessions:
        by_user[session.user_id].append(session)
    for user_id, theirs in by_user.items():
        await revoke_sessions(db, user_id, theirs, reason="org_access_ended")
