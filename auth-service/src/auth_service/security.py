"""Password hashing and policy, and the opaque secrets we hand out (refresh tokens, links, codes)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from auth_service.errors import InvalidField
from auth_service.settings import Settings

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _lower_thread_priority(niceness: int) -> None:
    """Linux schedules threads individually, so a niceness set on the calling thread's id applies
    to that thread alone: hashing yields the CPU to the event loop (health checks, token refresh)
    and still takes every idle cycle."""
    if niceness and sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:  # a sandbox may forbid it; hashing still works at normal priority
            logger.warning("could not lower the priority of the Argon2 threads")


class PasswordHasher:
    """Argon2id on a dedicated pool of low-priority threads (argon2-cffi releases the GIL).

    The pool has one thread per core: more threads would only thrash memory (19 MiB per hash) and
    cache while the event loop waits behind them.
    """

    def __init__(self, settings: Settings) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))
        self._pool = ThreadPoolExecutor(
            max_workers=settings.argon2_threads or os.cpu_count() or 1,
            thread_name_prefix="argon2",
            initializer=_lower_thread_priority,
            initargs=(settings.argon2_thread_niceness,),
        )

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, secret: str) -> str:
        return await self._run(self._argon2.hash, secret)

    async def verify(self, hashed: str | None, secret: str) -> bool:
        """Constant work whether or not there is a hash: an unknown user costs one dummy hash too."""
        return await self._run(self._verify_sync, hashed, secret)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _verify_sync(self, hashed: str | None, secret: str) -> bool:
        try:
            return self._argon2.verify(hashed or self._dummy_hash, secret) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        return self._argon2.check_needs_rehash(hashed)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # imported at the first password checked, not at start: zxcvbn's lists are a large literal
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize_password(password: str) -> str:
    """NIST 800-63B: Unicode passwords are NFKC-normalized before hashing."""
    return unicodedata.normalize("NFKC", password)


def password_policy_problem(
    password: str, *, email: str | None = None, username: str | None = None
) -> str | None:
    """NIST 800-63B: 8–128 characters, no composition rules, not a commonly used or context word.
    What is wrong with `password` (already normalized), or None when it may be used."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Use at least {PASSWORD_MIN_LENGTH} characters."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Use at most {PASSWORD_MAX_LENGTH} characters."
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) == 1:
        return "This password is too common; choose another."
    context = {c.lower() for c in (username, email, email.split("@")[0] if email else None) if c}
    if lowered in context:
        return "The password must not be your username or email."
    return None


def check_password_policy(password: str, *, email: str | None = None, username: str | None = None) -> None:
    """`password_policy_problem` as a 422 on the `password` field."""
    problem = password_policy_problem(password, email=email, username=username)
    if problem is not None:
        raise InvalidField("password", problem)


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """High-entropy tokens are stored as SHA-256: enough against a stolen table, and indexable."""
    return hashlib.sha256(token.encode()).digest()


def derive_successor(secret: str, session_id: str, token: str) -> str:
    """The refresh token that replaces `token`, computed rather than stored: presenting the same
    token twice within the grace period yields the same successor without keeping it in plain text."""
    mac = hmac.new(secret.encode(), f"{session_id}:{token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


API_KEY_ID_CHARS = 12  # hex: the public id part, 48 bits, unique per key


def new_api_key(prefix: str) -> tuple[str, str]:
    """(its public start, the whole key): `<prefix><12 hex>_<256 random bits, base64url>`. The
    fixed prefix lets secret scanners find leaked keys; the id part finds the row."""
    public = f"{prefix}{secrets.token_hex(API_KEY_ID_CHARS // 2)}"
    return public, f"{public}_{secrets.token_urlsafe(32)}"


def api_key_digest(pepper: str, key: str) -> bytes:
    """A keyed hash (HMAC-SHA-256 under AUTH_API_KEY_PEPPER): a key carries 256 random bits, so a
    slow hash adds nothing against guessing, and a stolen table without the pepper yields nothing;
    checking a key costs microseconds, not an Argon2 run per request."""
    return hmac.new(pepper.encode(), f"api-key:{key}".encode(), hashlib.sha256).digest()


def new_login_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def new_recovery_code() -> str:
    """Twelve characters of a 31-letter alphabet (~59 bits), shown as `xxxx-xxxx-xxxx`."""
    chars = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def recovery_code_digest(secret: str, user_id: str, code: str) -> bytes:
    """A keyed hash (HMAC-SHA256 under the server's token secret, bound to the user): the codes are
    random and long enough that a slow hash adds nothing against guessing, a stolen table without
    the key yields nothing, and a sign-in checks a code with one indexed lookup instead of up to ten
    Argon2 verifications."""
    normalized = "".join(code.lower().split()).replace("-", "")
    return hmac.new(
        secret.encode(), f"recovery-code:{user_id}:{normalized}".encode(), hashlib.sha256
    ).digest()
