"""What payments knows of hosted checkout (pesagate.checkout, a layer above): invoices can be
pushed inside a checkout session, possibly opened by a payment link. Payments stores which,
answers questions about those invoices, and declares the hooks by which its endpoints reach
checkout (wired in services.py): checking a session's signature, pushing inside a session,
rendering a payment link."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pesagate.config import Settings
from pesagate.db import AnySession, Database
from pesagate.models import Invoice, InvoiceState
from pesagate.payments import repository
from pesagate.payments.responses import PaymentLinkSummary

IN_FLIGHT = (InvoiceState.PENDING, InvoiceState.PROCESSING)


@dataclass(frozen=True, slots=True)
class InvoiceOrigin:
    """The checkout session (and payment link) an invoice is pushed inside."""

    checkout_pk: int
    payment_link_pk: int | None = None


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A request that proved, by a valid signature, that it acts for one checkout session."""

    business_pk: int
    checkout_pk: int
    checkout_id: str


# Hooks that checkout provides (services.py wires them onto `Services`):
# the body's `checkout_id` + `signature` checked, or 401/403/404;
GrantSession = Callable[[Database, Settings, dict[str, Any]], Awaitable[SessionGrant]]
# a payment link (by primary key) as status answers embed it.
RenderLink = Callable[[Database, Settings, int], Awaitable[PaymentLinkSummary]]


async def session_invoices(session: AnySession, checkout_pk: int) -> list[Invoice]:
    """A session's invoices, newest first."""
    return await repository.checkout_invoices(session, checkout_pk)


async def link_usage(session: AnySession, link_pk: int) -> tuple[int, int]:
    """(paid, in flight): a link's COMPLETE invoices and those whose outcome is still open."""
    states = await repository.link_states(session, link_pk)
    return states.get(InvoiceState.COMPLETE, 0), sum(states.get(s, 0) for s in IN_FLIGHT)
