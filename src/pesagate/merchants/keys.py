"""API key formats (SPEC section 1): `ISPubKey_test_…`, `ISSecretKey_live_…`."""

import hashlib
import secrets
from dataclasses import dataclass

from pesagate.models import Environment, KeyKind

_PREFIXES = {KeyKind.PUBLIC: "ISPubKey", KeyKind.SECRET: "ISSecretKey"}
_ENV_TAGS = {Environment.SANDBOX: "test", Environment.LIVE: "live"}


@dataclass(frozen=True, slots=True)
class KeyPair:
    environment: Environment
    public_key: str
    secret_key: str  # shown once, at creation; only its hash is stored


def new_key_pair(environment: Environment) -> KeyPair:
    tag = _ENV_TAGS[environment]
    return KeyPair(
        environment=environment,
        public_key=f"{_PREFIXES[KeyKind.PUBLIC]}_{tag}_{secrets.token_urlsafe(24)}",
        secret_key=f"{_PREFIXES[KeyKind.SECRET]}_{tag}_{secrets.token_urlsafe(32)}",
    )


def secret_lookup(secret_key: str) -> str:
    """What is stored for a secret key: its SHA-256. The key has 256 random bits, so a slow
    password hash would add cost without adding safety."""
    return hashlib.sha256(secret_key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:24]


def parse_key(key: str) -> tuple[KeyKind, Environment] | None:
    """The kind and environment a key claims by its prefix, or None for a malformed key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or not parts[2]:
        return None
    kinds = {prefix: kind for kind, prefix in _PREFIXES.items()}
    envs = {tag: env for env, tag in _ENV_TAGS.items()}
    kind, env = kinds.get(parts[0]), envs.get(parts[1])
    if kind is None or env is None:
        return None
    return kind, env
