"""The checkout `signature`: a JWT (HS256) as KulmiPay's and IntaSend's, made and checked with
PyJWT. Its audience is the checkout id, its scope `express-checkout`, and it lives one hour
(the claims of a real IntaSend token: research/next-capabilities.md section 1.1).

It proves that a browser was handed the session by pesagate (the express page) or by the
merchant (the create answer): it opens that session's payment and status calls, and no other.
"""

import time
from typing import Any

import jwt

from pesagate.errors import AuthenticationFailed

SCOPE = "express-checkout"
ISSUER = "pesagate"
TTL_S = 3600
ALGORITHM = "HS256"
TOKEN_MAX = 2048  # far above a real token; bounds what is parsed


class BadSignature(AuthenticationFailed):
    default_detail = "Invalid checkout signature."


class SignatureExpired(AuthenticationFailed):
    default_detail = "The checkout signature has expired: reload the checkout page."


def sign(
    key: str,
    checkout_id: str,
    account_id: str,
    reference: str | None = None,
    now: float | None = None,
) -> str:
    """A signature for one checkout session; `reference`: the invoice it answers for, if any
    (the session itself otherwise)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "scope": SCOPE,
        "iss": ISSUER,
        "aud": [checkout_id],
        "iat": issued,
        "exp": issued + TTL_S,
        "accountID": account_id,
        "reference": reference or checkout_id,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"})


def verify(key: str, token: object, checkout_id: str) -> dict[str, Any]:
    """The claims of a valid, unexpired signature for this checkout, else 401."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX:
        raise BadSignature()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=checkout_id,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise SignatureExpired() from None
    except jwt.InvalidTokenError:
        raise BadSignature() from None
    if claims.get("scope") != SCOPE:
        raise BadSignature()
    return claims
