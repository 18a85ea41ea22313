"""Payments' tests work on a fresh database of each backend through the ledger tests' `Books`."""

from tests.ledger.conftest import books

__all__ = ["books"]
