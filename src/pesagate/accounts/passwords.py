"""Password hashing: argon2id through argon2-cffi (its RFC 9106 low-memory profile).

A hash carries its own parameters, so it verifies under any profile. `minimal` is for test
suites only (a hash costs ~0.2 CPU-seconds with the real profile, and the dashboard's tests
make hundreds); live refuses to start with it (config.py).
"""

from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; bound the work one request can ask for
Profile = Literal["rfc9106-low-memory", "minimal"]
_PROFILES: dict[Profile, PasswordHasher] = {
    "rfc9106-low-memory": PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY),
    "minimal": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}
_hasher = _PROFILES["rfc9106-low-memory"]


def use(profile: Profile) -> None:
    """Hash new passwords (and the decoy) with this profile from now on, in this process."""
    global _hasher
    if _PROFILES[profile] is not _hasher:
        _hasher = _PROFILES[profile]
        _decoy.cache_clear()


def prepare() -> None:
    """Made before the first sign-in (at the app's start), so that the first unknown email
    costs no more than a known one either."""
    _decoy()


@cache
def _decoy() -> str:
    """Verified against when the email is unknown, so that an unknown email costs as long as a
    known one (no account enumeration by timing). Made on first use: a hash costs as much as
    a sign-in, which no process should pay at import (every CLI command would)."""
    return _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _decoy(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"A password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"A password has at most {MAX_LENGTH} characters."
    return None
