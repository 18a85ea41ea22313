"""Simulator settings: `PESAGATE_SIM_*` variables, overridable by `pesagate simulator` flags.

The defaults agree with the gateway's sandbox defaults, so `pesagate serve` works unconfigured.
"""

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pesagate.kit.sandbox import SANDBOX_INITIATOR, SANDBOX_INITIATOR_PASSWORD
from pesagate.mpesa.protocol import SANDBOX_PASSKEY

__all__ = ["SANDBOX_PASSKEY", "SimulatorSettings"]


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PESAGATE_SIM_", extra="ignore")

    consumer_key: str = "sim-consumer-key"
    consumer_secret: str = "sim-consumer-secret"
    token_ttl_s: float = Field(3599, gt=0)

    # A paybill takes CustomerPayBillOnline with PartyB = the shortcode; a buy-goods store takes
    # CustomerBuyGoodsOnline with PartyB = its till number. Both use the same passkey.
    paybill_shortcode: str = "174379"
    buygoods_shortcode: str = "174380"
    till_number: str = "174381"
    passkey: str = SANDBOX_PASSKEY

    seed: int | None = None
    delay_min_s: float = Field(1.0, ge=0)
    delay_max_s: float = Field(3.0, ge=0)
    prompt_ttl_s: float = Field(60.0, gt=0)
    late_callback_s: float = Field(90.0, ge=0, description="when a late callback is sent")
    pin: str = "1234"
    default_balance_kes: int = Field(100_000, ge=0)
    rule_17: bool = Field(False, description="same amount, same phone within 2 min -> 17")
    rule_17_window_s: float = 120.0

    query_pending_shape: Literal["http500", "4999"] = "http500"
    bad_credentials_shape: Literal["empty", "envelope"] = "empty"
    callback_timeout_s: float = Field(10.0, gt=0)
    callback_max_connections: int = Field(64, gt=0)
    statement_page_size: int = Field(100, gt=0, description="Pull Transactions rows per page")
    organization_name: str = "pesagate simulator"  # `organizationname` of statement lines
    # Reversal and Transaction Status (simulator/initiator.py)
    initiator_name: str = SANDBOX_INITIATOR
    initiator_password: str = SANDBOX_INITIATOR_PASSWORD
    credential_lock_after: int = Field(3, ge=1, description="2001s in a row before 8006")
    initiator_result_delay_s: float = Field(0.5, ge=0, description="before a Result is sent")
    initiator_late_s: float = Field(30.0, ge=0, description="when a late Result is sent")
    initiator_result_code: Literal["number", "string"] = Field(
        "number", description="numeric ResultCodes as JSON numbers, or every code as a string"
    )
    initiator_single_parameter: bool = Field(
        False, description="ResultParameter as one object (the first) instead of a list"
    )
    control_token: str | None = Field(
        None, description="bearer token for the control API from other hosts; loopback needs none"
    )

    @model_validator(mode="after")
    def _delay_range_ordered(self) -> "SimulatorSettings":
        if self.delay_max_s < self.delay_min_s:
            raise ValueError("delay_max_s must be >= delay_min_s")
        return self

    def with_delay(self, spec: str) -> "SimulatorSettings":
        """Apply a `--delay-s` value: one number (`0`) or a range (`1-3`)."""
        low, _, high = spec.partition("-")
        low_s = float(low)
        high_s = float(high) if high else low_s
        # Constructor arguments win over the environment and are validated like any other.
        return type(self)(**{**self.model_dump(), "delay_min_s": low_s, "delay_max_s": high_s})
