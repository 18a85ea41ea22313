"""Kenyan MSISDN helpers.

ASCII digits only: `\\d` and `str.isdigit` match every script's digits, and a phone stored in
Arabic-Indic or fullwidth digits never matches M-Pesa's ASCII callback or statement line.
"""

import re

# Safaricom lines: 2547XXXXXXXX and 2541XXXXXXXX, twelve digits in all.
SAFARICOM_MSISDN = re.compile(r"254[17][0-9]{8}", re.ASCII)


def is_safaricom_msisdn(value: str) -> bool:
    return bool(SAFARICOM_MSISDN.fullmatch(value))


def to_safaricom_msisdn(text: str) -> str | None:
    """`07…`, `01…`, `+254…`, `254…` -> `254XXXXXXXXX`; None if it is not a Safaricom line."""
    digits = text.removeprefix("+")
    if len(digits) == 10 and digits.startswith(("07", "01")):
        digits = "254" + digits[1:]
    return digits if is_safaricom_msisdn(digits) else None


def mask_msisdn(msisdn: str) -> str:
    """Keep enough of a phone number to correlate log lines, not enough to identify a person."""
    if len(msisdn) < 8:
        return "*" * len(msisdn)
    return f"{msisdn[:5]}***{msisdn[-4:]}"
