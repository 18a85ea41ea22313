"""Settling an invoice from M-Pesa's statement (Pull Transactions).

The push sends `AccountReference` = the invoice id and the statement echoes it as the bill
reference, so a payment whose push response and callbacks were all lost can still be found: a
line with the invoice's id, its amount, and its phone (when the statement shows an unmasked
one). The completion goes through the state machine under the invoice's lock, like a callback,
so the wallet is credited once and the webhooks go out; a receipt that already belongs to
another invoice is never used twice.
"""

from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum

import structlog

from pesagate import metrics
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Invoice, QueryKind
from pesagate.mpesa.client import DarajaClient
from pesagate.mpesa.statement import StatementError, StatementLine
from pesagate.payments import repository, state

log = structlog.get_logger("pesagate.reconcile")

# The statement window opens this long before the invoice was created (clock skew).
LOOKBACK = timedelta(minutes=2)


class StatementCheck(StrEnum):
    SETTLED = "settled"  # the invoice is COMPLETE (by this line, or already)
    ABSENT = "absent"  # the whole window was read: no payment for this invoice
    UNKNOWN = "unknown"  # no statement, or only part of it: says nothing about payment


def matches(invoice: Invoice, line: StatementLine) -> bool:
    """This invoice's payment: its id as the bill reference, its amount, its phone."""
    if (line.bill_reference or "").upper() != invoice.invoice_id:
        return False
    if line.amount_minor != invoice.value_minor:
        return False
    if line.msisdn is not None and line.msisdn != invoice.account:
        return False
    return "revers" not in (line.transaction_type or "").casefold()  # never a reversal


async def check_statement(db: Database, daraja: DarajaClient, invoice: Invoice) -> StatementCheck:
    """Look for the invoice's payment in the statement and complete the invoice if it is there."""
    statement = await daraja.pull_transactions(invoice.created_at - LOOKBACK, utc_now())
    metrics.DARAJA_CALLS.labels("pull_transactions", type(statement).__name__).inc()
    if isinstance(statement, StatementError):
        check = StatementCheck.UNKNOWN
        await remember_query(db, invoice.id, QueryKind.STATEMENT, check.value, "unreadable")
    else:
        candidates = [line for line in statement.lines if matches(invoice, line)]
        if candidates:
            check = await settle(db, invoice.id, candidates)
        else:
            check = StatementCheck.ABSENT if statement.complete else StatementCheck.UNKNOWN
            detail = f"{len(statement.lines)} line(s), none of this payment"
            await remember_query(db, invoice.id, QueryKind.STATEMENT, check.value, detail)
    metrics.STATEMENT_CHECKS.labels(check.value).inc()
    log.info("statement checked", invoice_id=invoice.invoice_id, outcome=check.value)
    return check


async def settle(
    db: Database, invoice_pk: int, candidates: Iterable[StatementLine]
) -> StatementCheck:
    """Complete the invoice with the first candidate whose receipt no other invoice holds."""
    async with db.transaction() as session:
        invoice = await repository.lock_invoice(session, id=invoice_pk)
        assert invoice is not None
        for line in candidates:
            if await repository.receipt_taken(session, line.receipt, invoice_pk):
                log.warning("statement receipt already used", invoice_id=invoice.invoice_id)
                continue
            changed = await state.complete(session, invoice, line.receipt)
            detail = f"receipt {line.receipt}"
            repository.record_query(
                session, invoice_pk, QueryKind.STATEMENT, "SETTLED", None, detail
            )
            log.info("completed from the statement", invoice_id=invoice.invoice_id, changed=changed)
            return StatementCheck.SETTLED
        detail = "its receipts belong to other invoices"
        repository.record_query(session, invoice_pk, QueryKind.STATEMENT, "ABSENT", None, detail)
    return StatementCheck.ABSENT


async def remember_query(
    db: Database, invoice_pk: int, kind: QueryKind, answer: str, detail: str | None = None
) -> None:
    """An answer that changed nothing is kept too (in a transaction of its own): the payment's
    timeline shows every question asked."""
    async with db.transaction() as session:
        repository.record_query(session, invoice_pk, kind, answer, None, detail)
