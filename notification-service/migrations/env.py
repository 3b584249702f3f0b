"""Alembic environment: the database URL comes from NOTIFICATION_DATABASE_URL (or -x url=...)."""

import notification_service.models  # noqa: F401  (registers the tables)
from gatehouse_platform.migrations import run_migrations
from notification_service.settings import Settings

# notification-service publishes nothing: the platform's outbox table is not ours.
run_migrations(lambda: Settings().database_url, exclude_tables={"outbox"})
