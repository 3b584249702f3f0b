"""Signing-key rotation by the CLI signs nobody out: the new key is in the JWKS before any token
carries its kid, so a remote verifier (billing, the gateway) that fetched the JWKS just before
the rotation accepts the new tokens; tokens signed with the old key stay valid until they expire,
and the old key leaves the JWKS after that."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import httpx
import jwt
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from auth_service.main import create_app
from auth_service.models import SigningKey
from conftest import login, make_settings, sign_up
from gatehouse_platform.db import make_engine, make_session_factory, session_scope, utcnow
from gatehouse_platform.jwks import JWKSVerifier
from gatehouse_platform.testing import eventually

# Production: 120 s. What matters is that it exceeds the verifier's refetch spacing, and that it
# outlasts starting the CLI and the first login after it on a busy machine (1.5 s did not, under
# a loaded parallel suite: the new key was already signing when the test looked).
PUBLISH_AHEAD = 6.0
VERIFIER_REFETCH_SPACING = 1.0  # production: 30 s


def kid_of(tokens: dict[str, str]) -> str:
    return str(jwt.get_unverified_header(tokens["access_token"])["kid"])


async def test_rotation_publishes_the_new_key_before_it_signs_and_signs_nobody_out(
    own_database: str, amqp_url: str
) -> None:
    settings = make_settings(own_database, amqp_url, key_cache_seconds=0)
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        jwks_url = "http://auth.test/auth/.well-known/jwks.json"

        async def published() -> set[str]:
            return {key["kid"] for key in (await client.get(jwks_url)).json()["keys"]}

        email = await sign_up(client)
        before = await login(client, email)
        old_kid = kid_of(before)
        verifier = JWKSVerifier(
            jwks_url,
            issuer=settings.issuer,
            audience=settings.audience,
            client=client,
            min_refetch_interval=VERIFIER_REFETCH_SPACING,
        )
        await verifier.verify(before["access_token"])  # it has just fetched the JWKS

        env = {**os.environ, "AUTH_DATABASE_URL": own_database, "AUTH_ENVIRONMENT": "test"}
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "auth_service.cli",
            "rotate-keys",
            "--publish-ahead",
            str(PUBLISH_AHEAD),
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await cli.communicate()
        assert cli.returncode == 0
        new_kid = output.decode().split()[3].rstrip(":")

        assert await published() == {old_kid, new_kid}  # published at once...
        assert kid_of(await login(client, email)) == old_kid  # ...but not signing yet

        async def signed_with_the_new_key() -> dict[str, str] | None:
            tokens = await login(client, email)
            return tokens if kid_of(tokens) == new_kid else None

        after = await eventually(signed_with_the_new_key, "the new key to sign", within=PUBLISH_AHEAD + 10)
        assert (await verifier.verify(after["access_token"])).sub  # the remote verifier fetches it
        assert (await verifier.verify(before["access_token"])).sub  # old tokens still pass there...
        me = await client.get("/auth/me", headers={"Authorization": f"Bearer {before['access_token']}"})
        assert me.status_code == 200  # ...and here
        refreshed = await client.post("/auth/refresh-token", json={"refresh_token": before["refresh_token"]})
        assert refreshed.status_code == 200 and kid_of(refreshed.json()) == new_kid

        # Once every token the old key signed has expired, it leaves the JWKS.
        engine = make_engine(own_database, pool_size=1)
        try:
            long_ago = utcnow() - timedelta(seconds=settings.access_token_ttl_seconds, minutes=6)
            async with session_scope(make_session_factory(engine)) as session:
                await session.execute(
                    update(SigningKey).where(SigningKey.kid == old_kid).values(retired_at=long_ago)
                )
        finally:
            await engine.dispose()
        assert await published() == {new_kid}
