"""Free text that merchants send and that lands in their back offices (responses, webhooks,
exports, terminals).

The rule, for every free-text field: no character of the Unicode categories Cc (controls: NUL,
TAB, CR, LF, ESC, DEL, C1), Cf (format: the bidi embeddings, overrides and isolates U+202A-U+202E
and U+2066-U+2069, zero-width characters, the BOM, soft hyphens), Cs (lone surrogates), Zl and
Zp (U+2028 and U+2029, which JavaScript reads as line breaks). Everything else, in any script,
is accepted as sent.
"""

import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def first_refused_character(text: str) -> str | None:
    # isprintable() is false for every refused character (and for a few harmless ones, such as
    # no-break spaces), so the exact check only runs on the rare text that needs it.
    if text.isprintable():
        return None
    for char in text:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return char
    return None


def check_plain_text(text: str) -> str:
    """`text` itself, or a ValueError naming the first refused character."""
    char = first_refused_character(text)
    if char is not None:
        raise ValueError(
            "Control and formatting characters (line breaks, tabs, escapes, bidi controls) are "
            f"not allowed: found U+{ord(char):04X}."
        )
    return text
