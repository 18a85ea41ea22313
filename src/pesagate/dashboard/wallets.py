"""The Wallets page: balances (available, and clearing: collected but not yet available),
a wallet's statement with its running balance and CSV export, and transfers between the
business's wallets (owners only, with a confirmation). Through the ledger's services only:
its invariants hold."""

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from pesagate.dashboard.web import (
    CAN_REFUND,
    PREFIX,
    AccessDep,
    FormDep,
    PageRefused,
    VisitorDep,
    page,
    require,
)
from pesagate.db import Database
from pesagate.dependencies import DbDep
from pesagate.errors import ApiError, NotFound, ValidationFailed
from pesagate.kit.api import validate_body
from pesagate.kit.pagination import Page
from pesagate.ledger import service as ledger
from pesagate.ledger.schemas import IntraTransfer
from pesagate.payments.hooks import invoices_json

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50
CSV_BATCH = 500
STATEMENT_COLUMNS = (
    "transaction_id",
    "created_at",
    "trans_type",
    "status",
    "value",
    "running_balance",
    "currency",
    "narrative",
)
CAN_TRANSFER = CAN_REFUND  # money moves: owners only


def _with_clearing(wallet: Any) -> dict[str, Any]:
    clearing = Decimal(wallet["current_balance"]) - Decimal(wallet["available_balance"])
    return {**wallet, "clearing_balance": f"{clearing:.2f}"}


@router.get("/b/{business_id}/wallets/")
async def wallets(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    _, found = await ledger.list_wallets(db, access.business_pk, Page(1, 100))
    return page(
        "wallets.html",
        visitor=visitor,
        access=access,
        wallets=[_with_clearing(w) for w in found],
        nav="wallets",
    )


async def _wallet_page(
    db: Database,
    access: Any,
    visitor: Any,
    wallet_id: str,
    number: int,
    status: int = 200,
    **extra: Any,
) -> Response:
    try:
        wallet = await ledger.wallet_detail(db, access.business_pk, wallet_id[:20])
        count, lines = await ledger.statement(
            db, invoices_json, access.business_pk, Page(number, PAGE_SIZE), wallet["wallet_id"]
        )
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such wallet.") from None
    _, every = await ledger.list_wallets(db, access.business_pk, Page(1, 100))
    return page(
        "wallet.html",
        status,
        visitor=visitor,
        access=access,
        wallet=_with_clearing(wallet),
        others=[w for w in every if w["wallet_id"] != wallet["wallet_id"]],
        lines=lines,
        count=count,
        number=number,
        last=max(1, -(-count // PAGE_SIZE)),
        can_transfer=access.role in CAN_TRANSFER,
        nav="wallets",
        **extra,
    )


@router.get("/b/{business_id}/wallets/{wallet_id}/")
async def wallet(
    request: Request, wallet_id: str, access: AccessDep, visitor: VisitorDep, db: DbDep
) -> Response:
    raw = request.query_params.get("page", "1")
    number = int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 else 1
    return await _wallet_page(db, access, visitor, wallet_id, max(1, number))


@router.get("/b/{business_id}/wallets/{wallet_id}/statement.csv")
async def statement_csv(wallet_id: str, access: AccessDep, db: DbDep) -> Response:
    try:
        await ledger.wallet_detail(db, access.business_pk, wallet_id[:20])
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such wallet.") from None

    async def rows() -> AsyncIterator[str]:
        yield _line(STATEMENT_COLUMNS)
        number = 1
        while True:
            _, batch = await ledger.statement(
                db, invoices_json, access.business_pk, Page(number, CSV_BATCH), wallet_id[:20]
            )
            for item in batch:
                yield _line(str(dict(item).get(column) or "") for column in STATEMENT_COLUMNS)
            if len(batch) < CSV_BATCH:
                return
            number += 1

    name = f"statement-{wallet_id[:20]}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _line(values: Any) -> str:
    out = io.StringIO()
    cells = [str(v) for v in values]
    csv.writer(out).writerow(f"'{c}" if c[:1] in ("=", "+", "@", "\t", "\r") else c for c in cells)
    return out.getvalue()


@router.post("/b/{business_id}/wallets/{wallet_id}/transfer")
async def transfer(
    wallet_id: str, access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep
) -> Response:
    require(access, CAN_TRANSFER)
    if form.get("confirm") != "yes":
        return await _wallet_page(
            db, access, visitor, wallet_id, 1, 400, error="Tick the confirmation."
        )
    body = {
        "wallet_id": form.get("to", ""),
        "amount": form.get("amount", ""),
        "narrative": form.get("narrative", "") or "Transfer",
    }
    try:
        request = validate_body(IntraTransfer, body)
        done = await ledger.intra_transfer(db, access.business_pk, wallet_id[:20], request, None)
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such wallet.") from None
    except ApiError as refused:
        problem = (
            "; ".join(f"{f}: {' '.join(m)}" for f, m in refused.errors.items())
            if isinstance(refused, ValidationFailed)
            else str(refused.detail)
        )
        return await _wallet_page(db, access, visitor, wallet_id, 1, 400, error=problem)
    notice = f"Moved {done['from_data']['wallet']['currency']} {done['amount']}."
    return await _wallet_page(db, access, visitor, wallet_id, 1, notice=notice)
