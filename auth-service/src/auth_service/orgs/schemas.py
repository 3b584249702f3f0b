"""Request and response bodies of the organization endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, EmailStr, Field, field_validator

from auth_service.accounts.schemas import TOKEN_PATTERN
from auth_service.models import Org, OrgDomain, OrgInvitation, OrgMember, User
from auth_service.orgs.domains import verification_url
from auth_service.settings import Settings
from gatehouse_contracts.tokens import OrgRole
from gatehouse_platform.schemas import PartialUpdate, RequestModel

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$"
DOMAIN_PATTERN = r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"

OrgName = Field(min_length=1, max_length=100, description="Shown to members and in emails")


class CreateOrgRequest(RequestModel):
    name: str = OrgName
    slug: str = Field(
        min_length=3,
        max_length=40,
        pattern=SLUG_PATTERN,
        description="3–40 lowercase letters, digits and hyphens, not starting or ending with a hyphen; "
        "unique",
    )

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class UpdateOrgRequest(PartialUpdate):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    allow_domain_join: bool | None = Field(
        default=None, description="People with a verified email at a verified domain may join"
    )
    member_limit: int | None = Field(
        default=None, ge=1, description="Members and pending invitations allowed (up to the service's cap)"
    )

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None


class OrgOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    role: OrgRole = Field(description="The caller's role in the org (`member` for the org's own API key)")
    created_at: datetime
    member_limit: int
    seat_limit: int | None = Field(description="The seats the org's plan allows (billing); None: no limit")
    allow_domain_join: bool

    @classmethod
    def of(cls, org: Org, member: OrgMember) -> OrgOut:
        return cls.as_role(org, member.role)

    @classmethod
    def as_role(cls, org: Org, role: str) -> OrgOut:
        return cls(
            id=org.id,
            name=org.name,
            slug=org.slug,
            role=role,
            created_at=org.created_at,
            member_limit=org.member_limit,
            seat_limit=org.seat_limit,
            allow_domain_join=org.allow_domain_join,
        )


class OrgList(BaseModel):
    items: list[OrgOut]


class JoinableOrg(BaseModel):
    id: uuid.UUID
    name: str
    slug: str


class JoinableOrgList(BaseModel):
    items: list[JoinableOrg]


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    username: str
    role: OrgRole
    joined_at: datetime
    via: str

    @classmethod
    def of(cls, member: OrgMember, user: User) -> MemberOut:
        return cls(
            user_id=user.id,
            email=user.email,
            username=user.username,
            role=member.role,
            joined_at=member.joined_at,
            via=member.via,
        )


class MemberList(BaseModel):
    items: list[MemberOut]


class RoleRequest(RequestModel):
    role: OrgRole


class TransferRequest(RequestModel):
    user_id: uuid.UUID = Field(description="The member who becomes an owner; the caller becomes an admin")


class InviteRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    role: OrgRole = "member"


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: OrgRole
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, invitation: OrgInvitation) -> InvitationOut:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            invited_by=invitation.invited_by,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )


class InvitationList(BaseModel):
    items: list[InvitationOut]


class AcceptInvitationRequest(RequestModel):
    token: str = Field(min_length=16, max_length=200, pattern=TOKEN_PATTERN)


class DomainRequest(RequestModel):
    domain: str = Field(min_length=4, max_length=253, pattern=DOMAIN_PATTERN, description="Lowercase")


class DomainOut(BaseModel):
    id: uuid.UUID
    domain: str
    verified: bool
    verified_at: datetime | None
    verification_token: str = Field(description="Serve this, on a line of its own, at `verification_url`")
    verification_url: str

    @classmethod
    def of(cls, domain: OrgDomain, settings: Settings) -> DomainOut:
        return cls(
            id=domain.id,
            domain=domain.domain,
            verified=domain.verified_at is not None,
            verified_at=domain.verified_at,
            verification_token=domain.verification_token,
            verification_url=verification_url(settings, domain.domain),
        )


class DomainList(BaseModel):
    items: list[DomainOut]
