"""The body of every service's Alembic `env.py`: one place that knows how we migrate.

    # migrations/env.py
    import auth_service.models  # noqa: F401  (registers the tables)
    from auth_service.settings import Settings
    from gatehouse_platform.migrations import run_migrations

    run_migrations(lambda: Settings().database_url)

The URL comes from `alembic -x url=...` when given, else from the service's settings (read only
then, so a migration job needs no other setting). The platform's own tables (`outbox`,
`processed_events`) are part of the metadata; a service that has no use for one names it in
`exclude_tables` so autogenerate neither creates nor drops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

import gatehouse_platform.models  # noqa: F401  (registers the platform's tables)
from gatehouse_platform.db import Base, make_engine


def run_migrations(default_url: Callable[[], str], *, exclude_tables: Collection[str] = ()) -> None:
    config = context.config
    if config.config_file_name is not None and config.attributes.get("configure_logger", True):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = context.get_x_argument(as_dictionary=True).get("url") or default_url()
    excluded = frozenset(exclude_tables)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) not in excluded

    options: dict[str, Any] = {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "include_object": include_object,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(online())
