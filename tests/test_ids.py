"""Public ids: upper-case letters and digits, every position uniform over all 36."""

import re

import pytest

from pesagate.kit import ids


@pytest.mark.parametrize("length", [1, 6, 10, 16])
def test_codes_have_their_length_and_alphabet(length):
    for _ in range(200):
        assert re.fullmatch(rf"[A-Z0-9]{{{length}}}", ids.random_code(length))


def test_every_position_takes_every_character():
    draws = [ids.random_code(10) for _ in range(3000)]
    for position in (0, 5, 9):
        seen = {code[position] for code in draws}
        assert len(seen) == 36, (position, sorted(seen))
