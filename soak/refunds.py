"""The soak's refunds: a share of the paid invoices refunded through the kulmipay SDK while
processes are killed and reversal Results are lost, duplicated, late or timed out; then the
checks against M-Pesa's ground truth (the simulator's reversals):

- every refund final, none DISPUTED (nothing else reverses payments in the soak);
- every COMPLETED refund reversed exactly once at M-Pesa;
- no payment reversed at M-Pesa without a COMPLETED refund;
- no reversal ever sent twice for one payment (whatever the kills and lost answers);
- wallet balances equal collections (net) minus refunds (wallet debits).
"""

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from kulmipay import Refunds

REFUND_SHARE = 0.2  # of the first merchant's paid invoices
REFUND_ATTEMPTS = 8
REFUND_RETRY_S = 3.0
REFUND_EVERY_S = 0.25
FAULTS = {
    "reversal_result_lost": 0.10,
    "reversal_result_duplicate": 0.10,
    "reversal_result_late": 0.05,
    "reversal_queue_timeout": 0.05,
    "reversal_response_lost": 0.05,
    "status_result_lost": 0.10,
}
GATEWAY_ENV = {
    "PESAGATE_REFUND_RESULT_WAIT_S": "3",
    "PESAGATE_REFUND_STATUS_BACKOFF_S": "1",
    "PESAGATE_REFUND_UNKNOWN_GRACE_S": "15",
}
SIMULATOR_ENV = {
    "PESAGATE_SIM_INITIATOR_LATE_S": "4",
    "PESAGATE_SIM_INITIATOR_RESULT_DELAY_S": "0.2",
}
BUSY = ("refund:PENDING", "refund:PROCESSING")


