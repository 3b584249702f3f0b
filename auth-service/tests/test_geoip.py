"""The approximate place of an address (AUTH_GEOIP_DATABASE): in the audit trail and in the new
sign-in alert, read from a real MaxMind-format database written for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import netaddr
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from mmdb_writer import MMDBWriter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_audit import alerts_staged, my_events

from auth_service.geoip import Places
from auth_service.main import create_app
from auth_service.settings import Settings
from conftest import login, make_settings, register

Sessions = async_sessionmaker[AsyncSession]
LYON = "203.0.113.9"  # in a network the database knows to the city
GERMANY = "198.51.100.4"  # known to the country only
NOWHERE = "192.0.2.1"  # not in the database


@pytest.fixture(scope="module")
def geoip_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(
        netaddr.IPSet(["203.0.113.0/24"]),
        {
            "city": {"names": {"en": "Lyon", "fr": "Lyon"}},
            "country": {"iso_code": "FR", "names": {"en": "France"}},
        },
    )
    writer.insert_network(
        netaddr.IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "DE", "names": {"en": "Germany"}}}
    )
    path = tmp_path_factory.mktemp("geoip") / "city.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
async def placed_app(database_url: str, amqp_url: str, geoip_database: Path) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, amqp_url, geoip_database=geoip_database))
    async with LifespanManager(app):
        yield app


def client_at(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://auth.test")


def test_places_are_city_and_country_or_the_country_alone(geoip_database: Path) -> None:
    places = Places(geoip_database)
    try:
        assert places.of(LYON) == "Lyon, France"
        assert places.of(GERMANY) == "Germany"
        assert places.of(NOWHERE) is None
        assert places.of("not an address") is None
        assert places.of(None) is None
    finally:
        places.close()
    assert Places(None).of(LYON) is None  # no database, no place


def test_a_missing_database_file_is_refused_at_start(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="geoip_database"):
        make_settings(database_url, amqp_url, geoip_database=tmp_path / "absent.mmdb")
    assert Settings.model_fields["geoip_database"].default is None  # off unless configured


async def test_the_trail_and_the_new_sign_in_alert_name_the_place(placed_app: FastAPI, db: Sessions) -> None:
    async with client_at(placed_app, LYON) as lyon, client_at(placed_app, GERMANY) as germany:
        user = await register(lyon)
        await login(lyon, user["email"], **{"User-Agent": "Known/1"})
        tokens = await login(germany, user["email"], **{"User-Agent": "Known/1"})
        async with client_at(placed_app, NOWHERE) as nowhere:
            await login(nowhere, user["email"], **{"User-Agent": "Known/1"})
        entries = await my_events(germany, tokens, type="sign_in.succeeded")
    assert [(e["ip"], e["place"]) for e in reversed(entries)] == [
        (LYON, "Lyon, France"),
        (GERMANY, "Germany"),
        (NOWHERE, None),
    ]
    alerts = await alerts_staged(db, user["id"])
    assert [(a["data"]["ip"], a["data"]["place"]) for a in alerts] == [(GERMANY, "Germany"), (NOWHERE, None)]
