"""`GET /auth/me/export`: a person's data, as a file."""

from __future__ import annotations

from fastapi import APIRouter, Response

from auth_service.dependencies import CurrentPrincipal, DbSession
from auth_service.export import service
from auth_service.export.schemas import AuthExport
from gatehouse_platform.downloads import dated_filename, download_headers, download_responses
from gatehouse_platform.errors import Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.get(
    "/me/export",
    responses={**download_responses("My account's data, as a JSON file"), **responses(Unauthorized)},
    summary="Download my data: profile, linked accounts, sessions, second factors, security activity",
)
async def export_my_data(principal: CurrentPrincipal, db: DbSession, response: Response) -> AuthExport:
    """No secret is in it: no password hash, authenticator seed, recovery code or token."""
    exported = await service.export(db, principal)
    response.headers.update(download_headers(dated_filename("gatehouse-account", exported.exported_at)))
    return exported
