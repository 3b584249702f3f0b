"""What auth-service keeps about a person, gathered for their data export."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.schemas import UserOut
from auth_service.accounts.service import get_user
from auth_service.audit.repository import AuditEventRepository
from auth_service.audit.schemas import AuditEventOut
from auth_service.export.schemas import (
    AuthExport,
    ExportedAuthenticatorApp,
    ExportedMembership,
    ExportedPasskey,
    ExportedSecondFactors,
    ExportedSession,
)
from auth_service.mfa.repository import RecoveryCodeRepository, TotpFactorRepository
from auth_service.models import AuditEvent, AuthSession, TotpFactor
from auth_service.oauth.repository import IdentityRepository
from auth_service.oauth.schemas import IdentityOut
from auth_service.orgs.repository import OrgRepository
from auth_service.passkeys.repository import PasskeyRepository
from auth_service.principal import Principal
from auth_service.sessions.repository import SessionRepository
from gatehouse_platform.db import utcnow


async def export(db: AsyncSession, principal: Principal) -> AuthExport:
    user_id = principal.user.id
    user = await get_user(db, user_id)
    sessions = await SessionRepository(db).list_where(
        AuthSession.user_id == user_id, order_by=[AuthSession.created_at.desc()]
    )
    totp = await TotpFactorRepository(db).list_where(TotpFactor.user_id == user_id)
    events = await AuditEventRepository(db).list_where(
        AuditEvent.user_id == user_id, order_by=[AuditEvent.occurred_at.desc(), AuditEvent.id.desc()]
    )
    return AuthExport(
        exported_at=utcnow(),
        user=UserOut.of(user),
        has_password=user.password_hash is not None,
        identities=[IdentityOut.of(i) for i in await IdentityRepository(db).of_user(user_id)],
        sessions=[ExportedSession.of(s) for s in sessions],
        second_factors=ExportedSecondFactors(
            authenticator_app=ExportedAuthenticatorApp.model_validate(totp[0]) if totp else None,
            recovery_codes_left=await RecoveryCodeRepository(db).count_unused(user_id),
            passkeys=[ExportedPasskey.of(p) for p in await PasskeyRepository(db).of_user(user_id)],
        ),
        audit_events=[AuditEventOut.of(e) for e in events],
        organizations=[
            ExportedMembership(
                org_id=org.id, name=org.name, slug=org.slug, role=m.role, joined_at=m.joined_at, via=m.via
            )
            for org, m in await OrgRepository(db).of_user(user_id)
        ],
    )
