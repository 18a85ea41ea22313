"""Daraja client libraries written for Safaricom work against the simulator unchanged."""

import pytest
from mpesa import MpesaClient
from mpesa.exceptions import MpesaError
from mpesa_connect import App, Authorization, STKPush

from pesagate.simulator.settings import SANDBOX_PASSKEY
from tests.fixtures.servers import wait_until


def test_daraja_v3_completes_a_push_and_a_query(sim, callback_receiver):
    client = MpesaClient(
        consumer_key="sim-consumer-key",
        consumer_secret="sim-consumer-secret",
        shortcode="174379",
        passkey=SANDBOX_PASSKEY,
        base_url=sim.base_url,
    )
    result = client.stk_push(
        phone="0712345678",
        amount=10,
        reference="INV-001",
        description="Test payment",
        callback_url=callback_receiver.url + "/cb",
    )
    assert result.checkout_request_id.startswith("ws_CO_")
    [request] = callback_receiver.wait_for("/cb")
    assert request.json()["Body"]["stkCallback"]["CheckoutRequestID"] == result.checkout_request_id
    status = client.stk_query(result.checkout_request_id)
    assert status.result_code == "0"
    assert status.is_paid


def test_daraja_v3_sees_daraja_errors(sim):
    client = MpesaClient(
        consumer_key="sim-consumer-key",
        consumer_secret="sim-consumer-secret",
        shortcode="174379",
        passkey=SANDBOX_PASSKEY,
        base_url=sim.base_url,
    )
    with pytest.raises(MpesaError) as raised:
        client.stk_push(
            phone="254700009004",
            amount=10,
            reference="INV-002",
            description="Test payment",
            callback_url="http://127.0.0.1:9/cb",
        )
    assert raised.value.code == "500.003.02"


def test_mpesa_connect_sends_numbers_and_completes_a_push_and_a_query(sim, callback_receiver):
    class LocalApp(App):  # the library's documented way to change hosts is its App object
        @property
        def base_url(self):
            return sim.base_url

    app = LocalApp(
        domain="sandbox", consumer_key="sim-consumer-key", consumer_secret="sim-consumer-secret"
    )
    token = Authorization(app).generate_token()
    stk = STKPush(app, access_token=token.access_token)
    result = stk.process_request(
        business_short_code=174379,
        amount=10,
        phone_number=254712345678,
        call_back_url=callback_receiver.url + "/cb",
        account_reference="INV-003",
        transaction_desc="Test payment",
        pass_key=SANDBOX_PASSKEY,
    )
    assert result.response_code == "0"
    callback_receiver.wait_for("/cb")
    query = wait_until(
        lambda: (
            (
                q := stk.query(
                    business_short_code=174379,
                    checkout_request_id=result.checkout_request_id,
                    pass_key=SANDBOX_PASSKEY,
                )
            ).result_code
            == "0"
            and q
        )
    )
    assert query.result_desc == "The service request is processed successfully."
