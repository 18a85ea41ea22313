"""The parsing rules every entry point shares (kit/money.py, kit/phones.py, kit/text.py) and
the fee rules (merchants/fees.py): bounded ASCII numbers, Safaricom numbers in ASCII digits, free
text without control or formatting characters, fees below every amount."""

from decimal import Decimal

import pytest

from pesagate.kit.money import (
    AmountError,
    parse_amount,
    parse_amount_to_minor,
    parse_amount_to_whole_units,
    rate_to_ppm,
)
from pesagate.kit.phones import is_safaricom_msisdn, to_safaricom_msisdn
from pesagate.kit.text import check_plain_text
from pesagate.merchants.fees import amount_error, quote
from pesagate.merchants.service import PaymentSettingsUpdate, apply_settings
from pesagate.models import Business, Tariff
from tests.fixtures.digits import arabic_indic, fullwidth

# Forms that Decimal() or int() accept but that are not plain ASCII decimals, and forms whose
# conversion to an integer costs seconds of CPU or fails deep inside arithmetic.
REFUSED_AMOUNTS = [
    arabic_indic("100"),  # Arabic-Indic digits
    fullwidth("100"),  # fullwidth digits
    "1_000",
    "+100",
    "-100",
    " 100",
    "100 ",
    "1 000",
    "1e3",
    ".5",
    "1.",
    "1e2000000",
    "1e4300",
    "1E+200000",
    "9" * 50_000,
    "0." + "0" * 50_000 + "1",
    "0" * 33 + "1",
    "Infinity",
    "NaN",
    "0x10",
    "",
    float("inf"),
    float("nan"),
    True,
    None,
    [100],
]


@pytest.mark.parametrize("raw", REFUSED_AMOUNTS, ids=lambda raw: repr(raw)[:20])
def test_amounts_outside_the_plain_bounded_form_are_refused(raw):
    for parse in (parse_amount, parse_amount_to_minor, parse_amount_to_whole_units):
        with pytest.raises(AmountError, match="A valid number is required"):
            parse(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (-5, "greater than 0"),
        (0, "greater than 0"),
        ("0.00", "greater than 0"),
        (1e308, "less than or equal to 999999999.99"),
        (10**400, "less than or equal to 999999999.99"),
        (-(10**400), "greater than 0"),
        ("1000000000", "less than or equal to 999999999.99"),
        ("10.005", "no more than 2 decimal places"),
        (10.005, "no more than 2 decimal places"),
        (1e-300, "no more than 2 decimal places"),
    ],
)
def test_amounts_out_of_range_say_which_bound(raw, message):
    with pytest.raises(AmountError, match=message):
        parse_amount(raw)


def test_plain_amounts_keep_their_meaning():
    assert parse_amount_to_whole_units("1499.01") == 1500
    assert parse_amount_to_whole_units("0100") == 100
    assert parse_amount_to_whole_units(100.0) == 100
    assert parse_amount_to_whole_units(0.5) == 1
    assert parse_amount_to_minor("10.5") == 1050
    assert parse_amount_to_minor(Decimal("10.50")) == 1050
    assert parse_amount_to_minor("0", allow_zero=True) == 0
    assert parse_amount("999999999.99") == Decimal("999999999.99")


def test_fee_rates_are_plain_ascii_decimals():
    assert rate_to_ppm("0.022") == 22_000
    assert rate_to_ppm(0.03) == 30_000
    for raw in (
        arabic_indic("0") + "." + arabic_indic("02"),
        "0.0_2",
        "1e-2",
        "-0.01",
        "1e-99999999",
        "1",
    ):
        with pytest.raises(ValueError):
            rate_to_ppm(raw)


def test_phone_numbers_take_ascii_digits_only():
    assert to_safaricom_msisdn("0712345678") == "254712345678"
    assert to_safaricom_msisdn("+254112345678") == "254112345678"
    for raw in (
        "2547" + arabic_indic("12345678"),
        "07" + fullwidth("12345678"),
        "+2547" + fullwidth("1") + "2345678",
        "0" + arabic_indic("7") + "12345678",
    ):
        assert to_safaricom_msisdn(raw) is None
        assert not is_safaricom_msisdn(raw)


@pytest.mark.parametrize(
    "text",
    [
        "a\r\nb",
        "tab\there",
        "\x1b[31mred",
        "del\x7f",
        "c1\x85",
        "\u202egnp.exe",
        "x\u2066y",
        "zero\u200bwidth",
        "\ufeffbom",
        "line\u2028sep",
        "lone\ud800",
    ],
    ids=lambda text: repr(text),
)
def test_control_and_formatting_characters_are_refused(text):
    with pytest.raises(ValueError, match=r"not allowed: found U\+"):
        check_plain_text(text)


def test_other_scripts_and_symbols_are_accepted():
    for text in (
        "Wanjikũ Mũthoni",
        "Zoë",
        "محمد",
        "王芳",
        "order #12 😀",
        "a\u00a0b",
        arabic_indic("123"),
    ):
        assert check_plain_text(text) == text


def business(**settings):
    defaults = {
        "fee_rate_ppm": 22_000,
        "fee_min_minor": 0,
        "min_amount_minor": 1_000,
        "max_amount_minor": 15_000_000,
        "default_tariff": None,
    }
    return Business(name="Shop", short_name="Shop", **{**defaults, **settings})


def test_settings_where_the_fee_can_reach_the_amount_are_refused():
    shop = business()
    with pytest.raises(ValueError, match="fee on the smallest payment"):
        apply_settings(shop, PaymentSettingsUpdate(fee_min_minor=5_000, min_amount_minor=1_000))
    with pytest.raises(ValueError, match="fee on the smallest payment"):
        apply_settings(business(min_amount_minor=0), PaymentSettingsUpdate(fee_min_minor=100))
    with pytest.raises(ValueError, match="fee on the smallest payment"):
        apply_settings(business(min_amount_minor=100), PaymentSettingsUpdate(fee_rate_ppm=999_999))
    shop = business()
    apply_settings(shop, PaymentSettingsUpdate(fee_min_minor=999, min_amount_minor=1_000))
    assert (shop.fee_min_minor, shop.min_amount_minor) == (999, 1_000)


@pytest.mark.parametrize("tariff", list(Tariff))
def test_a_payment_whose_fee_reaches_its_amount_is_refused(tariff):
    # Settings stored before the rule existed (or written to the database by hand).
    shop = business(fee_min_minor=5_000, min_amount_minor=1_000)
    assert "greater than its fee (50)" in amount_error(quote(10, tariff, shop), shop)
    assert "greater than its fee (50)" in amount_error(quote(50, tariff, shop), shop)
    assert amount_error(quote(51, tariff, shop), shop) is None


def test_limits_apply_to_the_merchants_amount_whatever_the_tariff():
    shop = business()
    assert amount_error(quote(9, Tariff.CUSTOMER_PAYS, shop), shop) == (
        "Ensure this value is at least 10."
    )
    assert amount_error(quote(150_001, Tariff.CUSTOMER_PAYS, shop), shop) == (
        "Ensure this value is at most 150000."
    )
    # What the customer is prompted for lies within the limits too.
    assert amount_error(quote(149_000, Tariff.CUSTOMER_PAYS, shop), shop) == (
        "Ensure this value is at most 150000."
    )
    assert amount_error(quote(149_000, Tariff.BUSINESS_PAYS, shop), shop) is None
    shop = business(max_amount_minor=30_000_000)
    assert amount_error(quote(250_001, Tariff.BUSINESS_PAYS, shop), shop) == (
        "Ensure this value is at most 250000."
    )
