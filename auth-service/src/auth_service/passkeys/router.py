"""Passkeys: register, list, rename, remove; sign in with one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from auth_service.dependencies import (
    ChallengesDep,
    ClientDep,
    ClockDep,
    CurrentPrincipal,
    DbSession,
    KeyRingDep,
    RecentPrincipal,
    SettingsDep,
    ThrottleDep,
    WebAuthnDep,
)
from auth_service.errors import AccountDeactivated, PasskeyNotFound, PasskeyRejected, ReauthenticationRequired
from auth_service.passkeys import service
from auth_service.passkeys.schemas import (
    PasskeyCredential,
    PasskeyList,
    PasskeyOut,
    RegisterPasskey,
    RenamePasskey,
)
from auth_service.sessions.cookies import tokens_response
from auth_service.sessions.schemas import TokenResponse
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses

router = APIRouter(prefix="/auth/passkeys", tags=["passkeys"])


@router.post(
    "/register/options",
    responses=responses(Unauthorized),
    summary="Creation options for navigator.credentials.create()",
)
async def register_options(
    principal: CurrentPrincipal, db: DbSession, webauthn: WebAuthnDep, challenges: ChallengesDep
) -> dict[str, Any]:
    return await service.registration_options(db, webauthn, challenges, principal.user)


@router.post(
    "/register/verify",
    status_code=status.HTTP_201_CREATED,
    responses=responses(Unauthorized, PasskeyRejected),
    summary="Store the passkey the browser created",
)
async def register_verify(
    body: RegisterPasskey,
    principal: CurrentPrincipal,
    db: DbSession,
    webauthn: WebAuthnDep,
    challenges: ChallengesDep,
    clock: ClockDep,
) -> PasskeyOut:
    passkey = await service.register(
        db, webauthn, challenges, clock, principal.user, body.credential, body.name
    )
    return PasskeyOut.of(passkey)


@router.get("", responses=responses(Unauthorized), summary="My passkeys")
async def list_passkeys(principal: CurrentPrincipal, db: DbSession) -> PasskeyList:
    return PasskeyList(items=[PasskeyOut.of(p) for p in await service.list_passkeys(db, principal.user.id)])


@router.patch("/{passkey_id}", responses=responses(Unauthorized, PasskeyNotFound), summary="Rename a passkey")
async def rename_passkey(
    passkey_id: uuid.UUID, body: RenamePasskey, principal: CurrentPrincipal, db: DbSession
) -> PasskeyOut:
    return PasskeyOut.of(await service.rename(db, principal.user.id, passkey_id, body.name))


@router.delete(
    "/{passkey_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(ReauthenticationRequired, PasskeyNotFound),
    summary="Remove a passkey (needs a recent sign-in)",
)
async def remove_passkey(
    passkey_id: uuid.UUID, principal: RecentPrincipal, db: DbSession, clock: ClockDep
) -> None:
    await service.remove(db, clock, principal.user, passkey_id)


@router.post(
    "/login/options",
    responses=responses(TooManyRequests),
    summary="Request options for navigator.credentials.get() (no username needed)",
)
async def login_options(
    webauthn: WebAuthnDep, challenges: ChallengesDep, throttle: ThrottleDep, client: ClientDep
) -> dict[str, Any]:
    await throttle.address_attempt("passkey-options", client.ip)
    return await service.sign_in_options(webauthn, challenges)


@router.post(
    "/login/verify",
    responses=responses(PasskeyRejected, AccountDeactivated, TooManyRequests),
    summary="Sign in with a passkey: tokens, no password, no second step",
)
async def login_verify(
    body: PasskeyCredential,
    throttle: ThrottleDep,
    db: DbSession,
    webauthn: WebAuthnDep,
    challenges: ChallengesDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
    response: Response,
) -> TokenResponse:
    await throttle.address_attempt("passkey", client.ip)
    issued = await service.sign_in(
        db, webauthn, challenges, keyring, settings, clock, body.credential, client
    )
    return tokens_response(response, settings, issued)
