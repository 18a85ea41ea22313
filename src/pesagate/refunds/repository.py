"""Every SQL statement on refunds' tables (refunds, reversal_results). Callers pass their
session; nothing here commits."""

from dataclasses import dataclass

from sqlalchemy import exists, func, select

from pesagate.db import AnySession, AsyncSession
from pesagate.models import Invoice, Refund, RefundStatus, ReversalResult


async def lock_refund(session: AsyncSession, **where: object) -> Refund | None:
    statement = select(Refund).filter_by(**where).with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def refund_pk_by_token(session: AnySession, token: str) -> int | None:
    pk: int | None = await session.scalar(select(Refund.id).where(Refund.token == token))
    return pk


async def refund_by_pk(session: AnySession, refund_pk: int) -> Refund | None:
    return await session.get(Refund, refund_pk)


async def refund_of(session: AnySession, business_pk: int, chargeback_id: str) -> Refund | None:
    return await session.scalar(
        select(Refund).where(
            Refund.business_id == business_pk, Refund.chargeback_id == chargeback_id
        )
    )


@dataclass(frozen=True, slots=True)
class RefundFilter:
    status: RefundStatus | None = None
    invoice_id: str | None = None  # the public invoice id


async def refunds_page(
    session: AnySession, business_pk: int, where: RefundFilter, offset: int, limit: int
) -> tuple[int, list[Refund]]:
    conditions = [Refund.business_id == business_pk]
    if where.status is not None:
        conditions.append(Refund.status == where.status)
    if where.invoice_id is not None:
        invoice_pks = select(Invoice.id).where(
            Invoice.business_id == business_pk, Invoice.invoice_id == where.invoice_id
        )
        conditions.append(Refund.invoice_id.in_(invoice_pks))
    count = await session.scalar(select(func.count()).select_from(Refund).where(*conditions))
    rows = await session.scalars(
        select(Refund)
        .where(*conditions)
        .order_by(Refund.created_at.desc(), Refund.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return count or 0, list(rows)


async def seen_result(session: AsyncSession, refund_pk: int, body_sha: str) -> bool:
    query = select(
        exists().where(
            ReversalResult.refund_id == refund_pk, ReversalResult.body_sha256 == body_sha
        )
    )
    return bool(await session.scalar(query))


def add_result(session: AsyncSession, result: ReversalResult) -> None:
    session.add(result)


def add_refund(session: AsyncSession, refund: Refund) -> None:
    session.add(refund)
