"""Request authentication (SPEC section 1): a secret key as a Bearer token, or a public key in
the `X-KULMI-PUBLIC-API-KEY` header or the body's `public_key`. A valid secret key wins."""

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from pesagate.db import Database
from pesagate.dependencies import DbDep, JsonBody, SettingsDep
from pesagate.errors import AuthenticationFailed, NotAuthenticated, PermissionDenied
from pesagate.merchants.keys import parse_key, secret_lookup
from pesagate.models import ApiKey, Environment, KeyKind

PUBLIC_KEY_HEADER = "x-kulmi-public-api-key"
CACHE_TTL_S = 10.0  # a revoked key stops working on every node within this time
CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a business, through one of its keys."""

    business_pk: int
    environment: Environment
    via: KeyKind
    key_lookup: str  # the public key, or the secret key's hash (for rate limits and logs)


class KeyCache:
    """A short-lived memory of key lookups, so the hot paths skip one query per request."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, lookup: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(lookup)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, lookup: str, principal: Principal | None) -> None:
        if len(self._entries) >= CACHE_MAX:
            self._entries.clear()
        self._entries[lookup] = (time.monotonic() + CACHE_TTL_S, principal)


async def _principal_for(
    db: Database, cache: KeyCache, lookup: str, kind: KeyKind
) -> Principal | None:
    hit, principal = cache.get(lookup)
    if hit:
        return principal
    async with db.read() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.lookup == lookup))
    principal = None
    # The query matched on an index; compare again in constant time before trusting it.
    if (
        key is not None
        and key.revoked_at is None
        and key.kind == kind
        and hmac.compare_digest(key.lookup.encode(), lookup.encode())
    ):
        principal = Principal(key.business_id, Environment(key.environment), kind, lookup)
    cache.put(lookup, principal)
    return principal


def _check_environment(claimed: Environment, server: Environment) -> None:
    if claimed != server:
        raise AuthenticationFailed(f"Invalid token for {server.value} environment")


async def _authenticate(
    request: Request, db: Database, server_env: Environment, body_public_key: object
) -> Principal:
    cache: KeyCache = request.app.state.key_cache
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        parsed = parse_key(token)
        if parsed is None or parsed[0] is not KeyKind.SECRET:
            raise AuthenticationFailed()
        _check_environment(parsed[1], server_env)
        principal = await _principal_for(db, cache, secret_lookup(token), KeyKind.SECRET)
        if principal is None:
            raise AuthenticationFailed()
        return principal
    public_key = request.headers.get(PUBLIC_KEY_HEADER) or body_public_key
    if isinstance(public_key, str) and public_key:
        parsed = parse_key(public_key)
        if parsed is None or parsed[0] is not KeyKind.PUBLIC:
            raise AuthenticationFailed()
        _check_environment(parsed[1], server_env)
        principal = await _principal_for(db, cache, public_key, KeyKind.PUBLIC)
        if principal is None:
            raise AuthenticationFailed()
        return principal
    if authorization:
        raise AuthenticationFailed()
    raise NotAuthenticated()


async def _limited(request: Request, principal: Principal) -> Principal:
    await request.app.state.services.rate_limiter.check(principal.key_lookup)
    return principal


async def secret_key_auth(
    request: Request, db: DbDep, settings: SettingsDep, body: JsonBody
) -> Principal:
    """Endpoints that need the secret key: a valid public key alone is a 403."""
    principal = await _authenticate(request, db, Environment(settings.env), body.get("public_key"))
    if principal.via is not KeyKind.SECRET:
        raise PermissionDenied()
    return await _limited(request, principal)


async def any_key_auth(
    request: Request, db: DbDep, settings: SettingsDep, body: JsonBody
) -> Principal:
    """Endpoints open to client-side callers: the secret key, or the public key."""
    principal = await _authenticate(request, db, Environment(settings.env), body.get("public_key"))
    return await _limited(request, principal)


SecretKeyAuth = Annotated[Principal, Depends(secret_key_auth)]
AnyKeyAuth = Annotated[Principal, Depends(any_key_auth)]
