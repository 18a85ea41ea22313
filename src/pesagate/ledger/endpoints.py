"""Wallet endpoints (SPEC section 3): list, create, detail, statements, intra_transfer."""

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from pesagate.db import Database
from pesagate.dependencies import DbDep, JsonBody, PageDep
from pesagate.errors import NotFound, ValidationFailed
from pesagate.idempotency.dependency import Idempotent
from pesagate.kit import ids
from pesagate.kit.money import format_minor
from pesagate.kit.pagination import paginated
from pesagate.ledger import queries
from pesagate.ledger.schemas import IntraTransfer, WalletCreate
from pesagate.ledger.service import open_wallet_account
from pesagate.ledger.transfers import transfer
from pesagate.ledger.views import transaction_json, wallet_json
from pesagate.merchants.auth import Principal, SecretKeyAuth
from pesagate.models import Wallet, WalletType
from pesagate.payments.endpoints import body_schema, routes_on
from pesagate.payments.schemas import validate_body

router = APIRouter(prefix="/api/v1")
routes = routes_on(router)


@routes("GET", "/wallets/", summary="Your wallets (secret key)")
async def list_wallets(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
) -> dict[str, Any]:
    async with db.read() as session:
        count, rows = await queries.wallets_page(session, principal.business_pk, pages)
    return paginated(request.url, pages, count, [wallet_json(w, a) for w, a in rows])


@routes(
    "POST",
    "/wallets/",
    summary="Create a WORKING wallet (secret key)",
    openapi_extra=body_schema(WalletCreate, idempotent=True),
)
async def create_wallet(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, gate: Idempotent
) -> Response:
    return await gate.run(principal, lambda: _create_wallet(principal, body, db))


async def _create_wallet(
    principal: Principal, body: dict[str, Any], db: Database
) -> dict[str, Any]:
    request = validate_body(WalletCreate, body)
    async with db.transaction() as session:
        taken = await session.scalar(
            select(Wallet.id).where(
                Wallet.business_id == principal.business_pk,
                Wallet.currency == request.currency,
                Wallet.label == request.label,
            )
        )
        if taken is not None:
            raise ValidationFailed.field("label", "You already have a wallet with this label.")
        wallet = Wallet(
            wallet_id=ids.wallet_id(),
            business_id=principal.business_pk,
            currency=request.currency,
            wallet_type=WalletType.WORKING,
            label=request.label,
            can_disburse=request.can_disburse,
        )
        session.add(wallet)
        await session.flush()
        account = await open_wallet_account(session, wallet)
    return wallet_json(wallet, account)


@routes("GET", "/wallets/{wallet_id}/", summary="One wallet (secret key)")
async def wallet_detail(wallet_id: str, principal: SecretKeyAuth, db: DbDep) -> dict[str, Any]:
    async with db.read() as session:
        wallet, account = await queries.wallet_with_account(
            session, principal.business_pk, wallet_id
        )
    return wallet_json(wallet, account)


@routes("GET", "/wallets/{wallet_id}/transactions/", summary="A wallet's statement (secret key)")
async def wallet_statement(
    wallet_id: str,
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
) -> dict[str, Any]:
    async with db.read(snapshot=True) as session:
        wallet, _ = await queries.wallet_with_account(session, principal.business_pk, wallet_id)
        count, rows = await queries.statement_page(session, principal.business_pk, pages, wallet.id)
    results = [transaction_json(p, w, i) for p, w, i in rows]
    return paginated(request.url, pages, count, results)


@routes("GET", "/transactions/", summary="Every wallet's statement lines (secret key)")
async def all_transactions(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    wallet_id: str | None = None,
) -> dict[str, Any]:
    async with db.read(snapshot=True) as session:
        wallet_pk = None
        if wallet_id:
            wallet, _ = await queries.wallet_with_account(session, principal.business_pk, wallet_id)
            wallet_pk = wallet.id
        count, rows = await queries.statement_page(session, principal.business_pk, pages, wallet_pk)
    results = [transaction_json(p, w, i) for p, w, i in rows]
    return paginated(request.url, pages, count, results)


@routes(
    "POST",
    "/wallets/{wallet_id}/intra_transfer/",
    summary="Move money between two of your wallets (secret key)",
    openapi_extra=body_schema(IntraTransfer, idempotent=True),
)
async def intra_transfer(
    wallet_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, gate: Idempotent
) -> Response:
    return await gate.run(principal, lambda: _intra_transfer(wallet_id, principal, body, db))


async def _intra_transfer(
    wallet_id: str, principal: Principal, body: dict[str, Any], db: Database
) -> dict[str, Any]:
    request = validate_body(IntraTransfer, body)
    async with db.transaction() as session:
        source, source_account = await queries.wallet_with_account(
            session, principal.business_pk, wallet_id
        )
        try:
            destination, destination_account = await queries.wallet_with_account(
                session, principal.business_pk, request.wallet_id
            )
        except NotFound:
            raise ValidationFailed.field("wallet_id", "No wallet of yours has this id.") from None
        # The transfer locks and updates these same account objects (one identity map).
        moved = await transfer(session, source, destination, request.amount, request.narrative)
    return {
        "from_data": {
            "wallet": wallet_json(source, source_account),
            "transaction": transaction_json(moved.source_line, source, None),
        },
        "to_data": {
            "wallet": wallet_json(destination, destination_account),
            "transaction": transaction_json(moved.destination_line, destination, None),
        },
        "amount": format_minor(moved.amount_minor),
        "narrative": moved.narrative,
    }
