"""Create each named database on the local PostgreSQL if it does not exist yet."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

ADMIN_DSN = os.environ.get("GATEHOUSE_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def main(names: list[str]) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in names:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
