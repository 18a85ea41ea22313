"""Identifier shapes of the current Daraja era."""

import random
import re
from datetime import datetime, timedelta, timezone

from pesagate.simulator import ids
from tests.fixtures.servers import wait_until

NAIROBI = timezone(timedelta(hours=3))
CHECKOUT = re.compile(r"^ws_CO_(\d{2})(\d{2})(\d{4})(\d{6})(\d{1,3})(\d{9})$")
MERCHANT_REQUEST = re.compile(r"^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{5,8}$")
RECEIPT = re.compile(r"^[A-Z0-9]{10}$")


def test_ids_of_an_accepted_push_and_its_receipt(sim):
    before = datetime.now(NAIROBI)
    body = sim.push(phone="254712345678").json()
    match = CHECKOUT.fullmatch(body["CheckoutRequestID"])
    assert match, body["CheckoutRequestID"]
    day, month, year, _hms, _fraction, msisdn9 = match.groups()
    assert (int(day), int(month), int(year)) == (before.day, before.month, before.year)
    assert msisdn9 == "712345678"
    assert MERCHANT_REQUEST.fullmatch(body["MerchantRequestID"])
    tx = wait_until(lambda: (t := sim.transaction(body["CheckoutRequestID"]))["receipt"] and t)
    assert RECEIPT.fullmatch(tx["receipt"])


def test_receipt_letters_encode_year_month_and_day():
    rng = random.Random(1)
    assert ids.mpesa_receipt(rng, datetime(2026, 11, 28, tzinfo=NAIROBI))[:3] == "UKS"
    assert ids.mpesa_receipt(rng, datetime(2026, 1, 1, tzinfo=NAIROBI))[:3] == "UA1"
    assert ids.mpesa_receipt(rng, datetime(2026, 12, 31, tzinfo=NAIROBI))[:3] == "ULV"
    assert ids.mpesa_receipt(rng, datetime(2027, 3, 10, tzinfo=NAIROBI))[:3] == "VCA"


def test_checkout_ids_stay_unique_for_one_phone_within_a_millisecond(make_sim):
    sim = make_sim()
    seen = set()
    for _ in range(5):
        checkout_id = sim.push(phone="254712345679").json()["CheckoutRequestID"]
        assert checkout_id not in seen
        seen.add(checkout_id)
        wait_until(lambda cid=checkout_id: sim.transaction(cid)["state"] == "FINAL")
