"""Pending STK transactions for the callback benchmark, as STKPushService stores them, and a
file of their "checkout_request_id phone amount" lines for wrk (the shape pesagate's gets);
then `--completed` settled ones (ids `ws_CO_peer<n>` numbered on after the pending)."""

from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from peer_shop.models import MpesaTransaction


class Command(BaseCommand):
    help = "Store COUNT pending STK transactions and write their callbacks file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)
        parser.add_argument("callbacks_file")
        parser.add_argument("--completed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        rows = []
        lines = []
        for n in range(options["count"] + options["completed"]):
            checkout = f"ws_CO_peer{n:012d}"
            phone = f"2547{n % 100_000_000:08d}"
            completed = n >= options["count"]
            rows.append(
                MpesaTransaction(
                    transaction_type="STK_PUSH",
                    status="SUCCESS" if completed else "PENDING",
                    checkout_request_id=checkout,
                    merchant_request_id=f"peer-{n}",
                    phone_number=phone,
                    amount=Decimal("100.00"),
                    account_reference="bench",
                    transaction_desc="Payment",
                    mpesa_receipt_number=f"UPR{n:07d}" if completed else None,
                )
            )
            if not completed:
                lines.append(f"{checkout} {phone} 100.00\n")
        MpesaTransaction.objects.bulk_create(rows, batch_size=2000)
        Path(options["callbacks_file"]).write_text("".join(lines))
