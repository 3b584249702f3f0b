"""Organizations: create and list mine; settings; members and roles; invitations; verified domains;
acting in an org (switch). An org the caller is not in answers 404."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from auth_service.dependencies import (
    CurrentPrincipal,
    DbSession,
    HttpDep,
    KeyRingDep,
    OrgReader,
    SettingsDep,
    ThrottleDep,
)
from auth_service.errors import (
    AlreadyMember,
    DomainNotFound,
    DomainTaken,
    DomainVerificationFailed,
    EmailNotVerified,
    InvalidField,
    InvitationEmailMismatch,
    InvitationInvalid,
    InvitationNotFound,
    LastOwner,
    MemberLimitReached,
    MemberNotFound,
    OrgNotFound,
    OrgRoleRequired,
    OrgSlugTaken,
    SeatLimitReached,
    SessionNotFound,
)
from auth_service.orgs import domains, invitations, service
from auth_service.orgs.schemas import (
    AcceptInvitationRequest,
    CreateOrgRequest,
    DomainList,
    DomainOut,
    DomainRequest,
    InvitationList,
    InvitationOut,
    InviteRequest,
    JoinableOrg,
    JoinableOrgList,
    MemberList,
    MemberOut,
    OrgList,
    OrgOut,
    RoleRequest,
    TransferRequest,
    UpdateOrgRequest,
)
from auth_service.sessions.cookies import tokens_response
from auth_service.sessions.schemas import TokenResponse
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["organizations"])


@router.post(
    "/orgs",
    status_code=status.HTTP_201_CREATED,
    responses=responses(Unauthorized, OrgSlugTaken),
    summary="Create an organization: the caller is its owner",
)
async def create_org(
    body: CreateOrgRequest, principal: CurrentPrincipal, db: DbSession, settings: SettingsDep
) -> OrgOut:
    found = await service.create(db, settings, principal.user, body.name, body.slug)
    return OrgOut.of(found.org, found.member)


@router.get("/orgs", responses=responses(Unauthorized), summary="The organizations I am in, with my role")
async def list_orgs(principal: CurrentPrincipal, db: DbSession) -> OrgList:
    return OrgList(items=[OrgOut.of(m.org, m.member) for m in await service.mine(db, principal.user.id)])


@router.get(
    "/me/joinable-orgs",
    responses=responses(Unauthorized),
    summary="Organizations I may join by my verified email's domain",
)
async def joinable_orgs(principal: CurrentPrincipal, db: DbSession) -> JoinableOrgList:
    orgs = await domains.joinable(db, principal.user)
    return JoinableOrgList(items=[JoinableOrg(id=o.id, name=o.name, slug=o.slug) for o in orgs])


@router.post(
    "/orgs/personal/switch",
    responses=responses(Unauthorized, SessionNotFound),
    summary="Act as myself again: new tokens without `org_id`",
)
async def switch_to_personal(
    principal: CurrentPrincipal, db: DbSession, keyring: KeyRingDep, settings: SettingsDep, response: Response
) -> TokenResponse:
    issued = await service.switch(db, keyring, settings, principal, None)
    return tokens_response(response, settings, issued)


@router.get(
    "/orgs/{org_id}",
    responses=responses(Unauthorized, OrgNotFound),
    summary="An org I am in (API keys: `orgs:read`; an org's own key reads its org as a member)",
)
async def get_org(org_id: uuid.UUID, caller: OrgReader, db: DbSession) -> OrgOut:
    org, role = await service.read(db, caller, org_id)
    return OrgOut.as_role(org, role)


@router.patch(
    "/orgs/{org_id}",
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, InvalidField),
    summary="Change the org's settings (owner or admin)",
)
async def update_org(
    org_id: uuid.UUID,
    body: UpdateOrgRequest,
    principal: CurrentPrincipal,
    db: DbSession,
    settings: SettingsDep,
) -> OrgOut:
    found = await service.update(
        db,
        settings,
        principal.user,
        org_id,
        name=body.name,
        allow_domain_join=body.allow_domain_join,
        member_limit=body.member_limit,
    )
    return OrgOut.of(found.org, found.member)


@router.delete(
    "/orgs/{org_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired),
    summary="Delete the org (owner only): its subscription ends, its members' org tokens are revoked",
)
async def delete_org(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> None:
    await service.delete(db, principal.user, org_id)


@router.post(
    "/orgs/{org_id}/switch",
    responses=responses(Unauthorized, OrgNotFound, SessionNotFound),
    summary="Act in the org: new tokens whose access token carries `org_id` and `org_role`",
)
async def switch_org(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    keyring: KeyRingDep,
    settings: SettingsDep,
    response: Response,
) -> TokenResponse:
    """The caller's session is exchanged for a new one acting in the org (its refresh tokens keep
    the org); the old session's tokens stop working."""
    issued = await service.switch(db, keyring, settings, principal, org_id)
    return tokens_response(response, settings, issued)


@router.get(
    "/orgs/{org_id}/members",
    responses=responses(Unauthorized, OrgNotFound),
    summary="The org's members (API keys: `orgs:read`, an org's own key included)",
)
async def list_members(org_id: uuid.UUID, caller: OrgReader, db: DbSession) -> MemberList:
    rows = await service.members(db, caller, org_id)
    return MemberList(items=[MemberOut.of(member, user) for member, user in rows])


