"""Recording the audit trail, in the caller's transaction (like the outbox), reading it back, and
telling a person of a sign-in from a device or network not seen lately.

Nothing here edits or deletes a row, except the retention purge.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit.repository import AuditEventRepository
from auth_service.events import emit
from auth_service.models import AuditEvent, User
from auth_service.pagination import decode_cursor, encode_cursor
from auth_service.principal import Client
from auth_service.settings import Settings
from gatehouse_contracts.events import NewSignIn
from gatehouse_platform.db import utcnow


class AuditEventType(enum.StrEnum):
    SIGN_IN_SUCCEEDED = "sign_in.succeeded"
    SIGN_IN_FAILED = "sign_in.failed"
    PASSWORD_CHANGED = "password.changed"
    EMAIL_CHANGED = "email.changed"
    TOTP_ENABLED = "mfa.totp_enabled"
    TOTP_DISABLED = "mfa.totp_disabled"
    RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
    PASSKEY_ADDED = "mfa.passkey_added"
    PASSKEY_REMOVED = "mfa.passkey_removed"
    SESSIONS_REVOKED = "sessions.revoked"
    IDENTITY_LINKED = "identity.linked"
    IDENTITY_UNLINKED = "identity.unlinked"
    ACCOUNT_DEACTIVATED = "account.deactivated"
    DELETION_REQUESTED = "account.deletion_requested"
    DELETION_CANCELLED = "account.deletion_cancelled"
    ACCOUNT_ERASED = "account.erased"
    ADMIN_DEACTIVATED = "admin.user_deactivated"
    ADMIN_REACTIVATED = "admin.user_reactivated"
    ADMIN_ROLES_CHANGED = "admin.roles_changed"
    ADMIN_MFA_RESET = "admin.mfa_reset"
    ADMIN_DELETED = "admin.user_deleted"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    ORG_CREATED = "org.created"
    ORG_UPDATED = "org.updated"
    ORG_DELETED = "org.deleted"
    ORG_JOINED = "org.joined"
    ORG_LEFT = "org.left"
    ORG_MEMBER_REMOVED = "org.member_removed"
    ORG_MEMBER_ROLE_CHANGED = "org.member_role_changed"
    ORG_INVITATION_SENT = "org.invitation_sent"
    ORG_INVITATION_REVOKED = "org.invitation_revoked"
    ORG_DOMAIN_ADDED = "org.domain_added"
    ORG_DOMAIN_VERIFIED = "org.domain_verified"
    ORG_DOMAIN_REMOVED = "org.domain_removed"
    ORG_SWITCHED = "org.switched"


def device_of(user_agent: str | None) -> str | None:
    """A device as the trail remembers it: a digest of its user agent."""
    if not user_agent:
        return None
    return hashlib.sha256(user_agent.encode()).hexdigest()[:32]


def network_of(ip: str | None) -> str | None:
    """The network an address belongs to: its /24 (IPv4) or /48 (IPv6)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def record(
    db: AsyncSession,
    type_: AuditEventType,
    user_id: uuid.UUID,
    *,
    client: Client | None = None,
    actor_id: uuid.UUID | None = None,
    method: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An entry in the trail, added to the caller's unit of work: it stands or falls with the
    change it records."""
    ip = client.ip if client else None
    agent = client.user_agent if client else None
    return AuditEventRepository(db).add(
        AuditEvent(
            id=uuid.uuid4(),
            user_id=user_id,
            type=type_.value,
            occurred_at=utcnow(),
            actor_id=actor_id,
            method=method,
            ip=ip if network_of(ip) else None,  # "unknown" (no peer) is no address
            place=client.place if client else None,
            user_agent=agent,
            device=device_of(agent),
            network=network_of(ip),
            details=details or {},
        )
    )


SignInMethod = Literal["password", "email_code", "google", "github", "passkey"]


async def record_sign_in(
    db: AsyncSession,
    settings: Settings,
    user: User,
    *,
    method: str,
    client: Client,
    second_step: str | None,
) -> None:
    """A successful sign-in; and, when its device or network was not seen in one within
    `new_sign_in_window_days` (and it is not the user's first), `user.new_sign_in` to email them."""
    now = utcnow()
    device, network = device_of(client.user_agent), network_of(client.ip)
    memory = await AuditEventRepository(db).sign_in_memory(
        user.id,
        AuditEventType.SIGN_IN_SUCCEEDED,
        since=now - timedelta(days=settings.new_sign_in_window_days),
        device=device,
        network=network,
    )
    new_device = device is not None and not memory.device_seen
    new_network = network is not None and not memory.network_seen
    alert = memory.any_before and (new_device or new_network)
    details: dict[str, Any] = {"new_device": new_device, "new_network": new_network, "alerted": alert}
    if second_step is not None:
        details["second_step"] = second_step
    entry = record(
        db, AuditEventType.SIGN_IN_SUCCEEDED, user.id, client=client, method=method, details=details
    )
    if alert:
        await emit(
            db,
            NewSignIn(
                user_id=user.id,
                email=user.email,
                method=cast(SignInMethod, method),
                signed_in_at=entry.occurred_at,
                ip=entry.ip,
                place=entry.place,
                user_agent=client.user_agent,
                new_device=new_device,
                new_network=new_network,
            ),
            user_id=user.id,
        )


async def page(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    user_id: uuid.UUID | None = None,
    type_: AuditEventType | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """A page of the trail, newest first, and the cursor of the next one."""
    events = await AuditEventRepository(db).page(
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        user_id=user_id,
        type_=type_.value if type_ is not None else None,
        since=since,
    )
    items = events[:limit]
    last = items[-1] if items else None
    return items, encode_cursor(last.occurred_at, last.id) if last and len(events) > limit else None


# What an erased person's trail loses from its details besides the address and device columns: the
# emails of an email change and the names they gave their passkeys.
PERSONAL_DETAIL_KEYS = ("old_email", "new_email", "email", "name", "place")


async def strip_personal_data(db: AsyncSession, user_id: uuid.UUID) -> int:
    """The erased user's trail keeps what happened and when, and nothing that identifies them."""
    return await AuditEventRepository(db).strip_personal(user_id, PERSONAL_DETAIL_KEYS)


async def purge_older_than(db: AsyncSession, retention_days: int) -> int:
    return await AuditEventRepository(db).purge(utcnow() - timedelta(days=retention_days))
