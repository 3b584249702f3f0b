"""Queries on organizations, their members, invitations and domains."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, func, select

from auth_service.models import AuthSession, Org, OrgDomain, OrgInvitation, OrgMember, User
from gatehouse_platform.db import Repository


class OrgRepository(Repository[Org]):
    model = Org

    async def slug_taken(self, slug: str) -> bool:
        stmt = select(func.count()).select_from(Org).where(Org.slug == slug)
        return bool((await self.session.execute(stmt)).scalar_one())

    async def of_user(self, user_id: uuid.UUID) -> list[tuple[Org, OrgMember]]:
        """The orgs the user is in, with their membership, oldest membership first."""
        stmt = (
            select(Org, OrgMember)
            .join(OrgMember, OrgMember.org_id == Org.id)
            .where(OrgMember.user_id == user_id)
            .order_by(OrgMember.joined_at, Org.id)
        )
        return [(org, member) for org, member in (await self.session.execute(stmt)).all()]

    async def joinable_by_domain(self, domain: str, user_id: uuid.UUID) -> list[Org]:
        """Orgs allowing domain joins with `domain` verified, that the user is not in."""
        stmt = (
            select(Org)
            .join(OrgDomain, OrgDomain.org_id == Org.id)
            .where(
                OrgDomain.domain == domain,
                OrgDomain.verified_at.is_not(None),
                Org.allow_domain_join.is_(True),
                ~select(OrgMember.user_id)
                .where(OrgMember.org_id == Org.id, OrgMember.user_id == user_id)
                .exists(),
            )
            .order_by(Org.name)
        )
        return list((await self.session.execute(stmt)).scalars())


class OrgMemberRepository(Repository[OrgMember]):
    model = OrgMember

    async def find(
        self, org_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> OrgMember | None:
        criteria = (OrgMember.org_id == org_id, OrgMember.user_id == user_id)
        if for_update:
            return await self.lock(*criteria)
        stmt = select(OrgMember).where(*criteria)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def with_users(self, org_id: uuid.UUID) -> list[tuple[OrgMember, User]]:
        """Every member and their account, owners first, then by how long they have been in."""
        stmt = (
            select(OrgMember, User)
            .join(User, User.id == OrgMember.user_id)
            .where(OrgMember.org_id == org_id)
            .order_by(OrgMember.joined_at, OrgMember.user_id)
        )
        return [(member, user) for member, user in (await self.session.execute(stmt)).all()]

    async def count(self, org_id: uuid.UUID, *, role: str | None = None) -> int:
        stmt = select(func.count()).select_from(OrgMember).where(OrgMember.org_id == org_id)
        if role is not None:
            stmt = stmt.where(OrgMember.role == role)
        return int((await self.session.execute(stmt)).scalar_one())

    async def memberships(self, user_id: uuid.UUID) -> list[OrgMember]:
        return await self.list_where(OrgMember.user_id == user_id, order_by=[OrgMember.joined_at])

    async def longest_standing(self, org_id: uuid.UUID, *, excluding: uuid.UUID) -> list[OrgMember]:
        """The other members, admins first, each role by how long they have been in (locked)."""
        stmt = (
            select(OrgMember)
            .where(OrgMember.org_id == org_id, OrgMember.user_id != excluding)
            .order_by((OrgMember.role != "admin"), OrgMember.joined_at, OrgMember.user_id)
        )
        return list((await self.locked(stmt)).scalars())


class OrgInvitationRepository(Repository[OrgInvitation]):
    model = OrgInvitation

    @staticmethod
    def _pending(now: datetime) -> tuple[ColumnElement[bool], ...]:
        return (
            OrgInvitation.accepted_at.is_(None),
            OrgInvitation.revoked_at.is_(None),
            OrgInvitation.expires_at > now,
        )

    async def pending(self, org_id: uuid.UUID, now: datetime) -> list[OrgInvitation]:
        return await self.list_where(
            OrgInvitation.org_id == org_id, *self._pending(now), order_by=[OrgInvitation.created_at.desc()]
        )

    async def count_pending(self, org_id: uuid.UUID, now: datetime) -> int:
        stmt = (
            select(func.count())
            .select_from(OrgInvitation)
            .where(OrgInvitation.org_id == org_id, *self._pending(now))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def pending_for(self, org_id: uuid.UUID, email: str, now: datetime) -> list[OrgInvitation]:
        """The org's pending invitations to this address (locked)."""
        stmt = select(OrgInvitation).where(
            OrgInvitation.org_id == org_id,
            func.lower(OrgInvitation.email) == email.lower(),
            *self._pending(now),
        )
        return list((await self.locked(stmt)).scalars())

    async def forget_address(self, email: str) -> int:
        """Invitations sent to this address (an erased account's): how many went."""
        return await self.delete_where(func.lower(OrgInvitation.email) == email.lower())

    async def by_digest(self, digest: bytes) -> OrgInvitation | None:
        """The invitation with this token digest, locked: concurrent accepts of one take turns."""
        return await self.lock(OrgInvitation.token_hash == digest)


class OrgDomainRepository(Repository[OrgDomain]):
    model = OrgDomain

    async def of_org(self, org_id: uuid.UUID) -> list[OrgDomain]:
        return await self.list_where(OrgDomain.org_id == org_id, order_by=[OrgDomain.created_at])

    async def verified_elsewhere(self, domain: str, org_id: uuid.UUID) -> bool:
        stmt = (
            select(func.count())
            .select_from(OrgDomain)
            .where(OrgDomain.domain == domain, OrgDomain.verified_at.is_not(None), OrgDomain.org_id != org_id)
        )
        return bool((await self.session.execute(stmt)).scalar_one())

    async def verified(self, org_id: uuid.UUID, domain: str) -> OrgDomain | None:
        stmt = select(OrgDomain).where(
            OrgDomain.org_id == org_id, OrgDomain.domain == domain, OrgDomain.verified_at.is_not(None)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()


class OrgSessionRepository(Repository[AuthSession]):
    model = AuthSession

    async def acting_in(self, org_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> list[AuthSession]:
        """The unrevoked sessions acting in the org (of one member, when given), locked."""
        stmt = select(AuthSession).where(AuthSession.org_id == org_id, AuthSession.revoked_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(AuthSession.user_id == user_id)
        return list((await self.locked(stmt)).scalars())
