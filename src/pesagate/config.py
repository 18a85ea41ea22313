"""Gateway settings (`PESAGATE_*`, SPEC section 8). CLI flags may override them.

In sandbox every Daraja setting defaults to the embedded simulator's, so the gateway runs with
no configuration. Live mode fails closed: it refuses to start on missing or placeholder values.
"""

import hashlib
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pesagate.kit.logs import LogFormat
from pesagate.kit.sandbox import SANDBOX_INITIATOR, SANDBOX_INITIATOR_PASSWORD, SANDBOX_PASSKEY

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./pesagate.db"
SANDBOX_CONSUMER_KEY = "sim-consumer-key"
SANDBOX_CONSUMER_SECRET = "sim-consumer-secret"
SANDBOX_SHORTCODE = "174379"
LIVE_DARAJA_URL = "https://api.safaricom.co.ke"
CHECKOUT_SECRET_MIN = 32
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
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="reverse proxies (comma-separated addresses or networks, * for any) whose "
        "X-Forwarded-For and X-Forwarded-Proto `pesagate serve` believes: the client address "
        "behind them is what per-address limits count",
    )

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

    # Refunds: M-Pesa reversals (README, "Refunds")
    refunds_enabled: bool | None = Field(
        None,
        description="serve the chargebacks API and send reversals; unset: on in sandbox, off in "
        "live (live needs an initiator with the Org Reversals Initiator role)",
    )
    mpesa_initiator: str = Field(SANDBOX_INITIATOR, description="the API operator's username")
    mpesa_initiator_password: str = Field(SANDBOX_INITIATOR_PASSWORD, repr=False)
    mpesa_certificate_path: str | None = Field(
        None,
        description="M-Pesa's public certificate (ProductionCertificate.cer); sandbox default: "
        "fetched from the simulator",
    )
    refund_result_wait_s: float = Field(
        60.0,
        gt=0,
        description="after M-Pesa acknowledges a reversal, wait this long for its "
        "Result before asking Transaction Status",
    )
    refund_status_backoff_s: float = Field(
        30.0, gt=0, description="between Transaction Status queries; doubles, up to 10 minutes"
    )
    refund_unknown_grace_s: float = Field(
        900.0,
        ge=0,
        description="a reversal whose payment Transaction Status still shows unreversed this "
        "long after it was sent is taken as never carried out (the refund is CANCELLED)",
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
    confirm_callbacks: bool | None = Field(
        None,
        description="confirm every success by STK query before crediting (one query per "
        "payment); unset: on in live, off in sandbox",
    )
    callback_refusal_limit: str | None = Field(
        "60/minute",
        description="per source address: callbacks for no invoice (or from a forbidden "
        "source) stored; past it they are answered 429 and not stored",
    )
    callback_retention_days: float = Field(
        30.0, gt=0, description="how long callbacks that spoke for no invoice are kept"
    )

    # Webhooks (SPEC section 6)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(5.0, ge=0, description="first retry delay; doubles, jittered")
    webhook_disable_threshold: int = Field(40, ge=1)

    # Request hygiene (SPEC section 7)
    idempotency_ttl_s: float = Field(86_400.0, gt=0)
    idempotency_lock_s: float = Field(
        120.0,
        gt=0,
        description="a request holding its Idempotency-Key longer is presumed dead; a retry then "
        "answers from what it created (a push's invoice) or runs it again if it created nothing",
    )
    body_read_timeout_s: float = Field(
        10.0, gt=0, description="a request's whole body must arrive within this time, else 408"
    )
    rate_limit: str | None = Field(None, description='per API key, e.g. "100/second"; off if unset')
    redis_url: str | None = Field(None, description="share rate limits between nodes")
    prompt_limit_per_key: str | None = Field(
        "120/minute", description='STK prompts per API key, e.g. "120/minute"; empty: no limit'
    )
    prompt_limit_per_phone: str | None = Field(
        "5/minute;20/hour",
        description="STK prompts per phone number, across every key and business; empty: none",
    )

    # Hosted checkout (pesagate.checkout)
    checkout_secret: str | None = Field(
        None,
        description="the HMAC key of checkout signatures (HS256 JWTs), at least 32 characters; "
        "required in live; sandbox default: derived from the database URL",
    )

    # The merchant dashboard (pesagate.dashboard, pesagate.accounts)
    dashboard_session_ttl_s: float = Field(
        43_200.0, gt=0, description="a sign-in lasts this long (12 hours)"
    )
    dashboard_login_max_failures: int = Field(
        5, ge=1, description="failed sign-ins in a row that lock the account for a while"
    )
    dashboard_lockout_s: float = Field(300.0, ge=0, description="how long a lock lasts")
    dashboard_login_limit_per_address: str | None = Field(
        "30/minute;200/hour",
        description="sign-in attempts per client address, whatever the email (password "
        "spraying across accounts); shared through Redis when set; off if empty",
    )
    dashboard_invitation_ttl_s: float = Field(
        604_800.0, gt=0, description="an invitation link to the Team can be used this long (7 days)"
    )
    dashboard_password_hashing: Literal["rfc9106-low-memory", "minimal"] = Field(
        "rfc9106-low-memory",
        description="argon2id parameters of new password hashes; `minimal` is for test suites "
        "only (cheap to guess), and live refuses it",
    )

    # Worker
    worker_poll_s: float = Field(0.5, gt=0)
    worker_lease_s: float = Field(
        60.0, gt=0, description="renewed every third of it while a job runs"
    )
    worker_concurrency: int = Field(32, ge=1, description="jobs one worker runs at a time")
    worker_lane_slots: int = Field(
        8,
        ge=1,
        description="of those, at most this many for one business's webhook deliveries "
        "(half of it for one endpoint)",
    )
    worker_job_timeout_s: float = Field(300.0, gt=0, description="a job running longer fails")
    worker_max_failures: int = Field(
        10, ge=1, description="failed runs in a row after which a job is dead"
    )

    @field_validator(
        "rate_limit", "callback_refusal_limit", "prompt_limit_per_key", "prompt_limit_per_phone"
    )
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value:
            # ValueError for anything but "N/second", "N per minute", "5/minute;20/hour", ...
            parse_many(value)
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
    def confirm_successes(self) -> bool:
        if self.confirm_callbacks is not None:
            return self.confirm_callbacks
        return self.env == "live"

    @property
    def refunds_on(self) -> bool:
        if self.refunds_enabled is not None:
            return self.refunds_enabled
        return self.env == "sandbox"

    @property
    def transaction_status_enabled(self) -> bool:
        """Reconciliation may ask Transaction Status about a held success's receipt: it needs
        the initiator that refunds configure (and live checks)."""
        return self.refunds_on

    def certificate(self) -> bytes | None:
        """The certificate's bytes, or None (the sandbox fetches the simulator's)."""
        if not self.mpesa_certificate_path:
            return None
        return Path(self.mpesa_certificate_path).read_bytes()

    @property
    def simulator_enabled(self) -> bool:
        return self.env == "sandbox" and self.simulator == "on"

    @property
    def pull_transactions_enabled(self) -> bool:
        if self.mpesa_pull_transactions is not None:
            return self.mpesa_pull_transactions
        return self.env == "sandbox"

    @property
    def checkout_signing_key(self) -> str:
        """Every process of one gateway must agree on it: in sandbox, unless set, it is derived
        from the database they share (guessable, which a sandbox may be; live has no default)."""
        if self.checkout_secret:
            return self.checkout_secret
        derived = hashlib.sha256(f"pesagate-sandbox-checkout:{self.database_url}".encode())
        return derived.hexdigest()

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
    checkout = (settings.checkout_secret or "").strip()
    if checkout.lower() in _PLACEHOLDERS or len(checkout) < CHECKOUT_SECRET_MIN:
        problems.append(
            f"PESAGATE_CHECKOUT_SECRET must be set to at least {CHECKOUT_SECRET_MIN} random "
            "characters (it signs checkout sessions)"
        )
    public = urlsplit(settings.public_url)
    if public.scheme != "https" or public.hostname in (None, "localhost", "127.0.0.1", "::1"):
        problems.append("PESAGATE_PUBLIC_URL must be a public https URL (Daraja calls it back)")
    if settings.dashboard_password_hashing != "rfc9106-low-memory":
        problems.append("PESAGATE_DASHBOARD_PASSWORD_HASHING=minimal is for test suites only")
    if settings.mpesa_transaction_type == "CustomerBuyGoodsOnline" and not settings.mpesa_party_b:
        problems.append("PESAGATE_MPESA_PARTY_B (the till number) is required for buy goods")
    if settings.refunds_on:
        problems += refund_problems(settings)
    return problems


def refund_problems(settings: Settings) -> list[str]:
    """Refunds send reversals: live needs a real initiator and M-Pesa's certificate."""
    problems = []
    initiator = {
        "PESAGATE_MPESA_INITIATOR": (settings.mpesa_initiator, SANDBOX_INITIATOR),
        "PESAGATE_MPESA_INITIATOR_PASSWORD": (
            settings.mpesa_initiator_password,
            SANDBOX_INITIATOR_PASSWORD,
        ),
    }
    for name, (value, sandbox_default) in initiator.items():
        if value.strip().lower() in _PLACEHOLDERS or value == sandbox_default:
            problems.append(f"{name} is missing or a sandbox/placeholder value (refunds are on)")
    path = settings.mpesa_certificate_path
    if not path:
        problems.append("PESAGATE_MPESA_CERTIFICATE_PATH is required when refunds are on")
    elif not Path(path).is_file():
        problems.append(f"PESAGATE_MPESA_CERTIFICATE_PATH: no file at {path}")
    return problems
