"""Verified domains: an org claims a domain and proves it by serving a token at a well-known HTTPS
address (`org_domain_verification_url`, by default
`https://<domain>/.well-known/gatehouse-org-verification.txt`). When the org allows it, a person
whose verified email is at one of its verified domains joins as a member without an invitation.

Why a well-known file rather than a DNS TXT record: it is checked with the HTTP client every
deployment already has, and tested end to end here against a real HTTP server (the setting points
the check at it), where a DNS check needs a resolver we cannot point at a test server without a new
dependency. A verified domain belongs to one org only.
"""

from __future__ import annotations

import logging
import secrets
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import service as audit
from auth_service.errors import (
    AlreadyMember,
    DomainNotFound,
    DomainTaken,
    DomainVerificationFailed,
    EmailNotVerified,
    OrgNotFound,
)
from auth_service.models import Org, OrgDomain, OrgMember, User
from auth_service.orgs import service as orgs
from auth_service.orgs.repository import OrgDomainRepository, OrgMemberRepository, OrgRepository
from auth_service.settings import Settings
from gatehouse_platform.db import utcnow

log = logging.getLogger(__name__)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


async def listed(db: AsyncSession, actor: User, org_id: uuid.UUID) -> list[OrgDomain]:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS)
    return await OrgDomainRepository(db).of_org(org_id)


async def claim(db: AsyncSession, actor: User, org_id: uuid.UUID, domain: str) -> OrgDomain:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS, lock=True)
    domains = OrgDomainRepository(db)
    if await domains.verified_elsewhere(domain, org_id):
        raise DomainTaken("Another organization has verified this domain.")
    existing = await domains.lock(OrgDomain.org_id == org_id, OrgDomain.domain == domain)
    if existing is not None:
        return existing
    claimed = domains.add(
        OrgDomain(
            id=uuid.uuid4(),
            org_id=org_id,
            domain=domain,
            verification_token=f"gatehouse-org-verification={secrets.token_urlsafe(24)}",
            created_at=utcnow(),
        )
    )
    await db.flush()
    audit.record(
        db, audit.AuditEventType.ORG_DOMAIN_ADDED, actor.id, details={"org_id": str(org_id), "domain": domain}
    )
    return claimed


def verification_url(settings: Settings, domain: str) -> str:
    return settings.org_domain_verification_url.format(domain=domain)


async def verify(
    db: AsyncSession,
    settings: Settings,
    http: httpx.AsyncClient,
    actor: User,
    org_id: uuid.UUID,
    domain_id: uuid.UUID,
) -> OrgDomain:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS)
    domains = OrgDomainRepository(db)
    claimed = await domains.lock(OrgDomain.id == domain_id, OrgDomain.org_id == org_id)
    if claimed is None:
        raise DomainNotFound("No such domain for this organization.")
    if claimed.verified_at is not None:
        return claimed
    if await domains.verified_elsewhere(claimed.domain, org_id):
        raise DomainTaken("Another organization has verified this domain.")
    url = verification_url(settings, claimed.domain)
    try:
        response = await http.get(url, timeout=settings.org_domain_verification_timeout_seconds)
        found = response.status_code == 200 and claimed.verification_token in response.text.split()
    except httpx.HTTPError as exc:
        log.info(
            "domain verification fetch failed", extra={"domain": claimed.domain, "error": type(exc).__name__}
        )
        found = False
    if not found:
        raise DomainVerificationFailed(
            f"{url} must answer 200 with the verification token on a line of its own.", url=url
        )
    claimed.verified_at = utcnow()
    audit.record(
        db,
        audit.AuditEventType.ORG_DOMAIN_VERIFIED,
        actor.id,
        details={"org_id": str(org_id), "domain": claimed.domain},
    )
    await db.flush()
    return claimed


async def remove(db: AsyncSession, actor: User, org_id: uuid.UUID, domain_id: uuid.UUID) -> None:
    await orgs.membership(db, actor.id, org_id, *orgs.MANAGERS)
    domains = OrgDomainRepository(db)
    claimed = await domains.lock(OrgDomain.id == domain_id, OrgDomain.org_id == org_id)
    if claimed is None:
        raise DomainNotFound("No such domain for this organization.")
    await db.delete(claimed)
    audit.record(
        db,
        audit.AuditEventType.ORG_DOMAIN_REMOVED,
        actor.id,
        details={"org_id": str(org_id), "domain": claimed.domain},
    )


async def joinable(db: AsyncSession, user: User) -> list[Org]:
    """The orgs the user may join by their verified email's domain."""
    if not user.email_verified:
        return []
    return await OrgRepository(db).joinable_by_domain(email_domain(user.email), user.id)


async def join(db: AsyncSession, user: User, org_id: uuid.UUID) -> tuple[Org, OrgMember]:
    org = await OrgRepository(db).lock(Org.id == org_id)
    if org is None:
        raise OrgNotFound("No such organization.")
    if await OrgMemberRepository(db).find(org.id, user.id) is not None:
        raise AlreadyMember("You are already a member of this organization.")
    if not user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    verified = await OrgDomainRepository(db).verified(org.id, email_domain(user.email))
    if verified is None or not org.allow_domain_join:
        # as for an org that does not exist: nobody learns of an org they may not join
        raise OrgNotFound("No such organization you may join by your email's domain.")
    await orgs.require_room(db, org, count_pending=True)
    member = await orgs.add_member(db, org, user, "member", via="domain")
    return org, member
