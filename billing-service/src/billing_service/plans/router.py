"""Plan endpoints: the public catalogue and its administration."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from billing_service.audit.service import AuditAction, record, sent
from billing_service.dependencies import AdminClaims, DbSession, StripeDep
from billing_service.errors import STRIPE_ERRORS, InvalidCursor, PlanCodeTaken, PlanNotFound
from billing_service.pagination import Cursor, Limit
from billing_service.plans import service
from billing_service.plans.schemas import PlanCreate, PlanOut, PlanPage, PlanUpdate
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["plans"])
ADMIN_ERRORS = (Unauthorized, Forbidden)


@router.get("/plans", summary="Plans on offer, cheapest first", responses=responses(InvalidCursor))
async def list_plans(db: DbSession, limit: Limit = 50, cursor: Cursor = None) -> PlanPage:
    plans, next_cursor = await service.list_plans(db, include_retired=False, limit=limit, cursor=cursor)
    return PlanPage(items=[PlanOut.model_validate(p) for p in plans], next_cursor=next_cursor)


@router.get("/plans/{plan_id}", responses=responses(PlanNotFound))
async def get_plan(plan_id: uuid.UUID, db: DbSession) -> PlanOut:
    return PlanOut.model_validate(await service.get_plan(db, plan_id))


@router.post("/plans", status_code=201, responses=responses(*ADMIN_ERRORS, PlanCodeTaken, *STRIPE_ERRORS))
async def create_plan(body: PlanCreate, admin: AdminClaims, db: DbSession, stripe: StripeDep) -> PlanOut:
    plan = await service.create_plan(db, stripe, body)
    record(db, AuditAction.PLAN_CREATED, actor_id=admin.sub, subject_id=plan.id, details=sent(body))
    return PlanOut.model_validate(plan)


@router.patch(
    "/plans/{plan_id}",
    summary="Change a plan (a new price makes a new Stripe price; subscribers keep theirs)",
    responses=responses(*ADMIN_ERRORS, PlanNotFound, *STRIPE_ERRORS),
)
async def update_plan(
    plan_id: uuid.UUID, body: PlanUpdate, admin: AdminClaims, db: DbSession, stripe: StripeDep
) -> PlanOut:
    plan = await service.update_plan(db, stripe, plan_id, body)
    record(db, AuditAction.PLAN_UPDATED, actor_id=admin.sub, subject_id=plan.id, details=sent(body))
    return PlanOut.model_validate(plan)


@router.delete(
    "/plans/{plan_id}",
    status_code=204,
    summary="Retire a plan (soft delete): no new subscriptions, existing ones run on",
    responses=responses(*ADMIN_ERRORS, PlanNotFound, *STRIPE_ERRORS),
)
async def retire_plan(plan_id: uuid.UUID, admin: AdminClaims, db: DbSession, stripe: StripeDep) -> Response:
    plan = await service.retire_plan(db, stripe, plan_id)
    record(db, AuditAction.PLAN_RETIRED, actor_id=admin.sub, subject_id=plan.id, details={"code": plan.code})
    return Response(status_code=204)


@router.get(
    "/admin/plans",
    tags=["admin"],
    summary="Every plan, retired ones included",
    responses=responses(*ADMIN_ERRORS, InvalidCursor),
)
async def list_all_plans(_: AdminClaims, db: DbSession, limit: Limit = 50, cursor: Cursor = None) -> PlanPage:
    plans, next_cursor = await service.list_plans(db, include_retired=True, limit=limit, cursor=cursor)
    return PlanPage(items=[PlanOut.model_validate(p) for p in plans], next_cursor=next_cursor)
