"""Alembic environment: the database URL comes from AUTH_DATABASE_URL (or -x url=...)."""

import auth_service.models  # noqa: F401  (registers the tables)
from auth_service.settings import Settings
from gatehouse_platform.migrations import run_migrations

run_migrations(lambda: Settings().database_url)
