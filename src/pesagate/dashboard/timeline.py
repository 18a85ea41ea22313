"""A payment's timeline: everything that happened to it, in order, from every domain's own
record: the push and Daraja's answer and every callback as received (payments), every
question reconciliation asked M-Pesa (payments), the books (ledger), and each webhook
delivery attempt with its response code (webhooks)."""

from dataclasses import dataclass, field
from datetime import datetime

from pesagate.db import Database
from pesagate.kit.money import format_minor
from pesagate.ledger import service as ledger
from pesagate.models import EventStatus
from pesagate.payments.events import collection_key
from pesagate.payments.history import PaymentRecord
from pesagate.webhooks import service as webhooks

QUERY_NAMES = {
    "stk_query": "STK Push Query",
    "statement": "Statement lookup (Pull Transactions)",
    "txn_status": "Transaction Status about a receipt",
}


@dataclass
class Event:
    at: datetime
    kind: str  # push, callback, query, ledger, webhook, final: the marker's style
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    raw: str | None = None  # shown as is, in a <pre>
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (account, amount, status)
    replay_event_id: str | None = None  # a settled webhook event: the page offers to send it again
    replay_label: str = "Replay this webhook"


async def of_payment(db: Database, business_pk: int, record: PaymentRecord) -> list[Event]:
    invoice = record.invoice
    push = Event(invoice.created_at, "push", "STK push sent to Daraja")
    push.facts = [
        ("Phone", invoice.account),
        ("Amount", f"{invoice.currency} {format_minor(invoice.value_minor)}"),
        ("CheckoutRequestID", invoice.checkout_request_id or "none (no answer kept)"),
        ("MerchantRequestID", invoice.merchant_request_id or "-"),
    ]
    if invoice.push_error:
        push.title = "STK push refused or unanswered"
        push.raw = invoice.push_error
    events = [push]
    for callback in record.callbacks:
        event = Event(callback.received_at, "callback", "Callback received from M-Pesa")
        event.facts = [
            ("Outcome", callback.outcome.value),
            ("ResultCode", callback.result_code or "-"),
            ("Source", callback.source_ip or "unknown"),
            ("Size", f"{callback.body_size or len(callback.raw_body)} bytes"),
        ]
        if callback.note:
            event.facts.append(("Note", callback.note))
        event.raw = callback.raw_body
        events.append(event)
    for query in record.queries:
        event = Event(query.asked_at, "query", QUERY_NAMES.get(query.kind.value, query.kind.value))
        event.facts = [("Answer", query.answer)]
        if query.result_code is not None:
            event.facts.append(("ResultCode", query.result_code))
        if query.detail:
            event.facts.append(("Detail", query.detail))
        events.append(event)
    events.extend(await _books(db, invoice.id))
    events.extend(await _deliveries(db, business_pk, invoice.id))
    if invoice.completed_at is not None:
        done = Event(invoice.completed_at, "final", "Completed")
        done.facts = [("M-Pesa receipt", invoice.mpesa_reference or "-")]
        events.append(done)
    elif invoice.failed_code is not None:
        failed = Event(invoice.updated_at, "failed", "Failed")
        failed.facts = [("Code", invoice.failed_code), ("Reason", invoice.failed_reason or "-")]
        events.append(failed)
    return sorted(events, key=_order)


# Within one second, cause before effect: the push, what M-Pesa said, the outcome, the books,
# the webhooks (their own clocks differ by microseconds, not always in that order).
_RANK = {"push": 0, "query": 1, "callback": 1, "final": 2, "failed": 2, "ledger": 3, "webhook": 4}


def _order(event: Event) -> tuple[datetime, int, datetime]:
    return (event.at.replace(microsecond=0), _RANK.get(event.kind, 5), event.at)


async def _books(db: Database, invoice_pk: int) -> list[Event]:
    entries: dict[int, Event] = {}
    for entry, posting, account in await ledger.invoice_postings(db, invoice_pk):
        event = entries.get(entry.id)
        if event is None:
            event = Event(entry.created_at, "ledger", f"Ledger entry: {entry.kind.value}")
            event.facts = [("Narrative", entry.narrative)]
            entries[entry.id] = event
        event.lines.append((account.code, format_minor(posting.amount_minor), posting.status.value))
    return list(entries.values())


async def _deliveries(db: Database, business_pk: int, invoice_pk: int) -> list[Event]:
    events = []
    for event, attempts in await webhooks.deliveries_about(
        db, business_pk, collection_key(invoice_pk)
    ):
        for attempt in attempts:
            shown = Event(attempt.attempted_at, "webhook", f"Webhook {event.topic} delivery")
            shown.facts = [
                ("Endpoint", event.endpoint.url),
                ("Event", event.public_id),
                ("Response", str(attempt.status_code) if attempt.status_code else "none"),
                ("Took", f"{attempt.duration_ms} ms"),
            ]
            if attempt.error:
                shown.facts.append(("Error", attempt.error))
            events.append(shown)
        if attempts and event.status in (EventStatus.FAILED, EventStatus.DELIVERED):
            events[-1].replay_event_id = event.public_id  # on its last attempt
            if event.status == EventStatus.DELIVERED:
                events[-1].replay_label = "Resend this webhook"
        if not attempts:
            waiting = Event(event.created_at, "webhook", f"Webhook {event.topic} queued")
            waiting.facts = [("Endpoint", event.endpoint.url), ("Status", event.status.value)]
            events.append(waiting)
    return events
