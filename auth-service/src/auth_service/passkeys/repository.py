"""Queries on passkeys."""

from __future__ import annotations

import uuid

from sqlalchemy import delete

from auth_service.models import Passkey
from gatehouse_platform.db import Repository


class PasskeyRepository(Repository[Passkey]):
    model = Passkey

    async def of_user(self, user_id: uuid.UUID) -> list[Passkey]:
        return await self.list_where(Passkey.user_id == user_id, order_by=[Passkey.created_at])

    async def own(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
        """The user's passkey with that id (locked); None for anyone else's."""
        return await self.lock(Passkey.id == passkey_id, Passkey.user_id == user_id)

    async def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        """Locked: two sign-ins with one credential take turns, so the sign counter holds."""
        return await self.lock(Passkey.credential_id == credential_id)

    async def remove_all(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(Passkey).where(Passkey.user_id == user_id))

    async def remove(self, passkey: Passkey) -> None:
        await self.session.delete(passkey)
