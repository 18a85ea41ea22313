"""The merchant dashboard over HTTP (issue 16): sign-in, throttling, sessions (expiry,
revocation, restarts), CSRF, roles enforced on the server, per-business isolation, the
payments list and its CSV export against the API's list, the payment timeline, key
rotation. Browser behaviour (live rows, screenshots) is in test_dashboard_browser.py."""

import contextlib
import csv
import html
import io
import re
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import PASSWORD, DashboardClient, csrf_of, make_user
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until

pytestmark = pytest.mark.db


@pytest.fixture
def dash_of() -> Any:
    """Signed-out dashboard clients of a gateway, closed at the end of the test."""
    clients: list[DashboardClient] = []

    def of(gateway: Any) -> Any:
        def open_client() -> DashboardClient:
            client = DashboardClient(gateway.url)
            clients.append(client)
            return client

        return open_client

    yield of
    for client in clients:
        client.close()


@pytest.fixture
def dash(gateway: Any, dash_of: Any) -> Any:
    return dash_of(gateway)


def test_sign_in_shows_the_overview_and_sign_out_ends_the_session(gateway, dash):
    email = make_user(gateway.db_url, "Owner@Shop.example", gateway.merchant.business_id)
    client = dash()
    assert client.get("/").status_code == 303  # to the sign-in page
    answer = client.sign_in(email.lower())
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    overview = client.get(f"/b/{gateway.merchant.business_id}/")
    assert overview.status_code == 200 and "Overview" in overview.text
    session_cookie = client.http.cookies["pesagate_session"]
    assert client.post_form(f"/b/{gateway.merchant.business_id}/", "/logout", {}).status_code == 303
    # The old cookie, replayed, is refused: the session was revoked on the server.
    replay = httpx.get(
        f"{gateway.url}/dashboard/b/{gateway.merchant.business_id}/",
        cookies={"pesagate_session": session_cookie},
        trust_env=False,
        verify=SHARED_SSL_CONTEXT,
    )
    assert replay.status_code == 303 and "/dashboard/login" in replay.headers["location"]


