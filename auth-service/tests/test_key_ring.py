"""The key ring's cache: reloading the key set (every `key_cache_seconds`) costs one database read
for all the requests that find it stale at once, and parses only keys it has not seen — decrypting
and checking an RSA private key costs tens of milliseconds, which every sign-in waiting on a reload
would otherwise pay."""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.keys.service import KeyRing, rotate_keys
from auth_service.settings import Settings
from conftest import make_settings
from gatehouse_platform.db import make_engine, make_session_factory, session_scope


async def test_requests_finding_the_cache_stale_at_once_share_one_reload(
    settings: Settings, engine: AsyncEngine
) -> None:
    ring = KeyRing(settings.model_copy(update={"key_cache_seconds": 1}), make_session_factory(engine))
    first = await ring.current()
    await asyncio.sleep(1.1)  # stale now
    sets = await asyncio.gather(*(ring.current() for _ in range(8)))
    assert len({id(keys) for keys in sets}) == 1, "each waiting request reloaded the keys itself"
    assert sets[0] is not first and sets[0].loaded_at > first.loaded_at


async def test_a_reload_parses_only_keys_it_has_not_seen(own_database: str, amqp_url: str) -> None:
    settings = make_settings(own_database, amqp_url, key_cache_seconds=0)
    engine = make_engine(own_database, pool_size=1)
    sessions = make_session_factory(engine)
    ring = KeyRing(settings, sessions)
    before = await ring.current()
    again = await ring.refresh()
    assert again is not before
    assert again.signing_key is before.signing_key, "the unchanged signing key was parsed again"

    async with session_scope(sessions) as session:
        new = await rotate_keys(session, settings, publish_ahead_seconds=0)
    rotated = await ring.refresh()
    assert rotated.signing_kid == new.kid
    assert rotated.signing_key is not before.signing_key
    assert {before.signing_kid, new.kid} <= set(rotated.public_keys)
    await engine.dispose()


async def test_a_configured_key_is_parsed_once(settings: Settings, engine: AsyncEngine) -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    configured = settings.model_copy(update={"key_cache_seconds": 0, "signing_key_pem": pem.decode()})
    ring = KeyRing(configured, make_session_factory(engine))
    first = await ring.current()
    again = await ring.refresh()
    assert again.loaded_at > first.loaded_at
    assert again.signing_key is first.signing_key and again.signing_kid == first.signing_kid
