"""The merchant dashboard in a real browser (issue 16): signing in through the form, a push
made through the kulmipay SDK appearing on Payments and turning COMPLETE without a reload,
the payment timeline, and screenshots of every page at 1280 px and 390 px under
tests/artifacts/dashboard/ (not committed). Chromium as in tests/fixtures/browser.py:
skipped loudly without it, failing under CI=true."""

from typing import Any

import pytest

from tests.fixtures.browser import expect, shoot
from tests.fixtures.dashboard import PASSWORD, make_user

pytestmark = pytest.mark.db

WIDTHS = (1280, 390)
# The customer is held while the page is looked at: the prompt must outlive it, and no
# reconciliation query may settle the payment before the customer acts.
HUMAN_PACE = {"stk_prompt_ttl_s": 60.0, "reconcile_grace_s": 60.0}
HUMAN_SIMULATOR = {"prompt_ttl_s": 60.0}


def snap(page: Any, name: str) -> None:
    shoot(page, name, "dashboard", WIDTHS)


def sign_in(page: Any, gateway: Any, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{gateway.url}/dashboard/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_push_through_the_sdk_turns_complete_on_the_payments_page_without_a_reload(
    start_gateway, browser
):
    gateway = start_gateway(simulator=HUMAN_SIMULATOR, **HUMAN_PACE)
    business = gateway.merchant.business_id
    email = make_user(gateway.db_url, "owner@shop.example", business)
    page = browser.new_page(1280)
    page.goto(f"{gateway.url}/dashboard/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    snap(page, "login")
    sign_in(page, gateway, email, "a wrong password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    snap(page, "login-wrong-password")
    sign_in(page, gateway, email)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    phone = "254712345678"
    with gateway.holding(phone):
        answer = gateway.sdk().collect.mpesa_stk_push(
            phone_number=phone, amount=250, api_ref="order-browser"
        )
        invoice_id = answer["invoice"]["invoice_id"]
        page.goto(f"{gateway.url}/dashboard/b/{business}/payments/")
        row = page.locator(f'tr[data-invoice="{invoice_id}"]')
        expect(row.locator("[data-state]")).to_have_text("PROCESSING")
        snap(page, "payments-processing")
    # The customer types the PIN: the row changes on its own (no reload).
    page.evaluate("window.notReloaded = true")
    expect(row.locator("[data-state]")).to_have_text("COMPLETE", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True
    snap(page, "payments")

    page.goto(f"{gateway.url}/dashboard/b/{business}/")
    expect(page.get_by_text("KES 250.00").first).to_be_visible()
    snap(page, "overview")
    row_link = f"{gateway.url}/dashboard/b/{business}/payments/{invoice_id}/"
    page.goto(row_link)
    expect(page.get_by_role("heading", name="Callback received from M-Pesa")).to_be_visible()
    expect(page.get_by_role("heading", name="STK push sent to Daraja")).to_be_visible()
    snap(page, "payment-timeline")
    sections = ("developers", "team", "webhooks", "wallets", "settings")
    for section in sections:
        page.goto(f"{gateway.url}/dashboard/b/{business}/{section}/")
        snap(page, section)
    page.goto(f"{gateway.url}/dashboard/b/{business}/wallets/{gateway.merchant.wallet_id}/")
    expect(page.get_by_role("heading", name="Statement")).to_be_visible()
    snap(page, "wallet-statement")
    page.goto(f"{gateway.url}/dashboard/b/{business}/developers/rotate")
    snap(page, "rotate-confirm")
    page.get_by_label("Type rotate to confirm").fill("rotate")
    page.get_by_role("button", name="Rotate keys").click()
    expect(page.locator("#secret-key")).to_contain_text("ISSecretKey_")
    snap(page, "rotated")
    page.goto(f"{gateway.url}/dashboard/b/{gateway.other.business_id}/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{gateway.url}/dashboard/b/{business}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{gateway.url}/dashboard/b/{business}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_operator_page_and_a_lost_callbacks_timeline(start_gateway, browser):
    gateway = start_gateway()
    business = gateway.merchant.business_id
    email = make_user(gateway.db_url, "ops@pesagate.example", business, operator=True)
    # 254700009001: paid, but the callback never comes; reconciliation's query settles it.
    invoice_id = gateway.push("254700009001", 100)["invoice"]["invoice_id"]
    page = browser.new_page(1280)
    sign_in(page, gateway, email)
    expect(page.get_by_role("heading", name="Businesses")).to_be_visible()
    snap(page, "businesses")
    page.goto(f"{gateway.url}/dashboard/b/{business}/payments/{invoice_id}/")
    # The detail page reloads itself once the payment is final.
    expect(page.get_by_role("heading", name="STK Push Query").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Callback received from M-Pesa")).to_have_count(0)
    snap(page, "payment-timeline-lost-callback")
    page.goto(f"{gateway.url}/dashboard/operator/")
    expect(page.locator("#ledger-ok")).to_be_visible()
    snap(page, "operator")


def test_an_invitation_link_made_on_team_signs_the_new_member_in(start_gateway, browser):
    gateway = start_gateway()
    business = gateway.merchant.business_id
    owner = browser.new_page(1280)
    sign_in(owner, gateway, make_user(gateway.db_url, "owner@shop.example", business))
    owner.goto(f"{gateway.url}/dashboard/b/{business}/team/")
    owner.get_by_label("Email").fill("clerk@shop.example")
    owner.get_by_label("Role").select_option("developer")
    owner.get_by_role("button", name="Invite").click()
    link = owner.locator("#invitation-link")
    expect(link).to_contain_text("/dashboard/invitation/")
    snap(owner, "team-invited")
    clerk = browser.new_page(390)  # another browser: the person invited, on a phone
    clerk.goto(link.inner_text())
    expect(clerk.get_by_role("heading", name="Join")).to_be_visible()
    snap(clerk, "invitation")
    clerk.get_by_label("Password", exact=True).fill("my own long password")
    clerk.get_by_label("Password again").fill("my own long password")
    clerk.get_by_role("button", name="Create account and sign in").click()
    expect(clerk.get_by_role("heading", name="Overview")).to_be_visible()
    owner.reload()
    expect(owner.get_by_role("cell", name="clerk@shop.example")).to_be_visible()
    expect(owner.get_by_role("heading", name="Open invitations")).to_have_count(0)
