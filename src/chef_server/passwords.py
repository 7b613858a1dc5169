"""User passwords: argon2id hashes (argon2-cffi)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def _check(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# argon2 is deliberately slow: both run in a thread, off the event loop.
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def check_password(hashed: str | None, password: str) -> bool:
    return bool(hashed) and await asyncio.to_thread(_check, hashed, password)
