"""Kenyan MSISDN helpers."""

import re

# Safaricom lines: 2547XXXXXXXX and 2541XXXXXXXX, twelve digits in all.
SAFARICOM_MSISDN = re.compile(r"^254[17]\d{8}$")


def is_safaricom_msisdn(value: str) -> bool:
    return bool(SAFARICOM_MSISDN.fullmatch(value))


def mask_msisdn(msisdn: str) -> str:
    """Keep enough of a phone number to correlate log lines, not enough to identify a person."""
    if len(msisdn) < 8:
        return "*" * len(msisdn)
    return f"{msisdn[:5]}***{msisdn[-4:]}"
