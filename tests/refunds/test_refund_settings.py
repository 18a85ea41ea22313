"""Live mode refuses to start with refunds on and no initiator or certificate; the `pesagate
refund` command drives a refund through the API."""

import pytest
from typer.testing import CliRunner

from pesagate.cli import app
from pesagate.config import Settings
from pesagate.simulator.security import SimulatorKeys
from tests.fixtures.settings import LIVE_SETTINGS
from tests.refunds.helpers import paid_invoice, start


def test_live_refunds_need_an_initiator_and_the_certificate(tmp_path):
    assert not Settings(**LIVE_SETTINGS).refunds_on  # off unless asked for
    with pytest.raises(ValueError) as refused:
        Settings(**LIVE_SETTINGS, refunds_enabled=True)
    message = str(refused.value)
    assert "PESAGATE_MPESA_INITIATOR is missing" in message
    assert "PESAGATE_MPESA_INITIATOR_PASSWORD is missing" in message
    assert "PESAGATE_MPESA_CERTIFICATE_PATH is required" in message
    initiator = {"mpesa_initiator": "ops-api", "mpesa_initiator_password": "S3cure!pass"}
    with pytest.raises(ValueError, match="no file at"):
        Settings(
            **LIVE_SETTINGS,
            refunds_enabled=True,
            **initiator,
            mpesa_certificate_path=f"{tmp_path}/none",
        )
    certificate = tmp_path / "ProductionCertificate.cer"
    certificate.write_bytes(SimulatorKeys().certificate_pem)
    settings = Settings(
        **LIVE_SETTINGS, refunds_enabled=True, **initiator, mpesa_certificate_path=str(certificate)
    )
    assert settings.refunds_on and settings.certificate() == certificate.read_bytes()


def test_refund_command(start_gateway):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712380001", 100)
    result = CliRunner().invoke(
        app,
        [
            "refund",
            invoice["invoice_id"],
            invoice["value"],
            "--reason",
            "Wrong service",
            "--url",
            gateway.url,
            "--secret-key",
            gateway.merchant.secret_key,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.output
    again = CliRunner().invoke(
        app,
        ["refund", invoice["invoice_id"], invoice["value"], "--url", gateway.url],
        env={"PESAGATE_SECRET_KEY": gateway.merchant.secret_key},
    )
    assert again.exit_code == 1
    assert "Nothing is left to refund" in again.output
