"""The command line, as a user runs it."""

import os
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.daraja import DarajaTestClient
from tests.fixtures.servers import SHARED_SSL_CONTEXT, free_port, wait_until

PESAGATE = [sys.executable, "-m", "pesagate"]


def test_help_lists_the_commands():
    result = subprocess.run([*PESAGATE, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "simulator"):
        assert command in result.stdout


@pytest.fixture
def simulator_process():
    port = free_port()
    process = subprocess.Popen(
        [
            *PESAGATE,
            "simulator",
            "--port",
            str(port),
            "--seed",
            "7",
            "--delay-s",
            "0",
            "--prompt-ttl-s",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PESAGATE_LOG_FORMAT": "json"},
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/control/faults", verify=SHARED_SSL_CONTEXT).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout_s=30, what="pesagate simulator to listen")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_pesagate_simulator_serves_daraja_with_its_flags(simulator_process, callback_receiver):
    client = DarajaTestClient(simulator_process)
    try:
        assert client.control("GET", "/faults")["seed"] == 7
        settings = client.control("GET", "/settings")
        assert (settings["delay_min_s"], settings["delay_max_s"]) == (0, 0)
        assert settings["prompt_ttl_s"] == 5
        assert "passkey" not in settings and "consumer_secret" not in settings
        response = client.push(phone="254712345678", CallBackURL=callback_receiver.url + "/cb")
        assert response.status_code == 200
        [request] = callback_receiver.wait_for("/cb")
        assert request.json()["Body"]["stkCallback"]["ResultCode"] == 0
    finally:
        client.close()