@router.patch(
    "/orgs/{org_id}/members/{user_id}",
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, MemberNotFound, LastOwner),
    summary="Change a member's role (owners: any role; admins: member or admin)",
)
async def change_role(
    org_id: uuid.UUID, user_id: uuid.UUID, body: RoleRequest, principal: CurrentPrincipal, db: DbSession
) -> MemberOut:
    await service.change_role(db, principal, org_id, user_id, body.role)
    rows = await service.members(db, principal, org_id)
    return next(MemberOut.of(m, u) for m, u in rows if m.user_id == user_id)


@router.delete(
    "/orgs/{org_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, MemberNotFound, LastOwner),
    summary="Remove a member: their tokens acting in the org are revoked at once",
)
async def remove_member(
    org_id: uuid.UUID, user_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession
) -> None:
    await service.remove(db, principal.user, org_id, user_id)


@router.post(
    "/orgs/{org_id}/transfer",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, MemberNotFound),
    summary="Transfer ownership (owner only): the member becomes an owner, the caller an admin",
)
async def transfer_ownership(
    org_id: uuid.UUID, body: TransferRequest, principal: CurrentPrincipal, db: DbSession
) -> None:
    await service.transfer_ownership(db, principal, org_id, body.user_id)


@router.post(
    "/orgs/{org_id}/leave",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, LastOwner),
    summary="Leave the org: my tokens acting in it are revoked",
)
async def leave_org(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> None:
    await service.leave(db, principal.user, org_id)


@router.post(
    "/orgs/{org_id}/join",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        Unauthorized, OrgNotFound, AlreadyMember, EmailNotVerified, SeatLimitReached, MemberLimitReached
    ),
    summary="Join by my verified email's domain, where the org allows it",
)
async def join_org(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> OrgOut:
    org, member = await domains.join(db, principal.user, org_id)
    return OrgOut.of(org, member)


@router.post(
    "/orgs/{org_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        Unauthorized,
        OrgNotFound,
        OrgRoleRequired,
        AlreadyMember,
        SeatLimitReached,
        MemberLimitReached,
        TooManyRequests,
    ),
    summary="Invite an address: an emailed single-use link, valid 7 days",
)
async def invite(
    org_id: uuid.UUID,
    body: InviteRequest,
    principal: CurrentPrincipal,
    db: DbSession,
    settings: SettingsDep,
    throttle: ThrottleDep,
) -> InvitationOut:
    invitation = await invitations.invite(
        db, settings, throttle, principal.user, org_id, str(body.email), body.role
    )
    return InvitationOut.of(invitation)


@router.get(
    "/orgs/{org_id}/invitations",
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired),
    summary="Pending invitations (owner or admin)",
)
async def list_invitations(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> InvitationList:
    pending = await invitations.pending(db, principal.user, org_id)
    return InvitationList(items=[InvitationOut.of(i) for i in pending])


@router.delete(
    "/orgs/{org_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, InvitationNotFound),
    summary="Revoke a pending invitation: its link stops working",
)
async def revoke_invitation(
    org_id: uuid.UUID, invitation_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession
) -> None:
    await invitations.revoke(db, principal.user, org_id, invitation_id)


@router.post(
    "/invitations/accept",
    responses=responses(
        Unauthorized,
        InvitationInvalid,
        InvitationEmailMismatch,
        EmailNotVerified,
        AlreadyMember,
        SeatLimitReached,
        MemberLimitReached,
    ),
    summary="Accept an invitation with the emailed token, signed in with the invited, verified address",
)
async def accept_invitation(
    body: AcceptInvitationRequest, principal: CurrentPrincipal, db: DbSession
) -> OrgOut:
    org, member = await invitations.accept(db, principal.user, body.token)
    return OrgOut.of(org, member)


@router.get(
    "/orgs/{org_id}/domains",
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired),
    summary="The org's claimed domains (owner or admin)",
)
async def list_domains(
    org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, settings: SettingsDep
) -> DomainList:
    claimed = await domains.listed(db, principal.user, org_id)
    return DomainList(items=[DomainOut.of(d, settings) for d in claimed])


@router.post(
    "/orgs/{org_id}/domains",
    status_code=status.HTTP_201_CREATED,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, DomainTaken),
    summary="Claim a domain: serve the answer's token at its verification URL, then verify",
)
async def claim_domain(
    org_id: uuid.UUID, body: DomainRequest, principal: CurrentPrincipal, db: DbSession, settings: SettingsDep
) -> DomainOut:
    return DomainOut.of(await domains.claim(db, principal.user, org_id, body.domain), settings)


@router.post(
    "/orgs/{org_id}/domains/{domain_id}/verify",
    responses=responses(
        Unauthorized, OrgNotFound, OrgRoleRequired, DomainNotFound, DomainTaken, DomainVerificationFailed
    ),
    summary="Check the domain's verification file",
)
async def verify_domain(
    org_id: uuid.UUID,
    domain_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    settings: SettingsDep,
    http: HttpDep,
) -> DomainOut:
    verified = await domains.verify(db, settings, http, principal.user, org_id, domain_id)
    return DomainOut.of(verified, settings)


@router.delete(
    "/orgs/{org_id}/domains/{domain_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired, DomainNotFound),
)
async def remove_domain(
    org_id: uuid.UUID, domain_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession
) -> None:
    await domains.remove(db, principal.user, org_id, domain_id)
