"""The ledger's use cases: each opens its own transaction (or read) and calls the steps of
`postings`, `wallets` and `transfers`. Work on other domains' tables goes through hooks that
the composition root (`pesagate.services`) passes in."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pesagate.db import AnySession, AsyncReadSession, AsyncSession, Database
from pesagate.errors import NotFound, ValidationFailed
from pesagate.idempotency.service import Claim, complete_in
from pesagate.kit.pagination import Page
from pesagate.ledger import repository, responses
from pesagate.ledger.postings import release_clearing
from pesagate.ledger.schemas import IntraTransfer, WalletCreate
from pesagate.ledger.transfers import transfer
from pesagate.ledger.verify import verify
from pesagate.ledger.views import transaction_json, transfer_event_json, transfer_json, wallet_json
from pesagate.ledger.wallets import open_wallet
from pesagate.merchants.service import find_business
from pesagate.models import LedgerAccount, LedgerEntry, LedgerPosting, Topic, Wallet, WalletType
from pesagate.webhooks.emit import emit

# Statement lines embed their invoice as payments renders it: pks -> JSON, in the read.
InvoicesJson = Callable[[AsyncReadSession, set[int]], Awaitable[dict[int, Mapping[str, Any]]]]
# A collection's clearing was released: its invoice says so, in the release's transaction.
InvoiceReleased = Callable[[AsyncSession, int], Awaitable[None]]


async def list_wallets(
    db: Database, business_pk: int, page: Page
) -> tuple[int, list[responses.Wallet]]:
    async with db.read() as session:
        count, rows = await repository.wallets_page(session, business_pk, page)
    return count, [wallet_json(wallet, account) for wallet, account in rows]


async def wallet_detail(db: Database, business_pk: int, wallet_id: str) -> responses.Wallet:
    async with db.read() as session:
        wallet, account = await _wallet(session, business_pk, wallet_id)
    return wallet_json(wallet, account)


async def create_wallet(
    db: Database, business_pk: int, request: WalletCreate, held: Claim | None
) -> responses.Wallet:
    async with db.transaction() as session:
        wallet, account = await open_wallet(
            session,
            business_pk,
            request.currency,
            WalletType.WORKING,
            request.label,
            request.can_disburse,
        )
        answer = wallet_json(wallet, account)
        await complete_in(session, held, answer)
    return answer


async def statement(
    db: Database,
    invoices_json: InvoicesJson,
    business_pk: int,
    page: Page,
    wallet_id: str | None = None,
) -> tuple[int, list[responses.WalletTransaction]]:
    """Statement lines, newest first: of one wallet, or of every wallet of the business."""
    async with db.read(snapshot=True) as session:
        wallet_pk = None
        if wallet_id:
            wallet, _ = await _wallet(session, business_pk, wallet_id)
            wallet_pk = wallet.id
        count, rows = await repository.statement_page(session, business_pk, page, wallet_pk)
        invoices = await invoices_json(session, {pk for _, _, pk in rows if pk is not None})
    lines = [
        transaction_json(line, wallet, None if pk is None else invoices.get(pk))
        for line, wallet, pk in rows
    ]
    return count, lines


async def intra_transfer(
    db: Database, business_pk: int, wallet_id: str, request: IntraTransfer, held: Claim | None
) -> responses.IntraTransferDone:
    async with db.transaction() as session:
        source, _ = await _wallet(session, business_pk, wallet_id)
        try:
            destination, _ = await _wallet(session, business_pk, request.wallet_id)
        except NotFound:
            raise ValidationFailed.field("wallet_id", "No wallet of yours has this id.") from None
        moved = await transfer(session, source, destination, request.amount, request.narrative)
        await emit(
            session,
            business_pk,
            Topic.WALLET_TRANSFER,
            f"transfer:{moved.source_line.entry_id}",
            lambda: transfer_event_json(moved),
        )
        answer = transfer_json(moved)
        await complete_in(session, held, answer)  # moved once, whatever happens next
    return answer


async def release(db: Database, entry_pk: int, on_released: InvoiceReleased) -> None:
    """The clearing release job's work: the lines become AVAILABLE, then their invoice."""
    async with db.transaction() as session:
        released = await release_clearing(session, entry_pk)
        if released.lines and released.invoice_pk is not None:
            await on_released(session, released.invoice_pk)


async def merchant_wallets(db: Database, merchant: str) -> list[tuple[Wallet, LedgerAccount]]:
    """`pesagate wallet list`: a merchant's wallets, by business_id or exact name."""
    async with db.read(snapshot=True) as session:
        business = await find_business(session, merchant)
        return await repository.wallets_of(session, business.id)


async def findings(db: Database) -> list[str]:
    """`pesagate ledger verify`: every disagreement of the books with their postings."""
    async with db.read(snapshot=True) as session:
        return await verify(session)


async def report(db: Database) -> tuple[list[Any], list[Any]]:
    """`pesagate ledger report`: totals per merchant, and per platform account."""
    async with db.read(snapshot=True) as session:
        return await repository.merchant_totals(session), await repository.platform_totals(session)


async def _wallet(
    session: AnySession, business_pk: int, wallet_id: str
) -> tuple[Wallet, LedgerAccount]:
    found = await repository.wallet_with_account(session, business_pk, wallet_id)
    if found is None:
        raise NotFound("No wallet matches the given query.")
    return found


async def invoice_postings(
    db: Database, invoice_pk: int
) -> list[tuple[LedgerEntry, LedgerPosting, LedgerAccount]]:
    """The books of one invoice (the dashboard's payment timeline): entries and their lines."""
    async with db.read() as session:
        return await repository.postings_of_invoice(session, invoice_pk)
