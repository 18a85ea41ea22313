"""Refunds from a payment's page (owners only): the refunds service checks what is left to
refund, holds the wallet debit and leaves the M-Pesa reversal to the worker, exactly as
`POST /chargebacks/` does."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.dashboard.pages import payment_page  # the page this form is on
from pesagate.dashboard.web import (
    CAN_REFUND,
    PREFIX,
    AccessDep,
    FormDep,
    PageRefused,
    VisitorDep,
    require,
)
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.errors import ApiError, ValidationFailed
from pesagate.refunds import service
from pesagate.refunds.schemas import parse_request

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _problem(error: ApiError) -> str:
    if isinstance(error, ValidationFailed):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.errors.items())
    return str(error.detail)


@router.post("/b/{business_id}/payments/{invoice_id}/refund")
async def refund(
    request: Request,
    invoice_id: str,
    access: AccessDep,
    visitor: VisitorDep,
    form: FormDep,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    require(access, CAN_REFUND)
    if not settings.refunds_on:
        raise PageRefused(404, "Not found", "Refunds are not enabled on this gateway.")
    if form.get("confirm") != "yes":
        return await payment_page(
            db, settings, access, visitor, invoice_id, 400, refund_error="Tick the confirmation."
        )
    body = {
        "invoice_id": invoice_id[:40],
        "amount": form.get("amount", ""),
        "reason": form.get("reason", ""),
        "reason_details": form.get("reason_details") or None,
    }
    try:
        created = await service.create_refund(db, access.business_pk, parse_request(body))
    except ApiError as refused:
        return await payment_page(
            db, settings, access, visitor, invoice_id, 400, refund_error=_problem(refused)
        )
    notice = (
        f"Refund {created['chargeback_id']} of {created['currency']} {created['amount']} started."
    )
    return await payment_page(db, settings, access, visitor, invoice_id, refund_notice=notice)
