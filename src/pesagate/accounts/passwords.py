"""Password hashing: argon2id through argon2-cffi (its RFC 9106 low-memory profile)."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; bound the work one request can ask for
_hasher = PasswordHasher()


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
