"""Reconciliation confirms a held success by its receipt with Transaction Status, when the STK
query cannot tell yet; a receipt M-Pesa does not know confirms nothing."""

from sqlalchemy import select

from pesagate.models import CallbackOutcome, Invoice, MpesaCallback
from tests.fixtures.servers import wait_until


def status_rows(gateway, invoice_id):
    async def fn(session):
        invoice = await session.scalar(select(Invoice).where(Invoice.invoice_id == invoice_id))
        rows = await session.scalars(
            select(MpesaCallback).where(
                MpesaCallback.invoice_id == invoice.id,
                MpesaCallback.note.like("transaction status%"),
            )
        )
        return list(rows.all())

    return gateway.query(fn)


def test_a_held_success_is_confirmed_by_its_receipt(start_gateway):
    # Every success waits for M-Pesa's confirmation; this number's STK queries answer "being
    # processed" three times, so the receipt is what M-Pesa confirms first.
    gateway = start_gateway(confirm_callbacks=True, reconcile_backoff_s=2.0)
    invoice_id = gateway.push("254700009007", 150)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    receipt = final["mpesa_reference"]
    queries = gateway.sim.control("GET", "/status-queries")
    assert [q["transaction_id"] for q in queries][:1] == [receipt]
    applied = wait_until(
        lambda: [r for r in status_rows(gateway, invoice_id) if r.outcome == "APPLIED"],
        what="the status Result stored",
    )
    assert applied[0].outcome == CallbackOutcome.APPLIED
    assert receipt in applied[0].note


def test_a_status_result_without_a_held_success_confirms_nothing(gateway):
    invoice_id = gateway.push("254700001032", 100)["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "FAILED"
    token = gateway.invoice_row(invoice_id).callback_token
    body = {
        "Result": {
            "ResultCode": 0,
            "ResultDesc": "ok",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "ReceiptNo", "Value": "UKS9999999"},
                    {"Key": "TransactionStatus", "Value": "Completed"},
                    {"Key": "Amount", "Value": "100"},
                ]
            },
        }
    }
    with gateway.client() as plain:
        answer = plain.post(f"{gateway.url}/callbacks/stk/{token}/status", json=body)
        unknown = plain.post(f"{gateway.url}/callbacks/stk/not-a-token/status", json=body)
    assert answer.status_code == unknown.status_code == 200
    rows = status_rows(gateway, invoice_id)
    assert [r.outcome for r in rows] == [CallbackOutcome.MISMATCH]
    assert "not the held success's" in rows[0].note
    assert gateway.status(invoice_id)["state"] == "FAILED"
