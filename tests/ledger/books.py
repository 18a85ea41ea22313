"""Driving the books directly through the services (no HTTP), for property and concurrency
tests: merchants, invoices taken to COMPLETE or FAILED by the state machine, transfers."""

from dataclasses import dataclass

from sqlalchemy import func, select

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.errors import ValidationFailed
from pesagate.kit.api import validate_body
from pesagate.ledger.postings import wallet_account
from pesagate.ledger.service import findings
from pesagate.ledger.transfers import transfer
from pesagate.ledger.wallets import open_wallet
from pesagate.models import (
    Environment,
    Invoice,
    LedgerEntry,
    LedgerPosting,
    Wallet,
    WalletType,
)
from pesagate.payments import repository, state
from pesagate.payments.schemas import StkPushRequest
from pesagate.payments.service import NewInvoice, create_invoice, payment_context
from pesagate.services import create_merchant


@dataclass
class Books:
    db: Database
    settings: Settings

    async def merchant(
        self, name: str = "Shop", clearing_delay_s: int = 0
    ) -> tuple[int, Wallet, Wallet]:
        """A business with its settlement wallet and one working wallet."""
        async with self.db.transaction() as session:
            new = await create_merchant(session, name, Environment.SANDBOX)
            new.business.clearing_delay_s = clearing_delay_s
            working, _ = await open_wallet(
                session, new.business.id, "KES", WalletType.WORKING, "working"
            )
            return new.business.id, new.settlement_wallet, working

    async def invoice(self, business_pk: int, amount: int, tariff: str = "BUSINESS-PAYS") -> int:
        return (await self.pushed(business_pk, amount, tariff)).id

    async def pushed(
        self, business_pk: int, amount: int, tariff: str = "BUSINESS-PAYS"
    ) -> NewInvoice:
        """A push's phase 1: the PENDING invoice as committed, before Daraja is called."""
        context = await payment_context(self.db, business_pk)
        async with self.db.transaction() as session:
            request = validate_body(
                StkPushRequest,
                {"phone_number": "254712345678", "amount": amount, "mobile_tarrif": tariff},
                context,
            )
            return await create_invoice(session, self.settings, context, request)

    async def complete(self, invoice_pk: int, receipt: str = "UKS1234567") -> bool:
        async with self.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=invoice_pk)
            return await state.complete(session, invoice, receipt)

    async def fail(self, invoice_pk: int, code: str = "1032") -> bool:
        async with self.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=invoice_pk)
            return await state.fail(session, invoice, code, "Request cancelled by user")

    async def transfer(self, source: Wallet, destination: Wallet, amount_minor: int) -> bool:
        """True when moved, False when refused for insufficient funds."""
        try:
            async with self.db.transaction() as session:
                await transfer(session, source, destination, amount_minor, "test transfer")
            return True
        except ValidationFailed as refused:
            assert "amount" in refused.errors
            return False

    async def balances(self, wallet: Wallet) -> tuple[int, int]:
        async with self.db.read() as session:
            account = await wallet_account(session, wallet.id)
            return account.balance_minor, account.available_minor

    async def statement_sum(self, wallet: Wallet) -> int:
        async with self.db.read() as session:
            account = await wallet_account(session, wallet.id)
            total = await session.scalar(
                select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0)).where(
                    LedgerPosting.account_id == account.id
                )
            )
            return int(total or 0)

    async def collection_entries(self, invoice_pk: int) -> int:
        async with self.db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.invoice_id == invoice_pk)
            )
            return int(count or 0)

    async def invoice_row(self, invoice_pk: int) -> Invoice:
        async with self.db.read() as session:
            invoice = await session.get(Invoice, invoice_pk)
            assert invoice is not None
            return invoice

    async def findings(self) -> list[str]:
        return await findings(self.db)
