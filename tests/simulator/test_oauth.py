"""OAuth: Basic credentials checked, tokens expire, unknown tokens get 404 `404.001.03`."""

import re

from tests.fixtures.clock import ManualClock
from tests.fixtures.daraja import push_body

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9]{28}$")


def test_valid_credentials_get_a_28_character_token_with_string_expiry(sim):
    response = sim.http.get(
        "/oauth/v1/generate?grant_type=client_credentials",
        auth=("sim-consumer-key", "sim-consumer-secret"),
    )
    assert response.status_code == 200
    body = response.json()
    assert TOKEN_SHAPE.fullmatch(body["access_token"])
    assert body["expires_in"] == "3599"


def test_wrong_grant_type_is_400_008_02(sim):
    response = sim.http.get(
        "/oauth/v1/generate?grant_type=password", auth=("sim-consumer-key", "sim-consumer-secret")
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.008.02"
    assert response.json()["errorMessage"] == "Invalid grant type passed"


def test_missing_or_non_basic_authorization_is_400_008_01(sim):
    for headers in ({}, {"Authorization": "Bearer abc"}):
        response = sim.http.get("/oauth/v1/generate?grant_type=client_credentials", headers=headers)
        assert response.status_code == 400
        assert response.json()["errorCode"] == "400.008.01"
        assert response.json()["errorMessage"] == "Invalid authentication type passed"


def test_bad_credentials_answer_400_with_an_empty_body_by_default(sim):
    response = sim.http.get(
        "/oauth/v1/generate?grant_type=client_credentials", auth=("sim-consumer-key", "wrong")
    )
    assert response.status_code == 400
    assert response.content == b""


def test_bad_credentials_can_answer_with_an_envelope(make_sim):
    sim = make_sim(bad_credentials_shape="envelope")
    response = sim.http.get(
        "/oauth/v1/generate?grant_type=client_credentials", auth=("nobody", "wrong")
    )
    assert response.status_code == 400
    assert set(response.json()) == {"requestId", "errorCode", "errorMessage"}


def test_unknown_or_missing_token_is_404_001_03(sim):
    for headers in ({"Authorization": "Bearer not-a-token"}, {}):
        response = sim.http.post(
            "/mpesa/stkpush/v1/processrequest", json=push_body(), headers=headers
        )
        assert response.status_code == 404
        assert response.json()["errorCode"] == "404.001.03"
        assert response.json()["errorMessage"] == "Invalid Access Token"


def test_tokens_expire(make_sim):
    clock = ManualClock()
    sim = make_sim(clock=clock, token_ttl_s=60)
    assert sim.push(phone="254712000001").status_code == 200
    clock.advance(59)
    assert sim.push(phone="254712000002").status_code == 200
    clock.advance(1)
    response = sim.push(phone="254712000003")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"


def test_revoked_tokens_are_refused_and_a_new_token_works(sim):
    sim.token()
    assert sim.control("POST", "/tokens/revoke")["revoked"] == 1
    assert sim.push().status_code == 404
    sim._token = None
    assert sim.push().status_code == 200