def test_wrong_password_and_unknown_email_get_one_answer(gateway, dash):
    make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    wrong = dash().sign_in("owner@shop.example", "not the password")
    unknown = dash().sign_in("nobody@shop.example", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert "pesagate_session" not in wrong.cookies


def test_repeated_failures_lock_the_account_even_for_the_right_password(start_gateway, dash):
    gateway = start_gateway(dashboard_login_max_failures=3, dashboard_lockout_s=600)
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = DashboardClient(gateway.url)
    try:
        for _ in range(3):
            assert client.sign_in(email, "guess-guess-guess").status_code == 401
        locked = client.sign_in(email)  # the right password
        assert locked.status_code == 429 and "locked" in locked.text
        assert "pesagate_session" not in client.http.cookies
    finally:
        client.close()


def test_an_expired_session_asks_to_sign_in_again(start_gateway):
    gateway = start_gateway(dashboard_session_ttl_s=0.5)
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = DashboardClient(gateway.url)
    try:
        assert client.sign_in(email).status_code == 303
        overview = f"/b/{gateway.merchant.business_id}/"
        wait_until(
            lambda: client.get(overview).status_code == 303, 30, what="the session to expire"
        )
        assert "/dashboard/login" in client.get(overview).headers["location"]
    finally:
        client.close()


def test_sessions_survive_a_restart(start_gateway, db_url):
    first = start_gateway()
    email = make_user(first.db_url, "owner@shop.example", first.merchant.business_id)
    client = DashboardClient(first.url)
    assert client.sign_in(email).status_code == 303
    token = client.http.cookies["pesagate_session"]
    client.close()
    second = start_gateway()  # another process's view: nothing kept in memory
    answer = httpx.get(
        f"{second.url}/dashboard/b/{second.merchant.business_id}/",
        cookies={"pesagate_session": token},
        trust_env=False,
        verify=SHARED_SSL_CONTEXT,
    )
    assert answer.status_code == 200


def test_forms_without_the_right_csrf_token_are_refused(gateway, dash):
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = dash()
    client.sign_in(email)
    business = gateway.merchant.business_id
    rotate = f"/b/{business}/developers/rotate"
    missing = client.http.post(rotate, data={"confirm": "rotate"})
    wrong = client.http.post(rotate, data={"confirm": "rotate", "csrf": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    logout = client.http.post("/logout", data={})
    assert logout.status_code == 403
    # The keys still work: nothing was rotated.
    with gateway.client(gateway.merchant.secret_key) as api:
        assert api.get("/invoices/").status_code == 200
    # Every form of the dashboard, present and future: a signed-in owner's POST without the
    # token, or with another, is refused before anything runs.
    for path in _dashboard_post_paths(business):
        for data in ({}, {"csrf": "x" * 43}):
            answer = client.http.post(path, data={**data, "confirm": "yes"})
            assert answer.status_code == 403, (path, answer.status_code)
    # Sign-in's own form is protected too (double-submit cookie).
    anonymous = dash()
    refused = anonymous.http.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf": "made-up"}
    )
    assert refused.status_code == 403


def _dashboard_post_paths(business_id: str) -> list[str]:
    """The path of every POST route under /dashboard, its parameters filled in (ids that need
    not exist: the CSRF check comes first)."""
    from pesagate.app import create_app
    from pesagate.config import Settings

    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
    filled = {"business_id": business_id, "invitation_pk": "1", "token": "t" * 43}
    paths = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/dashboard/") and "POST" in getattr(route, "methods", ()):
            relative = path.removeprefix("/dashboard")
            paths.append(re.sub(r"{(\w+)}", lambda m: filled.get(m.group(1), "x"), relative))
    assert len(paths) >= 14, paths  # every form there is today
    return paths


def test_a_viewer_cannot_rotate_keys_or_invite_even_by_direct_post(gateway, dash):
    business = gateway.merchant.business_id
    email = make_user(gateway.db_url, "viewer@shop.example", business, role="viewer")
    client = dash()
    client.sign_in(email)
    developers = client.get(f"/b/{business}/developers/")
    assert developers.status_code == 200 and "Rotate keys" not in developers.text
    assert client.get(f"/b/{business}/developers/rotate").status_code == 403
    rotate = client.post_form(
        f"/b/{business}/developers/", f"/b/{business}/developers/rotate", {"confirm": "rotate"}
    )
    assert rotate.status_code == 403
    invite = client.post_form(
        f"/b/{business}/team/",
        f"/b/{business}/team/invite",
        {"email": "new@shop.example", "role": "owner"},
    )
    assert invite.status_code == 403
    with gateway.client(gateway.merchant.secret_key) as api:
        assert api.get("/invoices/").status_code == 200
    team = client.get(f"/b/{business}/team/")
    assert "new@shop.example" not in team.text
    # Every other owner or developer action, by hand-made POSTs with the viewer's token.
    token = csrf_of(team.text)
    for action, data in (
        ("webhooks/add", {"endpoint": "http://127.0.0.1:9/hook", "challenge": "c"}),
        ("webhooks/x/test", {}),
        ("webhooks/x/active", {"active": "false"}),
        ("webhooks/events/x/replay", {}),
        ("team/invitations/1/revoke", {}),
        ("settings/", {"default_tariff": "", "min_amount": "10", "max_amount": "100"}),
        ("settings/profile", {"name": "Mine", "short_name": ""}),
        (f"wallets/{gateway.merchant.wallet_id}/transfer", {"amount": "1", "confirm": "yes"}),
        ("payments/x/refund", {"confirm": "yes"}),
    ):
        answer = client.http.post(f"/b/{business}/{action}", data={"csrf": token, **data})
        assert answer.status_code == 403, (action, answer.status_code)


def test_another_business_and_its_invoices_answer_404(gateway, dash):
    mine = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    theirs = gateway.push("254712345678", 100, merchant=gateway.other)["invoice"]["invoice_id"]
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = dash()
    client.sign_in(email)
    business, other = gateway.merchant.business_id, gateway.other.business_id
    assert client.get(f"/b/{business}/payments/{mine}/").status_code == 200
    assert client.get(f"/b/{business}/payments/{theirs}/").status_code == 404
    for path in ("/", "/payments/", f"/payments/{theirs}/", "/developers/", "/team/"):
        assert client.get(f"/b/{other}{path}").status_code == 404, path
    assert client.get(f"/b/{other}/payments.csv").status_code == 404
    # Search: an id of ours opens it; theirs is as unknown as a made-up one.
    found = client.get(f"/b/{business}/payments/", params={"q": mine.lower()})
    assert found.status_code == 303 and found.headers["location"].endswith(f"/{mine}/")
    hidden = client.get(f"/b/{business}/payments/", params={"q": theirs})
    assert hidden.status_code == 200 and "No payment has the id or receipt" in hidden.text
    states = client.get(f"/b/{business}/payments/states", params={"ids": f"{mine},{theirs}"})
    assert set(states.json()) == {mine}


def test_an_operator_sees_every_business(start_gateway, dash_of):
    gateway = start_gateway()
    dash = dash_of(gateway)
    email = make_user(
        gateway.db_url, "ops@pesagate.example", gateway.merchant.business_id, operator=True
    )
    client = dash()
    client.sign_in(email)
    home = client.get("/")
    assert gateway.merchant.business_id in home.text and gateway.other.business_id in home.text
    assert client.get(f"/b/{gateway.other.business_id}/payments/").status_code == 200
    # Where not a member, an operator is a viewer: no owner actions.
    other_settings = f"/b/{gateway.other.business_id}/settings/"
    form = {"min_amount": "10", "max_amount": "100"}
    assert client.post_form(other_settings, other_settings, form).status_code == 403
    gateway.wait_final(gateway.push("254712345678", 100)["invoice"]["invoice_id"])

    # `ledger verify` runs in the background; the page shows its result once it has one.
    operator = _checked_operator_page(client)
    assert operator.status_code == 200 and 'id="ledger-ok"' in operator.text
    assert "s ago by this process" in operator.text
    assert gateway.other.business_id in operator.text and "stk_push" in operator.text
    assert "held, refreshed in" in operator.text and "accepted" in operator.text
    member = dash()
    member.sign_in(make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id))
    assert member.get("/operator/").status_code == 404
    # Books that do not balance: another process (no result kept yet) shows what verify found.
    _tamper_a_wallet_balance(gateway)
    another = dash_of(start_gateway())()
    another.sign_in(email)
    found = _checked_operator_page(another)
    assert "1 finding(s)" in found.text and 'id="ledger-ok"' not in found.text


def _checked_operator_page(client: DashboardClient) -> httpx.Response:
    def checked() -> httpx.Response | None:
        answer = client.get("/operator/")
        return None if 'id="ledger-checking"' in answer.text else answer

    return wait_until(checked, 30, what="the ledger check's result")  # type: ignore[no-any-return]


def _tamper_a_wallet_balance(gateway: Any) -> None:
    import asyncio

    from sqlalchemy import text

    from pesagate.db import Database

    async def tamper() -> None:
        db = Database(gateway.db_url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    text(
                        "UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE id = "
                        "(SELECT MIN(id) FROM ledger_accounts WHERE wallet_id IS NOT NULL)"
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(tamper())


def _api_invoices(gateway: Any, **filters: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with gateway.client(gateway.merchant.secret_key) as api:
        page = api.get("/invoices/", params={**filters, "page_size": 500}).json()
        results.extend(page["results"])
    return results


# A prompt that stays open as long as the test runs: its customer never types the PIN.
SLOW_PROMPTS = {"stk_prompt_ttl_s": 120.0, "reconcile_grace_s": 120.0}


def test_payments_filters_and_csv_export_match_the_api(start_gateway, dash_of, monkeypatch):
    gateway = start_gateway(simulator={"prompt_ttl_s": 120.0}, **SLOW_PROMPTS)
    dash = dash_of(gateway)
    paid = [gateway.push("254712345678", amount, api_ref=f"order-{amount}") for amount in (10, 20)]
    failed = gateway.push("254700001032", 30, api_ref="order-30")
    for push in (*paid, failed):
        gateway.wait_final(push["invoice"]["invoice_id"])
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = dash()
    client.sign_in(email)
    base = f"/b/{gateway.merchant.business_id}"
    complete = client.get(f"{base}/payments/", params={"state": "COMPLETE"})
    assert complete.status_code == 200 and "2 payments" in complete.text
    by_amount = client.get(f"{base}/payments/", params={"min": "15", "max": "25"})
    assert "1 payment ·" in by_amount.text and "order-20" in by_amount.text
    receipt = gateway.status(paid[0]["invoice"]["invoice_id"])["mpesa_reference"]
    by_receipt = client.get(f"{base}/payments/", params={"q": receipt})
    assert by_receipt.headers["location"].endswith(f"/{paid[0]['invoice']['invoice_id']}/")
    by_phone = client.get(f"{base}/payments/", params={"phone": "0700001032"})
    assert "1 payment ·" in by_phone.text and "order-30" in by_phone.text
    assert client.get(f"{base}/payments/", params={"min": "abc"}).status_code == 400
    assert client.get(f"{base}/payments/", params={"state": "PAID"}).status_code == 400
    # Hostile filters: refused as the API refuses them, never a 500.
    for hostile in (
        {"min": "1e2000000"},
        {"max": "\uff11\uff12"},
        {"from": "\u0662\u0660\u0662\u0666-01-01"},
    ):
        for path in ("/payments/", "/payments.csv"):
            assert client.get(f"{base}{path}", params=hostile).status_code == 400, hostile
    last_day = client.get(f"{base}/payments/", params={"to": "9999-12-31"})
    assert last_day.status_code == 200 and "3 payments ·" in last_day.text
    future = client.get(f"{base}/payments/", params={"from": "2999-01-01"})
    assert future.status_code == 200 and "0 payments" in future.text
    past = client.get(f"{base}/payments/", params={"to": "2000-01-01"})
    assert past.status_code == 200 and "0 payments" in past.text
    for filters in ({}, {"state": "COMPLETE"}, {"api_ref": "order-30"}):
        exported = client.get(f"{base}/payments.csv", params=filters)
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        api = _api_invoices(gateway, **filters)
        assert [r["invoice_id"] for r in rows] == [i["invoice_id"] for i in api]
        assert [r["state"] for r in rows] == [i["state"] for i in api]
        assert [r["value"] for r in rows] == [str(i["value"]) for i in api]
    # The overview's pending figure links to every invoice still open, PENDING or PROCESSING.
    assert 'payments/?state=OPEN"' in client.get(f"{base}/").text
    assert "0 payments ·" in client.get(f"{base}/payments/", params={"state": "OPEN"}).text
    open_id = gateway.push("254700009008", 40)["invoice"]["invoice_id"]  # waits for a PIN
    still_open = client.get(f"{base}/payments/", params={"state": "OPEN"})
    assert "1 payment ·" in still_open.text and open_id in still_open.text
    # Past the count cap (10,000; here 2 of 4, one per page), the list says so and pages stop.
    from pesagate.dashboard import pages

    for name, value in (("COUNT_CAP", 2), ("LAST_PAGE", 2), ("PAGE_SIZE", 1)):
        monkeypatch.setattr(pages, name, value)
    capped = client.get(f"{base}/payments/", params={"page": "7"})
    assert "More than 2 payments" in capped.text and "Page 2 of 2" in capped.text
    assert 'rel="next"' not in capped.text and capped.text.count("<tr data-invoice=") == 1


def test_a_lost_callback_shows_the_queries_that_settled_it(gateway, dash):
    # 254700009001: M-Pesa takes the money but its callback never comes.
    push = gateway.push("254700009001", 100)
    invoice_id = push["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    assert gateway.callbacks(invoice_id) == []
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = dash()
    client.sign_in(email)
    detail = client.get(f"/b/{gateway.merchant.business_id}/payments/{invoice_id}/")
    assert detail.status_code == 200
    html = detail.text
    assert "STK push sent to Daraja" in html
    assert "STK Push Query" in html and "QueryFinal" in html
    assert "Callback received" not in html
    assert "Ledger entry" in html and "Completed" in html


def test_the_timeline_shows_the_callback_as_received_and_the_webhook_attempts(
    gateway, dash, callback_receiver
):
    with gateway.client(gateway.merchant.secret_key) as api:
        hook = {"endpoint": callback_receiver.url + "/hooks", "challenge": "c"}
        assert api.post("/webhooks/", json=hook).status_code == 200
    invoice_id = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = dash()
    client.sign_in(email)
    detail = f"/b/{gateway.merchant.business_id}/payments/{invoice_id}/"
    html = wait_until(
        lambda: (
            (text := client.get(detail).text).count("<dt>Response</dt><dd>200</dd>") >= 2 and text
        ),
        30,
        what="the webhook attempts (PROCESSING, COMPLETE) on the timeline",
    )
    assert "Callback received from M-Pesa" in html and "<dt>Outcome</dt>" in html
    assert "stkCallback" in html  # the raw body, as received (escaped)
    assert re.search(r"Webhook \S+ delivery", html)


def test_key_rotation_confirms_shows_the_secret_once_and_stops_the_old_key(gateway, dash):
    business = gateway.merchant.business_id
    email = make_user(gateway.db_url, "dev@shop.example", business, role="developer")
    client = dash()
    client.sign_in(email)
    developers = client.get(f"/b/{business}/developers/").text
    assert "254700009008" in developers  # the sandbox numbers
    # The SDK snippet, as a developer pastes it with their secret key, pushes for real.
    snippet = html.unescape(developers.split('<pre class="copy">')[1].split("</pre>")[0])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet.replace("YOUR_SECRET_KEY", gateway.merchant.secret_key), {})
    assert "'state': 'PROCESSING'" in printed.getvalue() or "PENDING" in printed.getvalue()
    confirm = client.get(f"/b/{business}/developers/rotate")
    assert confirm.status_code == 200 and "stop working" in confirm.text
    unconfirmed = client.http.post(
        f"/b/{business}/developers/rotate", data={"csrf": csrf_of(confirm.text)}
    )
    assert unconfirmed.status_code == 400
    rotated = client.http.post(
        f"/b/{business}/developers/rotate",
        data={"csrf": csrf_of(confirm.text), "confirm": "rotate"},
    )
    assert rotated.status_code == 200
    new_secret = rotated.text.split('id="secret-key">')[1].split("<")[0]
    assert new_secret.startswith("ISSecretKey_") and new_secret != gateway.merchant.secret_key
    with gateway.client(gateway.merchant.secret_key) as api:
        assert api.get("/invoices/").status_code == 401
    with gateway.client(new_secret) as api:
        assert api.get("/invoices/").status_code == 200
    developers = client.get(f"/b/{business}/developers/").text
    assert new_secret not in developers  # shown once


def _invitation_link(answer: httpx.Response) -> str:
    """The dashboard path of the link the Team page shows once."""
    link = answer.text.split('id="invitation-link">')[1].split("<")[0]
    return "/" + link.split("/dashboard/", 1)[1]


def _accept(client: DashboardClient, path: str, password: str, again: str | None = None):
    form = client.get(path)
    assert form.status_code == 200, form.text
    data = {"csrf": csrf_of(form.text), "password": password, "password_again": again or password}
    return client.http.post(path, data=data)


def test_an_invited_viewer_chooses_a_password_on_the_link_and_it_works_once(gateway, dash):
    business = gateway.merchant.business_id
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    team = f"/b/{business}/team/"
    invited = owner.post_form(
        team, f"{team}invite", {"email": "Clerk@Shop.example", "role": "viewer"}
    )
    assert invited.status_code == 200
    link = _invitation_link(invited)
    listed = owner.get(team).text
    assert "clerk@shop.example" in listed and link.rsplit("/", 1)[1] not in listed  # shown once
    clerk = dash()
    page = clerk.get(link)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "clerk@shop.example" in page.text and "viewer" in page.text
    assert _accept(clerk, link, "a good long password", "another one").status_code == 400
    assert _accept(clerk, link, "short").status_code == 400
    joined = _accept(clerk, link, "a good long password")
    assert joined.status_code == 303 and joined.headers["location"] == f"/dashboard/b/{business}/"
    overview = clerk.get(f"/b/{business}/")
    assert overview.status_code == 200 and "Overview" in overview.text  # signed in
    assert "Invite</h2>" not in clerk.get(team).text  # a viewer (direct POSTs: test above)
    # The link is spent; the password chosen on it signs in.
    assert dash().get(link).status_code == 404
    assert _accept_fresh(dash(), link, "a good long password").status_code == 404
    assert dash().sign_in("clerk@shop.example", "a good long password").status_code == 303
    assert "clerk@shop.example</td><td>viewer" in owner.get(team).text


def _accept_fresh(client: DashboardClient, path: str, password: str) -> httpx.Response:
    """A POST to a spent link, with a CSRF pair the browser could hold from the sign-in form."""
    token = csrf_of(client.get("/login").text)
    return client.http.post(
        path, data={"csrf": token, "password": password, "password_again": password}
    )


def test_a_revoked_or_replaced_invitation_link_no_longer_opens(gateway, dash):
    business = gateway.merchant.business_id
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    team = f"/b/{business}/team/"
    ask = {"email": "dev@shop.example", "role": "developer"}
    first = _invitation_link(owner.post_form(team, f"{team}invite", ask))
    second = _invitation_link(owner.post_form(team, f"{team}invite", ask))
    assert dash().get(first).status_code == 404  # replaced by the second
    assert dash().get(second).status_code == 200
    listed = owner.get(team).text
    assert listed.count("dev@shop.example") == 1
    revoke = re.search(r'action="/dashboard(/b/[^"]+/revoke)"', listed)
    assert revoke is not None
    assert owner.post_form(team, revoke.group(1), {}).status_code == 303
    assert dash().get(second).status_code == 404
    assert "dev@shop.example" not in owner.get(team).text
    assert dash().get("/invitation/" + "x" * 500).status_code == 404


def test_inviting_someone_with_an_account_adds_them_at_once(gateway, dash):
    business = gateway.merchant.business_id
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    make_user(gateway.db_url, "known@shop.example", gateway.other.business_id, role="viewer")
    team = f"/b/{business}/team/"
    added = owner.post_form(
        team, f"{team}invite", {"email": "known@shop.example", "role": "developer"}
    )
    assert added.status_code == 200 and 'id="invitation-link"' not in added.text
    assert "known@shop.example</td><td>developer" in added.text
    known = dash()
    assert known.sign_in("known@shop.example", PASSWORD).status_code == 303  # their own password
    assert known.get(f"/b/{business}/webhooks/").status_code == 200
    # An account made after the invitation (by `pesagate user create`) joins through it, and
    # keeps its password: the link signs no one in with a password chosen there.
    link = _invitation_link(
        owner.post_form(team, f"{team}invite", {"email": "late@shop.example", "role": "viewer"})
    )
    make_user(gateway.db_url, "late@shop.example", gateway.other.business_id, role="viewer")
    refused = _accept(dash(), link, "a password chosen on the link")
    assert refused.status_code == 400 and "is now a member" in refused.text
    assert "late@shop.example</td><td>viewer" in owner.get(team).text
    assert dash().sign_in("late@shop.example", "a password chosen on the link").status_code == 401
    assert dash().get(link).status_code == 404  # used


def test_webhook_add_test_disable_and_replay_from_the_dashboard(gateway, dash, callback_receiver):
    from standardwebhooks import Webhook

    business = gateway.merchant.business_id
    client = dash()
    client.sign_in(make_user(gateway.db_url, "dev@shop.example", business, role="developer"))
    page = f"/b/{business}/webhooks/"
    refused = client.post_form(page, f"{page}add", {"endpoint": "ftp://nowhere", "challenge": "c"})
    assert refused.status_code == 400
    added = client.post_form(
        page, f"{page}add", {"endpoint": callback_receiver.url + "/hooks", "challenge": "ch-1"}
    )
    assert added.status_code == 200
    secret = added.text.split('id="signing-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    assert secret not in client.get(page).text  # shown once
    webhook_id = added.text.split('data-webhook="')[1].split('"')[0]
    tested = client.post_form(page, f"{page}{webhook_id}/test", {})
    assert tested.status_code == 200
    request = callback_receiver.wait_for("/hooks")[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    payload = Webhook(secret).verify(request.body.decode(), headers)
    assert payload["challenge"] == "ch-1" and payload["topic"] == "test_event"
    wait_until(
        lambda: '<span class="attempt">200</span>' in client.get(page).text,
        30,
        what="the attempt's response code on the page",
    )
    disabled = client.post_form(page, f"{page}{webhook_id}/active", {"active": "false"})
    assert disabled.status_code == 200 and ">Enable<" in disabled.text
    # Another business's webhook answers 404, under its business's URL or under ours.
    with gateway.client(gateway.other.secret_key) as api:
        theirs = api.post("/webhooks/", json={"endpoint": callback_receiver.url, "challenge": "x"})
    theirs_id = theirs.json()["id"]
    assert client.post_form(page, f"{page}{theirs_id}/test", {}).status_code == 404
    assert (
        client.post_form(page, f"{page}{theirs_id}/active", {"active": "false"}).status_code == 404
    )
    assert theirs_id not in client.get(page).text
    # A viewer may not test.
    other = client.post_form(page, f"/b/{gateway.other.business_id}/webhooks/{webhook_id}/test", {})
    assert other.status_code == 404
    viewer = dash()
    viewer.sign_in(make_user(gateway.db_url, "viewer@shop.example", business, role="viewer"))
    assert viewer.post_form(page, f"{page}{webhook_id}/test", {}).status_code == 403


def test_an_owner_refunds_from_the_payment_page_and_others_may_not(gateway, dash):
    invoice_id = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    business = gateway.merchant.business_id
    page = f"/b/{business}/payments/{invoice_id}/"
    action = f"{page}refund"
    developer = dash()
    developer.sign_in(make_user(gateway.db_url, "dev@shop.example", business, role="developer"))
    assert "Refund</button>" not in developer.get(page).text
    form = {"amount": "100", "reason": "Other", "confirm": "yes"}
    assert developer.post_form(page, action, form).status_code == 403
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    unconfirmed = owner.post_form(page, action, {**form, "confirm": ""})
    assert unconfirmed.status_code == 400 and "Tick the confirmation" in unconfirmed.text
    too_much = owner.post_form(page, action, {**form, "amount": "150"})
    assert too_much.status_code == 400
    partial = owner.post_form(page, action, {**form, "amount": "40"})
    assert partial.status_code == 400 and "whole payments only" in partial.text
    done = owner.post_form(page, action, form)
    assert done.status_code == 200, done.text.split('role="alert">')[-1][:300]
    assert "started" in done.text
    with gateway.client(gateway.merchant.secret_key) as api:
        refunds = api.get("/chargebacks/", params={"invoice": invoice_id}).json()["results"]
    assert [(r["amount"], r["reason"]) for r in refunds] == [("100.00", "Other")]
    wait_until(
        lambda: "COMPLETED" in owner.get(page).text, 60, what="the refund to complete on the page"
    )


def test_wallets_statement_csv_matches_the_api_and_an_owner_transfers(gateway, dash):
    business, settlement = gateway.merchant.business_id, gateway.merchant.wallet_id
    with gateway.client(gateway.merchant.secret_key) as api:
        working = api.post("/wallets/", json={"currency": "KES", "label": "Rent"}).json()
    invoice_id = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    listing = owner.get(f"/b/{business}/wallets/")
    assert listing.status_code == 200 and "Rent" in listing.text
    page = f"/b/{business}/wallets/{settlement}/"
    form = {"to": working["wallet_id"], "amount": "50", "narrative": "rent", "confirm": "yes"}
    assert owner.post_form(page, f"{page}transfer", {**form, "confirm": ""}).status_code == 400
    moved = owner.post_form(page, f"{page}transfer", form)
    assert moved.status_code == 200 and "Moved KES 50.00" in moved.text
    too_much = owner.post_form(page, f"{page}transfer", {**form, "amount": "5000"})
    assert too_much.status_code == 400
    with gateway.client(gateway.merchant.secret_key) as api:
        lines = api.get(f"/wallets/{settlement}/transactions/").json()["results"]
        balance = api.get(f"/wallets/{settlement}/").json()["available_balance"]
    rows = list(csv.DictReader(io.StringIO(owner.get(f"{page}statement.csv").text)))
    assert [r["transaction_id"] for r in rows] == [line["transaction_id"] for line in lines]
    assert [r["running_balance"] for r in rows] == [str(line["running_balance"]) for line in lines]
    assert f"KES {balance}" in owner.get(page).text
    viewer = dash()
    viewer.sign_in(make_user(gateway.db_url, "viewer@shop.example", business, role="viewer"))
    assert viewer.post_form(page, f"{page}transfer", form).status_code == 403
    other = f"/b/{business}/wallets/{gateway.other.wallet_id}/"
    assert owner.get(other).status_code == 404
    assert owner.get(f"{other}statement.csv").status_code == 404
    assert owner.post_form(page, f"{other}transfer", form).status_code == 404


def test_an_owner_changes_payment_settings_that_the_api_then_applies(gateway, dash):
    business = gateway.merchant.business_id
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    page = f"/b/{business}/settings/"
    form = {"default_tariff": "CUSTOMER-PAYS", "min_amount": "20", "max_amount": "5000"}
    saved = owner.post_form(page, page, form)
    assert saved.status_code == 200 and "Settings saved." in saved.text
    refused = owner.post_form(page, page, {**form, "min_amount": "9000"})
    assert refused.status_code == 400 and "min amount must not exceed max amount" in refused.text
    assert owner.post_form(page, page, {**form, "max_amount": "lots"}).status_code == 400
    with gateway.client(gateway.merchant.secret_key) as api:
        small = api.post(
            "/payment/mpesa-stk-push/", json={"phone_number": "254712345678", "amount": 15}
        )
    assert small.status_code == 400
    viewer = dash()
    viewer.sign_in(make_user(gateway.db_url, "viewer@shop.example", business, role="viewer"))
    assert viewer.get(page).status_code == 200
    assert viewer.post_form(page, page, {**form, "min_amount": "10"}).status_code == 403


def test_an_owner_renames_the_business_and_the_next_prompt_shows_it(gateway, dash):
    business = gateway.merchant.business_id
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", business))
    page = f"/b/{business}/settings/"
    action = f"{page}profile"
    saved = owner.post_form(page, action, {"name": "Mama Mboga & Sons", "short_name": ""})
    assert saved.status_code == 200 and "Profile saved." in saved.text
    assert "Mama Mboga &amp; Sons" in owner.get(f"/b/{business}/").text  # the header's name
    renamed = owner.post_form(page, action, {"name": "Mama Mboga & Sons", "short_name": "MM Sons!"})
    assert 'value="MM Sons"' in renamed.text  # squeezed to what a prompt can show
    for bad in ("", "x" * 121, "Shop\u202e"):
        assert owner.post_form(page, action, {"name": bad, "short_name": ""}).status_code == 400
    invoice_id = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    truth = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712345678"})
    assert truth[0]["transaction_desc"] == "MM Sons"  # M-Pesa's record of the prompt
    viewer = dash()
    viewer.sign_in(make_user(gateway.db_url, "viewer@shop.example", business, role="viewer"))
    assert 'name="short_name"' not in viewer.get(page).text
    assert viewer.post_form(page, action, {"name": "Mine", "short_name": ""}).status_code == 403


def test_revoking_a_users_sessions_signs_them_out_everywhere(gateway, dash):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from pesagate.accounts import service as accounts
    from pesagate.db import Database

    business = gateway.merchant.business_id
    email = make_user(gateway.db_url, "owner@shop.example", business)
    phone, laptop = dash(), dash()
    phone.sign_in(email)
    laptop.sign_in(email)
    assert phone.get(f"/b/{business}/").status_code == 200

    async def revoke() -> int:
        db = Database(gateway.db_url)
        try:
            return await accounts.revoke_sessions(db, email)
        finally:
            await db.dispose()

    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, revoke()).result() == 2
    for client in (phone, laptop):
        assert client.get(f"/b/{business}/").status_code == 303


def test_the_overview_counts_today_and_charts_the_day(gateway, dash):
    paid = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    failed = gateway.push("254700001032", 50)["invoice"]["invoice_id"]
    gateway.wait_final(paid)
    gateway.wait_final(failed)
    owner = dash()
    owner.sign_in(make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id))
    html = owner.get(f"/b/{gateway.merchant.business_id}/").text
    assert "1 paid · 1 failed · 0 pending" in html and "Success rate: 50.0%" in html
    assert "highest day KES 100.00" in html and "<code>1032</code>" in html


def test_one_address_trying_many_accounts_is_slowed_down(start_gateway):
    gateway = start_gateway(dashboard_login_limit_per_address="3/minute")
    email = make_user(gateway.db_url, "owner@shop.example", gateway.merchant.business_id)
    client = DashboardClient(gateway.url)
    try:
        for n in range(3):
            assert client.sign_in(f"user{n}@shop.example", "guess-guess-guess").status_code == 401
        slowed = client.sign_in(email)  # another account, the right password
        assert slowed.status_code == 429 and "from your address" in slowed.text
    finally:
        client.close()


def test_a_failed_webhook_is_replayed_from_the_payment_timeline(start_gateway, callback_receiver):
    gateway = start_gateway(webhook_backoff_s=0.1, webhook_max_attempts=2)
    with gateway.client(gateway.merchant.secret_key) as api:
        hook = {"endpoint": callback_receiver.url + "/hooks", "challenge": "c"}
        assert api.post("/webhooks/", json=hook).status_code == 200
    callback_receiver.status = 500
    invoice_id = gateway.push("254712345678", 100)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)

    def events() -> list[dict]:
        with gateway.client(gateway.merchant.secret_key) as api:
            return api.get("/webhooks/events/").json()["results"]

    # PENDING, COMPLETE and (when the push's answer came before the callback) PROCESSING.
    failed = wait_until(
        lambda: (evs := events()) and all(e["status"] == "FAILED" for e in evs) and len(evs),
        60,
        what="every event of the invoice to fail",
    )
    business = gateway.merchant.business_id
    client = DashboardClient(gateway.url)
    try:
        client.sign_in(make_user(gateway.db_url, "dev@shop.example", business, role="developer"))
        detail = f"/b/{business}/payments/{invoice_id}/"
        html = client.get(detail).text
        assert html.count("Replay this webhook") == failed
        assert "<dt>Response</dt><dd>500</dd>" in html
        event_id = html.split("/webhooks/events/")[1].split("/replay")[0]
        callback_receiver.status = 200
        replayed = client.post_form(detail, f"/b/{business}/webhooks/events/{event_id}/replay", {})
        assert replayed.status_code == 200 and "replayed" in replayed.text
        wait_until(
            lambda: "<dt>Response</dt><dd>200</dd>" in client.get(detail).text,
            60,
            what="the replay's attempt on the timeline",
        )
        html = client.get(detail).text
        assert html.count("Replay this webhook") == failed - 1
        # Delivered, it can be sent again, with the same webhook-id (a receiver that lost it).
        assert html.count("Resend this webhook") == 1
        before = len(callback_receiver.for_path("/hooks"))
        resent = client.post_form(detail, f"/b/{business}/webhooks/events/{event_id}/replay", {})
        assert resent.status_code == 200 and "sent again" in resent.text
        again = callback_receiver.wait_for("/hooks", count=before + 1)[-1]
        assert again.headers["webhook-id"] == event_id
    finally:
        client.close()
