"""Readiness means "can serve my requests" (issue 22): a dependency the requests need (database,
Redis) takes the service out of rotation; one the outbox and queues exist to ride out (the broker,
SMTP) is reported — in `/readyz?verbose` and in metrics — but does not."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from gatehouse_platform.app import Lifespan, service_app
from gatehouse_platform.http import ReadinessCheck


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionRefusedError("nothing listens")


def app_with(checks: dict[str, ReadinessCheck], reported: dict[str, ReadinessCheck]) -> FastAPI:
    return service_app(
        title="probe",
        description="",
        services=None,
        lifespan=Lifespan(),
        checks=checks,
        reported_checks=reported,
        routers=[],
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


async def test_a_broker_outage_is_reported_but_keeps_the_service_ready() -> None:
    async with client_of(app_with({"database": ok}, {"broker": down})) as client:
        plain = await client.get("/readyz")
        verbose = await client.get("/readyz", params={"verbose": True})
        metrics = (await client.get("/metrics")).text
    assert plain.status_code == 200
    assert plain.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert verbose.status_code == 200
    assert verbose.json() == {
        "status": "ok",
        "checks": {"database": "ok"},
        "reported": {"broker": "fail: ConnectionRefusedError"},
    }
    assert 'dependency_up{dependency="broker"} 0.0' in metrics
    assert 'dependency_up{dependency="database"} 1.0' in metrics


async def test_a_database_outage_takes_the_service_out_of_rotation() -> None:
    async with client_of(app_with({"database": down}, {"broker": ok})) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "fail: ConnectionRefusedError"}


async def test_exclude_still_leaves_a_check_out() -> None:
    async with client_of(app_with({"database": ok, "upstreams": down}, {})) as client:
        response = await client.get("/readyz", params={"exclude": "upstreams"})
    assert response.status_code == 200
