"""Passkeys: register one (signed in), sign in with one (no username, no password), list, rename
and remove them. A user-verified passkey is a whole multi-factor sign-in on its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.audit import service as audit
from auth_service.clock import Clock
from auth_service.errors import PasskeyNotFound, PasskeyRejected
from auth_service.events import emit
from auth_service.keys.service import KeyRing
from auth_service.models import Passkey, User
from auth_service.passkeys.challenges import Challenges
from auth_service.passkeys.repository import PasskeyRepository
from auth_service.passkeys.webauthn import WebAuthn
from auth_service.principal import Client
from auth_service.sessions.service import IssuedTokens, start_session
from auth_service.settings import Settings
from gatehouse_contracts.events import PasskeyAdded, PasskeyRemoved

REGISTER = "register"
SIGN_IN = "sign-in"


async def registration_options(
    db: AsyncSession, webauthn: WebAuthn, challenges: Challenges, user: User
) -> dict[str, Any]:
    existing = [p.credential_id for p in await PasskeyRepository(db).of_user(user.id)]
    ceremony = webauthn.registration(user, existing)
    await challenges.issue(REGISTER, ceremony.challenge, str(user.id))
    return ceremony.options


async def register(
    db: AsyncSession,
    webauthn: WebAuthn,
    challenges: Challenges,
    clock: Clock,
    user: User,
    credential: dict[str, Any],
    name: str,
) -> Passkey:
    """The challenge must be one issued to this user, unused and unexpired."""
    challenge = webauthn.challenge_of(credential)
    if await challenges.take(REGISTER, challenge) != str(user.id):
        raise PasskeyRejected("The challenge is unknown, expired, used, or someone else's.")
    new = webauthn.verify_registration(credential, challenge)
    passkeys = PasskeyRepository(db)
    if await passkeys.by_credential_id(new.credential_id) is not None:
        raise PasskeyRejected("This passkey is already registered.")
    now = clock.utcnow()
    passkey = passkeys.add(
        Passkey(
            id=uuid.uuid4(),
            user_id=user.id,
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            name=name,
            aaguid=new.aaguid,
            backup_eligible=new.backup_eligible,
            backed_up=new.backed_up,
            created_at=now,
        )
    )
    audit.record(
        db, audit.AuditEventType.PASSKEY_ADDED, user.id, details={"passkey_id": str(passkey.id), "name": name}
    )
    await emit(
        db,
        PasskeyAdded(user_id=user.id, email=user.email, passkey_id=passkey.id, name=name, added_at=now),
        user_id=user.id,
    )
    return passkey


async def sign_in_options(webauthn: WebAuthn, challenges: Challenges) -> dict[str, Any]:
    ceremony = webauthn.authentication()
    await challenges.issue(SIGN_IN, ceremony.challenge, "")
    return ceremony.options


@dataclass(frozen=True)
class PasskeyProof:
    """A passkey assertion (on a `POST /auth/passkeys/login/options` challenge) and what checks it."""

    credential: dict[str, Any]
    webauthn: WebAuthn
    challenges: Challenges


async def verify_assertion(
    db: AsyncSession, proof: PasskeyProof, clock: Clock
) -> tuple[Passkey, tuple[str, ...]]:
    """The passkey a sign-in assertion proves, and what it proves (RFC 8176 `amr` values).

    The credential names its passkey (and, in `userHandle`, its user, which must agree); the
    signature, origin, RP ID and user verification are checked, the sign counter must move
    forward and the backup-eligibility flag must be the one registered."""
    webauthn, challenges, credential = proof.webauthn, proof.challenges, proof.credential
    challenge = webauthn.challenge_of(credential)
    if await challenges.take(SIGN_IN, challenge) is None:
        raise PasskeyRejected("The challenge is unknown, expired or already used.")
    passkey = await PasskeyRepository(db).by_credential_id(webauthn.credential_id_of(credential))
    if passkey is None:
        raise PasskeyRejected("This passkey is not registered.")
    handle = webauthn.user_handle_of(credential)
    if handle is not None and handle != passkey.user_id.bytes:
        raise PasskeyRejected("This passkey belongs to another account.")
    assertion = webauthn.verify_authentication(credential, challenge, passkey.public_key, passkey.sign_count)
    if assertion.backup_eligible != passkey.backup_eligible:
        raise PasskeyRejected("The passkey's backup eligibility changed.")
    passkey.sign_count = assertion.new_sign_count
    passkey.backed_up = assertion.backed_up
    passkey.last_used_at = clock.utcnow()
    # A synced (backup-eligible) passkey is a software-secured key, a device-bound one hardware;
    # user verification (required) makes it a second factor on top of possession.
    return passkey, ("swk" if passkey.backup_eligible else "hwk", "user", "mfa")


async def sign_in(
    db: AsyncSession,
    webauthn: WebAuthn,
    challenges: Challenges,
    keyring: KeyRing,
    settings: Settings,
    clock: Clock,
    credential: dict[str, Any],
    client: Client,
) -> IssuedTokens:
    passkey, proven = await verify_assertion(db, PasskeyProof(credential, webauthn, challenges), clock)
    user = await UserRepository(db).by_id(passkey.user_id)
    if user is None:
        raise PasskeyRejected("This passkey is not registered.")
    return await start_session(
        db, keyring, settings, user, method="passkey", client=client, also_proven=proven
    )


async def list_passkeys(db: AsyncSession, user_id: uuid.UUID) -> list[Passkey]:
    return await PasskeyRepository(db).of_user(user_id)


async def rename(db: AsyncSession, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str) -> Passkey:
    passkey = await PasskeyRepository(db).own(user_id, passkey_id)
    if passkey is None:
        raise PasskeyNotFound("No such passkey.")
    passkey.name = name
    return passkey


async def remove(db: AsyncSession, clock: Clock, user: User, passkey_id: uuid.UUID) -> None:
    passkeys = PasskeyRepository(db)
    passkey = await passkeys.own(user.id, passkey_id)
    if passkey is None:
        raise PasskeyNotFound("No such passkey.")
    await passkeys.remove(passkey)
    audit.record(
        db,
        audit.AuditEventType.PASSKEY_REMOVED,
        user.id,
        details={"passkey_id": str(passkey.id), "name": passkey.name},
    )
    await emit(
        db,
        PasskeyRemoved(
            user_id=user.id,
            email=user.email,
            passkey_id=passkey.id,
            name=passkey.name,
            removed_at=clock.utcnow(),
        ),
        user_id=user.id,
    )
