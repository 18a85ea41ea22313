"""The webhook API's answers (SPEC section 6), as declared in the OpenAPI document."""

from typing_extensions import TypedDict

from pesagate.kit.responses import Paginated, Timestamp, closed
from pesagate.models import EventStatus


@closed
class WebhookEndpoint(TypedDict):
    """Never the challenge nor the signing secret: those are shown once, at creation."""

    id: str
    endpoint: str
    is_active: bool
    collection_event: bool
    send_money_event: bool
    reversal_event: bool
    wallet_transfer_event: bool
    failures_count: int
    created_at: Timestamp
    updated_at: Timestamp


@closed
class CreatedWebhookEndpoint(WebhookEndpoint):
    signing_secret: str


@closed
class WebhookAttempt(TypedDict):
    attempted_at: Timestamp
    status_code: int | None
    duration_ms: int
    error: str | None
    response_excerpt: str | None


@closed
class WebhookEvent(TypedDict):
    id: str
    webhook: WebhookEndpoint
    topic: str
    payload: str  # the exact JSON body that is sent
    status: EventStatus
    attempts: int
    failure_reason: str | None
    attempt_log: list[WebhookAttempt]
    created_at: Timestamp
    updated_at: Timestamp


EndpointPage = Paginated[WebhookEndpoint]
EventPage = Paginated[WebhookEvent]
