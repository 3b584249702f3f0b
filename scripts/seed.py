"""Seed a local system for `make run`: the admin account (and, as services arrive, demo data).

The admin comes from SEED_ADMIN_EMAIL / SEED_ADMIN_PASSWORD. With no password given, one is
generated once, kept in var/seed-admin-password (readable by you alone) and reused on later runs,
so the credentials printed stay true.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD_FILE = ROOT / "var" / "seed-admin-password"


def admin_password() -> str:
    if given := os.environ.get("SEED_ADMIN_PASSWORD"):
        return given
    if PASSWORD_FILE.exists():
        return PASSWORD_FILE.read_text().strip()
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    PASSWORD_FILE.touch(mode=0o600)
    PASSWORD_FILE.write_text(password + "\n")
    return password


def main() -> None:
    email = os.environ.get("SEED_ADMIN_EMAIL", "admin@gatehouse.example")
    password = admin_password()
    subprocess.run(  # noqa: S603 - our own CLI, no shell
        [sys.executable, "-m", "auth_service.cli", "create-admin", email],
        env={**os.environ, "AUTH_ADMIN_PASSWORD": password},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"  admin sign-in:  {email} / {password}")


if __name__ == "__main__":
    main()
