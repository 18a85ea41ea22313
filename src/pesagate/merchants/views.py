"""Read-only views of merchants' rows, read with Core statements where a request path is hot
(every push checks its request against the business's payment settings)."""

from dataclasses import dataclass
from datetime import datetime

from pesagate.models import Business, Tariff


@dataclass(frozen=True, slots=True)
class BusinessView:
    """A business row as it was read. Field names are the `businesses` columns'."""

    id: int
    business_id: str
    name: str
    short_name: str
    default_tariff: Tariff | None
    fee_rate_ppm: int
    fee_min_minor: int
    min_amount_minor: int
    max_amount_minor: int
    clearing_delay_s: int
    created_at: datetime
    updated_at: datetime


# What the fee and limit rules read: a loaded row, or its view.
BusinessTerms = Business | BusinessView
