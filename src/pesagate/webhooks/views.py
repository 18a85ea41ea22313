"""JSON shapes of SPEC section 6: the endpoint and the event (with its attempt log)."""

from pesagate.kit.clock import rfc3339_ms
from pesagate.models import EventStatus, WebhookAttempt, WebhookEndpoint, WebhookEvent
from pesagate.webhooks import responses


def endpoint_json(endpoint: WebhookEndpoint) -> responses.WebhookEndpoint:
    """Never the challenge nor the signing secret: those are shown once, at creation."""
    return {
        "id": endpoint.public_id,
        "endpoint": endpoint.url,
        "is_active": endpoint.is_active,
        "collection_event": endpoint.collection_event,
        "send_money_event": endpoint.send_money_event,
        "reversal_event": endpoint.reversal_event,
        "wallet_transfer_event": endpoint.wallet_transfer_event,
        "failures_count": endpoint.failures_count,
        "created_at": rfc3339_ms(endpoint.created_at),
        "updated_at": rfc3339_ms(endpoint.updated_at),
    }


def event_json(event: WebhookEvent, attempts: list[WebhookAttempt]) -> responses.WebhookEvent:
    return {
        "id": event.public_id,
        "webhook": endpoint_json(event.endpoint),
        "topic": event.topic,
        "payload": event.payload,
        "status": event.status,
        "attempts": event.attempts,
        "failure_reason": event.failure_reason if event.status == EventStatus.FAILED else None,
        "attempt_log": [
            {
                "attempted_at": rfc3339_ms(attempt.attempted_at),
                "status_code": attempt.status_code,
                "duration_ms": attempt.duration_ms,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
            }
            for attempt in attempts
        ],
        "created_at": rfc3339_ms(event.created_at),
        "updated_at": rfc3339_ms(event.updated_at),
    }
