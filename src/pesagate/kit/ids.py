"""Public identifiers: short, unguessable, upper-case letters and digits."""

import secrets
import string
import uuid

_UPPER_ALNUM = string.ascii_uppercase + string.digits


def random_code(length: int) -> str:
    """`length` characters, each uniform and independent: one uniform draw below
    36**length, written in base 36. One draw from the OS per code (`secrets.choice` per
    character made one each: ~40 us per ledger posting's id)."""
    number = secrets.randbelow(len(_UPPER_ALNUM) ** length)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_UPPER_ALNUM))
        chars.append(_UPPER_ALNUM[digit])
    return "".join(chars)


def invoice_id() -> str:
    """10 upper-case letters and digits, e.g. `GQ7KZ2XPNM`."""
    return random_code(10)


def wallet_id() -> str:
    """7 upper-case letters and digits."""
    return random_code(7)


def customer_id() -> str:
    return f"CUST_{random_code(6)}"


def business_id() -> str:
    return f"BIZ_{random_code(8)}"


def session_id() -> str:
    return str(uuid.uuid4())


def callback_token() -> str:
    """The unguessable path token of a callback URL (192 bits)."""
    return secrets.token_urlsafe(24)
