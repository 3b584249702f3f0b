"""Events about organizations and API keys, published by auth-service (source `/auth-service`).

Membership events carry the org's `member_count` after the change and a `membership_version` that
grows by one with every membership change of that org: a consumer that keeps the highest version it
applied (billing's seat quantity) can take them in any order, twice, or coalesced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.tokens import ApiKeyScope, OrgRole


class OrgCreated(EventData):
    event_type = "org.created"
    description = "A person created an organization; they are its first owner (member_count 1)."

    org_id: uuid.UUID
    name: str
    slug: str
    owner_id: uuid.UUID
    member_count: int = Field(ge=1)
    membership_version: int = Field(ge=1)
    created_at: datetime


class OrgDeleted(EventData):
    event_type = "org.deleted"
    description = (
        "An owner deleted the organization: its members' org tokens are revoked, its API keys die, "
        "billing ends its subscription at once."
    )

    org_id: uuid.UUID
    name: str
    slug: str
    deleted_by: uuid.UUID
    deleted_at: datetime


class OrgMemberAdded(EventData):
    event_type = "org.member_added"
    description = "A person joined the organization (an accepted invitation or a verified domain)."

    org_id: uuid.UUID
    org_name: str
    user_id: uuid.UUID
    email: EmailStr
    role: OrgRole
    via: Literal["invitation", "domain"]
    member_count: int = Field(ge=1, description="Members after the change: the seat quantity")
    membership_version: int = Field(ge=1)
    added_at: datetime


class OrgMemberRemoved(EventData):
    event_type = "org.member_removed"
    description = (
        "A person is no longer a member: their tokens acting in the org are revoked; tell them "
        "unless they left by themselves."
    )

    org_id: uuid.UUID
    org_name: str
    user_id: uuid.UUID
    email: EmailStr
    reason: Literal["left", "removed", "account_deleted"]
    removed_by: uuid.UUID | None = Field(description="The owner or admin who removed them")
    member_count: int = Field(ge=0, description="Members after the change: the seat quantity")
    membership_version: int = Field(ge=1)
    removed_at: datetime


class OrgMemberRoleChanged(EventData):
    event_type = "org.member_role_changed"
    description = "A member's role changed (ownership transferred, or an admin granted or taken)."

    org_id: uuid.UUID
    user_id: uuid.UUID
    old_role: OrgRole
    new_role: OrgRole
    changed_by: uuid.UUID
    changed_at: datetime


class OrgInvitationSent(EventData):
    event_type = "org.invitation_sent"
    carries_secret = True
    description = "Send the invitation link. `token` is a one-time secret: never log it."

    org_id: uuid.UUID
    org_name: str
    invitation_id: uuid.UUID
    email: EmailStr
    role: OrgRole
    invited_by: uuid.UUID
    invited_by_name: str = Field(description="The inviter's username, shown in the email")
    token: str = Field(description="One-time invitation token; the link is built from configuration.")
    expires_at: datetime


class ApiKeyCreated(EventData):
    event_type = "api_key.created"
    description = "An API key was created (its secret is never in an event): tell its creator."

    key_id: uuid.UUID
    user_id: uuid.UUID = Field(description="Who created it")
    email: EmailStr = Field(description="The creator's address")
    org_id: uuid.UUID | None = Field(description="Set for an org's key: it belongs to the org")
    name: str
    prefix: str = Field(
        description="The key's public start (`gk_live_` and its id part): how people tell keys apart"
    )
    scopes: list[ApiKeyScope]
    expires_at: datetime | None
    created_at: datetime


class ApiKeyRevoked(EventData):
    event_type = "api_key.revoked"
    description = (
        "The key stops working: verifiers reject access tokens exchanged from it (their `sid` is "
        "the key's id) until they expire, and the gateway forgets its cached exchange."
    )

    key_id: uuid.UUID
    user_id: uuid.UUID = Field(description="The key's creator")
    org_id: uuid.UUID | None
    reason: Literal["revoked", "owner_deleted", "org_deleted", "creator_left"]
    revoked_at: datetime


ORG_EVENTS: tuple[type[EventData], ...] = (
    OrgCreated,
    OrgDeleted,
    OrgMemberAdded,
    OrgMemberRemoved,
    OrgMemberRoleChanged,
    OrgInvitationSent,
    ApiKeyCreated,
    ApiKeyRevoked,
)