class KeyedRefunds(Refunds):  # type: ignore[misc]
    def __init__(self, idempotency_key: str, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.idempotency_key = idempotency_key

    def get_headers(self, noauth: bool = False) -> dict[str, str]:
        headers: dict[str, str] = super().get_headers(noauth)
        headers["Idempotency-Key"] = self.idempotency_key
        return headers


@dataclass
class RefundOutcomes:
    lock: threading.Lock = field(default_factory=threading.Lock)
    asked: set[str] = field(default_factory=set)  # invoice ids
    created: int = 0
    refused: list[str] = field(default_factory=list)  # 4xx answers
    server_errors: int = 0
    connection_errors: int = 0


def wanted(invoice_id: str, seed: int) -> bool:
    return random.Random(f"{seed}:{invoice_id}").random() < REFUND_SHARE


async def _fetch(db_url: str, query: str, *args: Any) -> list[Any]:
    connection = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def refundable(db_url: str, business_id: str) -> list[tuple[str, int]]:
    rows = asyncio.run(
        _fetch(
            db_url,
            "SELECT i.invoice_id, i.value_minor FROM invoices i"
            " JOIN businesses b ON b.id = i.business_id"
            " WHERE b.business_id = $1 AND i.state = 'COMPLETE'"
            " AND i.mpesa_reference IS NOT NULL AND i.refunded_minor = 0",
            business_id,
        )
    )
    return [(row["invoice_id"], row["value_minor"]) for row in rows]


def refund_one(
    api_url: str, keys: dict[str, str], invoice_id: str, value_minor: int, out: RefundOutcomes
) -> None:
    refunds = KeyedRefunds(
        f"soak-refund-{invoice_id}",
        token=keys["secret_key"],
        publishable_key=keys["public_key"],
        base_url=api_url,
    )
    amount = f"{value_minor // 100}.{value_minor % 100:02d}"
    for attempt in range(REFUND_ATTEMPTS):
        if attempt:
            time.sleep(REFUND_RETRY_S)
        try:
            refunds.create(invoice_id, amount, "Duplicate payment")
            with out.lock:
                out.created += 1
            return
        except Exception as exc:  # the SDK's exceptions, requests' for the network
            name = type(exc).__name__
            with out.lock:
                if name == "KulmiPayServerError":
                    out.server_errors += 1
                    continue
                if name.startswith("KulmiPay"):
                    if "still being processed" in str(exc):
                        continue
                    out.refused.append(f"{invoice_id}: {str(exc)[:200]}")
                    return
                out.connection_errors += 1


def refunder(
    db_url: str,
    api_url: str,
    keys: dict[str, str],
    seed: int,
    stop: threading.Event,
    out: RefundOutcomes,
) -> None:
    """While the load runs (and once more after it): refund the chosen paid invoices."""
    while True:
        final_pass = stop.is_set()
        for invoice_id, value in refundable(db_url, keys["business_id"]):
            if invoice_id in out.asked or not wanted(invoice_id, seed):
                continue
            out.asked.add(invoice_id)
            refund_one(api_url, keys, invoice_id, value, out)
        if final_pass:
            return
        stop.wait(REFUND_EVERY_S)


def explain_not_final(db_url: str) -> None:
    """What a refund left busy was waiting for: its row, its job and the Results it got."""
    rows = asyncio.run(
        _fetch(
            db_url,
            "SELECT r.id, r.chargeback_id, r.status, r.created_at, r.reversal_sent_at,"
            " r.originator_conversation_id IS NOT NULL AS acknowledged, r.status_queries,"
            " j.run_at, j.attempts, j.failures, j.locked_by, j.last_error, j.dead_at,"
            " (SELECT string_agg(x.kind || ':' || coalesce(x.result_code, '-') || ':'"
            "  || x.outcome, ' ') FROM reversal_results x WHERE x.refund_id = r.id) AS results"
            " FROM refunds r LEFT JOIN jobs j ON j.key = 'refund:' || r.id"
            " WHERE r.status IN ('PENDING', 'PROCESSING')",
        )
    )
    for row in rows:
        print("not final:", dict(row))


def check(db_url: str, sim_url: str, out: RefundOutcomes) -> list[tuple[str, Any, bool]]:
    truth = httpx.get(f"{sim_url}/control/reversals", timeout=60).json()
    requests_per_receipt = Counter(r["transaction_id"] for r in truth if r["kind"] == "reversal")
    reversed_receipts = Counter(r["transaction_id"] for r in truth if r["reversed"])
    refunds = asyncio.run(
        _fetch(
            db_url,
            "SELECT r.chargeback_id, r.status, i.mpesa_reference FROM refunds r"
            " JOIN invoices i ON i.id = r.invoice_id",
        )
    )
    statuses = Counter(r["status"] for r in refunds)
    completed = {r["mpesa_reference"] for r in refunds if r["status"] == "COMPLETED"}
    not_once = [receipt for receipt in completed if reversed_receipts[receipt] != 1]
    without_refund = [receipt for receipt in reversed_receipts if receipt not in completed]
    sent_twice = [receipt for receipt, n in requests_per_receipt.items() if n > 1]
    not_final = sum(n for status, n in statuses.items() if status in ("PENDING", "PROCESSING"))
    if not_final:
        explain_not_final(db_url)
    balances = asyncio.run(
        _fetch(
            db_url,
            "SELECT"
            " (SELECT coalesce(sum(balance_minor), 0) FROM ledger_accounts WHERE kind = 'WALLET')"
            " AS wallets,"
            " (SELECT coalesce(sum(net_amount_minor), 0) FROM invoices WHERE state = 'COMPLETE')"
            " AS collected,"
            " (SELECT coalesce(sum(wallet_debit_minor), 0) FROM refunds"
            "  WHERE status = 'COMPLETED') AS refunded",
        )
    )[0]
    books = balances["wallets"] == balances["collected"] - balances["refunded"]
    return [
        ("refunds asked", len(out.asked), True),
        ("refunds created (201)", out.created, True),
        ("refunds refused (4xx)", len(out.refused), True),
        (
            "refund 5xx / connection errors (kills)",
            f"{out.server_errors} / {out.connection_errors}",
            True,
        ),
        ("refunds not final", not_final, not_final == 0),
        ("refunds COMPLETED", statuses["COMPLETED"], True),
        ("refunds CANCELLED", statuses["CANCELLED"], True),
        ("refunds DISPUTED", statuses["DISPUTED"], statuses["DISPUTED"] == 0),
        ("reversal requests at M-Pesa", sum(requests_per_receipt.values()), True),
        ("COMPLETED refund not reversed exactly once", len(not_once), not not_once),
        ("reversed at M-Pesa without a COMPLETED refund", len(without_refund), not without_refund),
        ("payments sent for reversal twice", len(sent_twice), not sent_twice),
        (
            "wallets = collections - refunds (cents)",
            f"{balances['wallets']} = {balances['collected']} - {balances['refunded']}",
            books,
        ),
    ]
