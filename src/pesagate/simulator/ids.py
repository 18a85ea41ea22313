"""Identifier shapes of the current Daraja era (DARAJA.md, "Id shapes")."""

import random
import secrets
import string
from datetime import datetime

_UPPER_ALNUM = string.ascii_uppercase + string.digits
_DAY_LETTERS = "123456789ABCDEFGHIJKLMNOPQRSTUV"  # day 1..31


def checkout_request_id(now_nairobi: datetime, msisdn: str) -> str:
    """`ws_CO_` + DDMMYYYYHHmmss + milliseconds (1-3 digits) + the MSISDN without 254."""
    millis = now_nairobi.microsecond // 1000
    return f"ws_CO_{now_nairobi:%d%m%Y%H%M%S}{millis}{msisdn[3:]}"


def merchant_request_id(rng: random.Random) -> str:
    """`xxxx-xxxx-xxxx-xxxxxxxxxxxx` lower-case hex groups followed by 5-8 digits."""
    groups = [_hex(rng, 4), _hex(rng, 4), _hex(rng, 4), _hex(rng, 12)]
    digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(5, 8)))
    return "-".join(groups) + digits


def mpesa_receipt(rng: random.Random, now_nairobi: datetime) -> str:
    """Ten upper-case letters and digits: year letter (U = 2026), month letter, day character."""
    year_letter = string.ascii_uppercase[(now_nairobi.year - 2006) % 26]
    month_letter = string.ascii_uppercase[now_nairobi.month - 1]
    day_char = _DAY_LETTERS[now_nairobi.day - 1]
    tail = "".join(rng.choice(_UPPER_ALNUM) for _ in range(7))
    return f"{year_letter}{month_letter}{day_char}{tail}"


def request_id() -> str:
    """`requestId` of an error envelope. Not drawn from the seeded generator on purpose: error
    answers must not shift the reproducible sequence of transaction outcomes."""
    return merchant_request_id(random.Random(secrets.randbits(64)))


def access_token() -> str:
    """Access tokens are 28 letters and digits, unguessable."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28))


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))
