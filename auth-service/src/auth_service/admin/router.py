"""Admin endpoints: find users (by part of the email or username, or the id), a user's sessions
(revoke one), linked identities and second factors (reset), deactivate/reactivate, roles.

Every route needs an admin, and — when `admins_need_mfa` — one with a second factor whose session
proved it."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from auth_service.accounts import service as accounts
from auth_service.accounts.schemas import DeletionScheduled, UserOut
from auth_service.admin import service
from auth_service.dependencies import AdminPrincipal, ClockDep, DbSession, SettingsDep
from auth_service.errors import (
    AccountAlreadyDeleted,
    LastAdmin,
    MfaEnrollmentRequired,
    MfaSignInRequired,
    SessionNotFound,
    UserNotFound,
)
from auth_service.mfa import service as mfa
from auth_service.mfa.schemas import MfaStatusOut
from auth_service.oauth import service as oauth
from auth_service.oauth.schemas import IdentityList, IdentityOut
from auth_service.pagination import InvalidCursor
from auth_service.sessions.schemas import SessionList, SessionOut
from gatehouse_platform.errors import Forbidden, Unauthorized, responses
from gatehouse_platform.schemas import RequestModel, SafeStr

router = APIRouter(
    prefix="/auth/admin",
    tags=["admin"],
    responses=responses(Unauthorized, Forbidden, MfaEnrollmentRequired, MfaSignInRequired),
)


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class RolesUpdate(RequestModel):
    roles: list[Literal["admin"]] = Field(max_length=8)


@router.get("/users", responses=responses(InvalidCursor))
async def list_users(
    _: AdminPrincipal,
    db: DbSession,
    q: Annotated[
        SafeStr | None, Query(max_length=320, description="Part of an email or username, or a user's id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> UserPage:
    users, next_cursor = await service.search_users(db, q, limit, cursor)
    return UserPage(items=[UserOut.of(u) for u in users], next_cursor=next_cursor)


@router.get("/users/{user_id}", responses=responses(UserNotFound))
async def get_user(user_id: uuid.UUID, _: AdminPrincipal, db: DbSession) -> UserOut:
    return UserOut.of(await accounts.get_user(db, user_id))


@router.post("/users/{user_id}/deactivate", responses=responses(UserNotFound, LastAdmin))
async def deactivate_user(user_id: uuid.UUID, admin: AdminPrincipal, db: DbSession) -> UserOut:
    return UserOut.of(await service.admin_deactivate(db, admin.user, user_id))


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(UserNotFound, LastAdmin, AccountAlreadyDeleted),
    summary="Delete a user: disabled now, erased after the grace period (the owner cannot cancel it)",
)
async def delete_user(
    user_id: uuid.UUID, admin: AdminPrincipal, db: DbSession, settings: SettingsDep
) -> DeletionScheduled:
    user = await service.admin_delete(db, settings, admin.user, user_id)
    assert user.erase_at is not None
    return DeletionScheduled(
        erase_at=user.erase_at, detail="The account is disabled and will be erased then."
    )


@router.post("/users/{user_id}/reactivate", responses=responses(UserNotFound, AccountAlreadyDeleted))
async def reactivate_user(user_id: uuid.UUID, admin: AdminPrincipal, db: DbSession) -> UserOut:
    return UserOut.of(await service.admin_reactivate(db, admin.user, user_id))


@router.put(
    "/users/{user_id}/roles", responses=responses(UserNotFound, LastAdmin), summary="Grant or revoke admin"
)
async def put_roles(user_id: uuid.UUID, body: RolesUpdate, admin: AdminPrincipal, db: DbSession) -> UserOut:
    return UserOut.of(await service.set_roles(db, admin.user, user_id, list(body.roles)))


@router.post(
    "/users/{user_id}/mfa/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(UserNotFound),
    summary="Remove a user's second factors and recovery codes (they are emailed)",
)
async def reset_mfa(user_id: uuid.UUID, admin: AdminPrincipal, db: DbSession, clock: ClockDep) -> None:
    await mfa.reset_by_admin(db, clock, admin.user, await accounts.get_user(db, user_id))


@router.get(
    "/users/{user_id}/sessions", responses=responses(UserNotFound), summary="A user's active sessions"
)
async def user_sessions(user_id: uuid.UUID, admin: AdminPrincipal, db: DbSession) -> SessionList:
    sessions = await service.user_sessions(db, user_id)
    return SessionList(items=[SessionOut.of(s, admin.session_id) for s in sessions])


@router.delete(
    "/users/{user_id}/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(UserNotFound, SessionNotFound),
    summary="End one of a user's sessions (audited with the admin's id)",
)
async def revoke_user_session(
    user_id: uuid.UUID, session_id: uuid.UUID, admin: AdminPrincipal, db: DbSession
) -> None:
    await service.revoke_user_session(db, admin.user, user_id, session_id)


@router.get(
    "/users/{user_id}/identities",
    responses=responses(UserNotFound),
    summary="A user's linked Google / GitHub accounts",
)
async def user_identities(user_id: uuid.UUID, _: AdminPrincipal, db: DbSession) -> IdentityList:
    user = await accounts.get_user(db, user_id)
    linked = await oauth.identities(db, user.id)
    return IdentityList(
        items=[IdentityOut.of(i) for i in linked], has_password=user.password_hash is not None
    )


@router.get("/users/{user_id}/mfa", responses=responses(UserNotFound), summary="A user's second factors")
async def user_mfa(user_id: uuid.UUID, _: AdminPrincipal, db: DbSession) -> MfaStatusOut:
    user = await accounts.get_user(db, user_id)
    return MfaStatusOut.of(await mfa.status(db, user.id))
