"""Request authentication (SPEC section 1): a secret key as a Bearer token, or a public key in
one of the headers the SDKs send (`X-KULMI-PUBLIC-API-KEY`, `X-IntaSend-Public-API-Key`,
`INTASEND_PUBLIC_API_KEY`) or the body's `public_key`. A valid secret key wins."""

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.dependencies import app_db, app_settings, get_json_body
from pesagate.errors import AuthenticationFailed, NotAuthenticated, PermissionDenied
from pesagate.merchants import service
from pesagate.merchants.keys import parse_key, secret_lookup
from pesagate.models import Environment, KeyKind

PUBLIC_KEY_HEADER = "x-kulmi-public-api-key"
# kulmipay; IntaSend's docs and intasend-rs; intasend-python and intasend-node (underscores:
# nginx drops them unless `underscores_in_headers on`, README "Deployment").
PUBLIC_KEY_HEADERS = (PUBLIC_KEY_HEADER, "x-intasend-public-api-key", "intasend_public_api_key")
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

    def forget_business(self, business_pk: int) -> None:
        """After a rotation here: this node stops accepting the old keys at once."""
        for lookup, (_, principal) in list(self._entries.items()):
            if principal is not None and principal.business_pk == business_pk:
                self._entries.pop(lookup, None)

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
    key = await service.api_key(db, lookup)
    principal = None
    # The query matched on an index; compare again in constant time before trusting it.
    if (
        key is not None
        and key.revoked_at is None
        and key.kind == kind
        and hmac.compare_digest(key.lookup.encode(), lookup.encode())
    ):
        principal = Principal(key.business_id, key.environment, kind, lookup)
    cache.put(lookup, principal)
    return principal


def _check_environment(claimed: Environment, server: Environment) -> None:
    if claimed != server:
        raise AuthenticationFailed(f"Invalid token for {server.value} environment")


async def _authenticate(
    request: Request, db: Database, server_env: Environment, *, body_key_allowed: bool
) -> Principal:
    """Headers first, so a missing or wrong key is refused before the body is read (a client
    trickling a body cannot hold a connection without a key). The body is read only to look
    for `public_key` when no header names a key, and only where a public key is accepted."""
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
    public_key = next(
        (request.headers[name] for name in PUBLIC_KEY_HEADERS if request.headers.get(name)), None
    )
    if not public_key and not authorization and body_key_allowed:
        public_key = (await get_json_body(request)).get("public_key")
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


async def secret_key_auth(request: Request) -> Principal:
    """Endpoints that need the secret key (always in the Authorization header): a valid public
    key alone is a 403."""
    env = Environment(app_settings(request).env)
    principal = await _authenticate(request, app_db(request), env, body_key_allowed=False)
    if principal.via is not KeyKind.SECRET:
        raise PermissionDenied()
    return await _limited(request, principal)


async def any_key_auth(request: Request) -> Principal:
    """Endpoints open to client-side callers: the secret key, or the public key (in its header
    or the body's `public_key`)."""
    env = Environment(app_settings(request).env)
    principal = await _authenticate(request, app_db(request), env, body_key_allowed=True)
    return await _limited(request, principal)


async def public_key_principal(
    request: Request, db: Database, settings: Settings, public_key: object
) -> Principal:
    """A public key given elsewhere than in a header or body (the inline script's iframe URL
    carries it as a query parameter, as IntaSend's does)."""
    if not isinstance(public_key, str) or not public_key:
        raise NotAuthenticated()
    parsed = parse_key(public_key)
    if parsed is None or parsed[0] is not KeyKind.PUBLIC:
        raise AuthenticationFailed()
    _check_environment(parsed[1], Environment(settings.env))
    cache: KeyCache = request.app.state.key_cache
    principal = await _principal_for(db, cache, public_key, KeyKind.PUBLIC)
    if principal is None:
        raise AuthenticationFailed()
    return await _limited(request, principal)


class SecretKeyRefused(PermissionDenied):
    default_detail = (
        "This endpoint takes your public key: a secret key must never be used where a "
        "browser sees the request."
    )


async def public_key_auth(request: Request) -> Principal:
    """Endpoints made for browsers (checkout sessions): the public key only; a secret key is
    refused, so that a merchant who put it in a page learns at once."""
    env = Environment(app_settings(request).env)
    principal = await _authenticate(request, app_db(request), env, body_key_allowed=True)
    if principal.via is not KeyKind.PUBLIC:
        raise SecretKeyRefused()
    return await _limited(request, principal)


SecretKeyAuth = Annotated[Principal, Depends(secret_key_auth)]
AnyKeyAuth = Annotated[Principal, Depends(any_key_auth)]
PublicKeyAuth = Annotated[Principal, Depends(public_key_auth)]
