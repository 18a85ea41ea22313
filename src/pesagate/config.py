"""Gateway settings (`PESAGATE_*`, SPEC section 8). CLI flags may override them."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pesagate.kit.logs import LogFormat

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./pesagate.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PESAGATE_", extra="ignore")

    env: Literal["sandbox", "live"] = "sandbox"
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    mpesa_base_url: str | None = Field(
        None, description="sandbox default: the embedded simulator at {public_url}/sim"
    )
    simulator: Literal["on", "off"] = "on"
    log_format: LogFormat = "console"
    log_level: str = "INFO"

    @property
    def simulator_enabled(self) -> bool:
        return self.env == "sandbox" and self.simulator == "on"

    @property
    def effective_mpesa_base_url(self) -> str:
        if self.mpesa_base_url:
            return self.mpesa_base_url.rstrip("/")
        if self.env == "live":
            return "https://api.safaricom.co.ke"
        return f"{self.public_url.rstrip('/')}/sim"
