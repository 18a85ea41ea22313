"""Wallet endpoints (SPEC section 3): list, create, detail, statements, intra_transfer."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from pesagate.dependencies import DbDep, JsonBody, PageDep
from pesagate.idempotency.dependency import Idempotent
from pesagate.idempotency.service import Claim
from pesagate.kit.api import body_schema, routes_on, validate_body
from pesagate.kit.pagination import paginated
from pesagate.ledger import responses, service
from pesagate.ledger.schemas import IntraTransfer, WalletCreate
from pesagate.merchants.auth import SecretKeyAuth


def _invoices_json(request: Request) -> service.InvoicesJson:
    """How statement lines embed their invoices: wired by the composition root."""
    renderer: service.InvoicesJson = request.app.state.services.statement_invoices
    return renderer


InvoicesJsonDep = Annotated[service.InvoicesJson, Depends(_invoices_json)]

router = APIRouter(prefix="/api/v1", tags=["Wallets"])
routes = routes_on(router)


@routes("GET", "/wallets/", answers=responses.WalletPage, summary="Your wallets (secret key)")
async def list_wallets(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
) -> responses.WalletPage:
    count, results = await service.list_wallets(db, principal.business_pk, pages)
    return paginated(request.url, pages, count, results)


@routes(
    "POST",
    "/wallets/",
    answers=responses.Wallet,
    summary="Create a WORKING wallet (secret key)",
    openapi_extra=body_schema(WalletCreate, idempotent=True),
)
async def create_wallet(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, gate: Idempotent
) -> Response:
    async def create(held: Claim | None) -> responses.Wallet:
        request = validate_body(WalletCreate, body)
        return await service.create_wallet(db, principal.business_pk, request, held)

    return await gate.run(principal, create)


@routes("GET", "/wallets/{wallet_id}/", answers=responses.Wallet, summary="One wallet (secret key)")
async def wallet_detail(wallet_id: str, principal: SecretKeyAuth, db: DbDep) -> responses.Wallet:
    return await service.wallet_detail(db, principal.business_pk, wallet_id)


@routes(
    "GET",
    "/wallets/{wallet_id}/transactions/",
    answers=responses.TransactionPage,
    summary="A wallet's statement (secret key)",
)
async def wallet_statement(
    wallet_id: str,
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    invoices_json: InvoicesJsonDep,
) -> responses.TransactionPage:
    count, results = await service.statement(
        db, invoices_json, principal.business_pk, pages, wallet_id
    )
    return paginated(request.url, pages, count, results)


@routes(
    "GET",
    "/transactions/",
    answers=responses.TransactionPage,
    summary="Every wallet's statement lines (secret key)",
)
async def all_transactions(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    invoices_json: InvoicesJsonDep,
    wallet_id: str | None = None,
) -> responses.TransactionPage:
    count, results = await service.statement(
        db, invoices_json, principal.business_pk, pages, wallet_id
    )
    return paginated(request.url, pages, count, results)


@routes(
    "POST",
    "/wallets/{wallet_id}/intra_transfer/",
    answers=responses.IntraTransferDone,
    summary="Move money between two of your wallets (secret key)",
    openapi_extra=body_schema(IntraTransfer, idempotent=True),
)
async def intra_transfer(
    wallet_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, gate: Idempotent
) -> Response:
    async def move(held: Claim | None) -> responses.IntraTransferDone:
        request = validate_body(IntraTransfer, body)
        return await service.intra_transfer(db, principal.business_pk, wallet_id, request, held)

    return await gate.run(principal, move)
