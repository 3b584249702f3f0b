"""Admin rules: find users, their sessions (revoke one), deactivate and reactivate them, grant and
revoke roles."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts import deletion
from auth_service.accounts.repository import UserRepository
from auth_service.accounts.service import deactivate, get_user
from auth_service.audit import service as audit
from auth_service.errors import AccountAlreadyDeleted, LastAdmin
from auth_service.models import AuthSession, User
from auth_service.pagination import decode_cursor, encode_cursor
from auth_service.sessions.service import active_sessions, revoke_all_sessions, revoke_own_session
from auth_service.settings import Settings


def _as_id(query: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(query.strip()) if query else None
    except ValueError:
        return None


async def search_users(
    db: AsyncSession, query: str | None, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """Newest first; `query` is part of an email or username, or a whole user id."""
    after = decode_cursor(cursor) if cursor else None
    user_id = _as_id(query)
    if user_id is not None:
        users = await UserRepository(db).search(None, limit=limit + 1, after=after, user_id=user_id)
    else:
        users = await UserRepository(db).search(query, limit=limit + 1, after=after)
    page = users[:limit]
    return page, encode_cursor(page[-1].created_at, page[-1].id) if len(users) > limit else None


async def _guard_last_admin(db: AsyncSession, user: User) -> None:
    if user.is_admin and user.is_active and await UserRepository(db).count_active_admins() <= 1:
        raise LastAdmin("At least one active admin must remain.")


async def admin_deactivate(db: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    user = await get_user(db, user_id, for_update=True)
    await _guard_last_admin(db, user)
    if user.is_active:
        audit.record(db, audit.AuditEventType.ADMIN_DEACTIVATED, user.id, actor_id=admin.id)
    await deactivate(db, user, by="admin")
    return user


async def admin_delete(db: AsyncSession, settings: Settings, admin: User, user_id: uuid.UUID) -> User:
    """Audited with the admin who did it; the last active admin cannot go."""
    user = await get_user(db, user_id, for_update=True)
    await _guard_last_admin(db, user)
    return await deletion.request_deletion(db, settings, user, by="admin", admin=admin)


async def admin_reactivate(db: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    """A deactivated account, or one pending deletion (whoever asked): an erased one is gone."""
    user = await get_user(db, user_id, for_update=True)
    if user.erased_at is not None:
        raise AccountAlreadyDeleted("This account was erased; it cannot come back.")
    if not user.is_active:
        audit.record(db, audit.AuditEventType.ADMIN_REACTIVATED, user.id, actor_id=admin.id)
        if user.pending_deletion:
            deletion.restore(db, user)
        user.is_active = True
        user.deactivated_at = None
        await deletion.announce_restored(db, user)
    return user


async def set_roles(db: AsyncSession, admin: User, user_id: uuid.UUID, roles: list[str]) -> User:
    """Taking a role away ends the user's sessions, so no token keeps carrying it."""
    user = await get_user(db, user_id, for_update=True)
    wanted = sorted(set(roles))
    removed = set(user.roles) - set(wanted)
    if "admin" in removed:
        await _guard_last_admin(db, user)
    if wanted != sorted(user.roles):
        details = {"from": sorted(user.roles), "to": wanted}
        audit.record(
            db, audit.AuditEventType.ADMIN_ROLES_CHANGED, user.id, actor_id=admin.id, details=details
        )
    user.roles = wanted
    if removed:
        await revoke_all_sessions(db, user.id, reason="revoked")
    return user


async def user_sessions(db: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    user = await get_user(db, user_id)
    return await active_sessions(db, user.id)


async def revoke_user_session(
    db: AsyncSession, admin: User, user_id: uuid.UUID, session_id: uuid.UUID
) -> None:
    """The trail's `sessions.revoked` entry names the admin as its actor."""
    user = await get_user(db, user_id)
    await revoke_own_session(db, user.id, session_id, actor_id=admin.id)
