"""The chargebacks API (KulmiPay's refunds; secret key): create, list, detail."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.dependencies import DbDep, JsonBody, PageDep
from pesagate.errors import ValidationFailed
from pesagate.idempotency.dependency import Idempotent
from pesagate.idempotency.service import Claim
from pesagate.kit.api import body_schema, routes_on
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import SecretKeyAuth
from pesagate.models import RefundStatus
from pesagate.refunds import responses, service
from pesagate.refunds.repository import RefundFilter
from pesagate.refunds.schemas import RefundCreate, parse_request

router = APIRouter(prefix="/api/v1", tags=["Refunds"])
routes = routes_on(router)


@routes(
    "POST",
    "/chargebacks/",
    answers=responses.Chargeback,
    status_code=201,
    summary="Refund a COMPLETE payment through an M-Pesa reversal (secret key)",
    openapi_extra=body_schema(RefundCreate, idempotent=True),
)
async def create_chargeback(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, gate: Idempotent
) -> Response:
    async def create(held: Claim | None) -> responses.Chargeback:
        request = parse_request(body)
        return await service.create_refund(db, principal.business_pk, request, held)

    response = await gate.run(principal, create)
    if response.status_code == 200:
        response.status_code = 201  # created (a replay too: it answers the same creation)
    return response


@routes(
    "GET",
    "/chargebacks/",
    answers=responses.ChargebackPage,
    summary="Your chargebacks, newest first; ?status= and ?invoice= filter (secret key)",
)
async def list_chargebacks(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    status: str | None = None,
    invoice: str | None = None,
) -> responses.ChargebackPage:
    if status and status not in RefundStatus.__members__:
        raise ValidationFailed.field("status", f'"{status[:50]}" is not a valid choice.')
    invoice_id = (invoice or "").strip()[:32].upper() or None
    where = RefundFilter(RefundStatus(status) if status else None, invoice_id)
    count, results = await service.list_refunds(db, principal.business_pk, where, pages)
    return paginated(request.url, pages, count, results)


@routes(
    "GET",
    "/chargebacks/{chargeback_id}/",
    answers=responses.Chargeback,
    summary="One chargeback (secret key)",
)
async def chargeback_detail(
    chargeback_id: str, principal: SecretKeyAuth, db: DbDep
) -> responses.Chargeback:
    return await service.refund_detail(db, principal.business_pk, chargeback_id[:32])
