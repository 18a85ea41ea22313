"""The Settings page: the business's profile and payment settings. Owners change the name, the
prompt's short name, the default tariff and the amount limits (through merchants' own rules: a
fee may never reach an allowed amount); the fee and clearing delay are the platform's, shown
read-only."""

from fastapi import APIRouter
from starlette.responses import Response

from pesagate.dashboard.web import (
    CAN_MANAGE_TEAM,
    PREFIX,
    AccessDep,
    FormDep,
    VisitorDep,
    page,
    require,
)
from pesagate.dependencies import DbDep
from pesagate.kit.money import AmountError, parse_amount_to_minor
from pesagate.merchants import service as merchants
from pesagate.merchants.service import PaymentSettingsUpdate
from pesagate.models import Tariff

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CAN_CHANGE_SETTINGS = CAN_MANAGE_TEAM  # owners


async def _settings_page(
    db: DbDep, access: AccessDep, visitor: VisitorDep, status: int = 200, **extra: object
) -> Response:
    business = await merchants.business_by_pk(db, access.business_pk)
    return page(
        "settings.html",
        status,
        visitor=visitor,
        access=access,
        business=business,
        tariffs=[tariff.value for tariff in Tariff],
        can_change=access.role in CAN_CHANGE_SETTINGS,
        nav="settings",
        **extra,
    )


@router.get("/b/{business_id}/settings/")
async def settings(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    return await _settings_page(db, access, visitor)


@router.post("/b/{business_id}/settings/")
async def change(access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep) -> Response:
    require(access, CAN_CHANGE_SETTINGS)
    tariff = form.get("default_tariff", "")
    update = PaymentSettingsUpdate(clear_default_tariff=tariff == "")
    try:
        if tariff:
            update.default_tariff = Tariff(tariff)
        update.min_amount_minor = parse_amount_to_minor(form.get("min_amount", ""))
        update.max_amount_minor = parse_amount_to_minor(form.get("max_amount", ""))
        await merchants.change_settings(db, access.business_id, update)
    except (AmountError, ValueError) as refused:
        return await _settings_page(db, access, visitor, 400, error=str(refused))
    return await _settings_page(db, access, visitor, notice="Settings saved.")


@router.post("/b/{business_id}/settings/profile")
async def change_profile(
    access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep
) -> Response:
    require(access, CAN_CHANGE_SETTINGS)
    try:
        await merchants.change_profile(
            db, access.business_pk, form.get("name", ""), form.get("short_name", "")
        )
    except ValueError as refused:
        return await _settings_page(db, access, visitor, 400, error=str(refused))
    return await _settings_page(db, access, visitor, notice="Profile saved.")
