"""Gateway settings (`PESAGATE_*`, SPEC section 8). CLI flags may override them.

In sandbox every Daraja setting defaults to the embedded simulator's, so the gateway runs with
no configuration. Live mode fails closed: it refuses to start on missing or placeholder values.
"""

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Literal
from urllib.parse import urlsplit

from limits import parse
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pesagate.kit.logs import LogFormat
from pesagate.mpesa.protocol import SANDBOX_PASSKEY

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./pesagate.db"
SANDBOX_CONSUMER_KEY = "sim-consumer-key"
SANDBOX_CONSUMER_SECRET = "sim-consumer-secret"
SANDBOX_SHORTCODE = "174379"
LIVE_DARAJA_URL = "https://api.safaricom.co.ke"
_PLACEHOLDERS = {"", "changeme", "change-me", "xxx", "todo", "secret", "placeholder"}


class LogSettings(BaseSettings):
    """What every command needs, the standalone simulator included."""

    model_config = SettingsConfigDict(env_prefix="PESAGATE_", extra="ignore")

    log_format: LogFormat = "console"
    log_level: str = "INFO"


class Settings(LogSettings):
    env: Literal["sandbox", "live"] = "sandbox"
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    simulator: Literal["on", "off"] = "on"
    auto_migrate: bool = Field(True, description="commands migrate the schema before they start")
    run_worker: bool = Field(True, description="API processes run the job worker too")

    # Daraja
    mpesa_base_url: str | None = Field(
        None, description="sandbox default: the embedded simulator at {public_url}/sim"
    )
    mpesa_consumer_key: str = SANDBOX_CONSUMER_KEY
    mpesa_consumer_secret: str = SANDBOX_CONSUMER_SECRET
    mpesa_shortcode: str = SANDBOX_SHORTCODE
    mpesa_passkey: str = SANDBOX_PASSKEY
    mpesa_transaction_type: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"] = (
        "CustomerPayBillOnline"
    )
    mpesa_party_b: str | None = Field(None, description="the till number, for buy goods")
    mpesa_timeout_s: float = Field(30.0, gt=0)
    mpesa_pull_transactions: bool | None = Field(
        None,
        description="settle lost pushes from M-Pesa's statement (Pull Transactions); unset: on "
        "in sandbox, off in live (Safaricom must enable the Pull API for the shortcode)",
    )

    # Invoice life (SPEC section 5)
    stk_prompt_ttl_s: float = Field(60.0, ge=0)
    reconcile_grace_s: float = Field(15.0, ge=0)
    reconcile_max_s: float = Field(600.0, gt=0)
    reconcile_backoff_s: float = Field(5.0, gt=0, description="first re-query delay; doubles")

    # Callback hardening (SPEC section 5)
    callback_allowed_ips: str | None = Field(
        None, description="comma-separated CIDRs that may post callbacks; unset: any"
    )
    confirm_callbacks: bool = Field(False, description="confirm successes by STK query")

    # Webhooks (SPEC section 6)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(5.0, ge=0, description="first retry delay; doubles, jittered")
    webhook_disable_threshold: int = Field(40, ge=1)

    # Request hygiene (SPEC section 7)
    idempotency_ttl_s: float = Field(86_400.0, gt=0)
    rate_limit: str | None = Field(None, description='per API key, e.g. "100/second"; off if unset')
    redis_url: str | None = Field(None, description="share rate limits between nodes")

    # Worker
    worker_poll_s: float = Field(0.5, gt=0)
    worker_lease_s: float = Field(60.0, gt=0)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value:
            parse(value)  # raises ValueError for anything but "N/second", "N per minute", ...
        return value or None

    @field_validator("callback_allowed_ips")
    @classmethod
    def _networks_parse(cls, value: str | None) -> str | None:
        for cidr in (value or "").split(","):
            if cidr.strip():
                ip_network(cidr.strip(), strict=False)  # ValueError on a typo
        return value or None

    @property
    def callback_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        cidrs = (self.callback_allowed_ips or "").split(",")
        return tuple(ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())

    @property
    def simulator_enabled(self) -> bool:
        return self.env == "sandbox" and self.simulator == "on"

    @property
    def pull_transactions_enabled(self) -> bool:
        if self.mpesa_pull_transactions is not None:
            return self.mpesa_pull_transactions
        return self.env == "sandbox"

    @property
    def effective_mpesa_base_url(self) -> str:
        if self.mpesa_base_url:
            return self.mpesa_base_url.rstrip("/")
        if self.env == "live":
            return LIVE_DARAJA_URL
        return f"{self.public_url.rstrip('/')}/sim"

    @model_validator(mode="after")
    def _live_fails_closed(self) -> "Settings":
        if self.env == "live":
            problems = live_problems(self)
            if problems:
                raise ValueError("live mode refuses to start: " + "; ".join(problems))
        return self


def live_problems(settings: Settings) -> list[str]:
    """Everything that would make a live gateway unsafe or broken."""
    problems = []
    secrets = {
        "PESAGATE_MPESA_CONSUMER_KEY": (settings.mpesa_consumer_key, SANDBOX_CONSUMER_KEY),
        "PESAGATE_MPESA_CONSUMER_SECRET": (settings.mpesa_consumer_secret, SANDBOX_CONSUMER_SECRET),
        "PESAGATE_MPESA_PASSKEY": (settings.mpesa_passkey, SANDBOX_PASSKEY),
        "PESAGATE_MPESA_SHORTCODE": (settings.mpesa_shortcode, SANDBOX_SHORTCODE),
    }
    for name, (value, sandbox_default) in secrets.items():
        if value.strip().lower() in _PLACEHOLDERS or value == sandbox_default:
            problems.append(f"{name} is missing or a sandbox/placeholder value")
    public = urlsplit(settings.public_url)
    if public.scheme != "https" or public.hostname in (None, "localhost", "127.0.0.1", "::1"):
        problems.append("PESAGATE_PUBLIC_URL must be a public https URL (Daraja calls it back)")
    if settings.mpesa_transaction_type == "CustomerBuyGoodsOnline" and not settings.mpesa_party_b:
        problems.append("PESAGATE_MPESA_PARTY_B (the till number) is required for buy goods")
    return problems
