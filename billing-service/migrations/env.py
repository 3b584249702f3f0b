"""Alembic environment: the database URL comes from BILLING_DATABASE_URL (or -x url=...)."""

import billing_service.models  # noqa: F401  (registers the tables)
from billing_service.settings import Settings
from gatehouse_platform.migrations import run_migrations

run_migrations(lambda: Settings().database_url)
