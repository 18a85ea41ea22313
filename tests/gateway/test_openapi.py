"""The OpenAPI document declares every answer, and the answers are what it declares: each JSON
success body of every route, from real requests to a running gateway, validates (strictly,
no extra fields) against the response model its route declares."""

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from pesagate.app import create_app
from pesagate.checkout import endpoints as checkout_endpoints
from pesagate.config import Settings
from pesagate.ledger import endpoints as ledger_endpoints
from pesagate.payments import callback_endpoint
from pesagate.payments import endpoints as payment_endpoints
from pesagate.refunds import callback_endpoint as reversal_callback_endpoint
from pesagate.refunds import endpoints as refund_endpoints
from pesagate.webhooks import endpoints as webhook_endpoints
from tests.fixtures.servers import SHARED_SSL_CONTEXT, bound_socket, wait_until

APPROVING_PHONE = "254712345678"
ROUTERS = (
    checkout_endpoints.router,
    payment_endpoints.router,
    callback_endpoint.router,
    ledger_endpoints.router,
    webhook_endpoints.router,
    refund_endpoints.router,
    reversal_callback_endpoint.router,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    return doc


def json_successes(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, status, JSON content) of every 2xx answer the document says has a body."""
    return [
        (method.upper(), path, status, answer["content"]["application/json"])
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status.startswith("2") and "application/json" in answer.get("content", {})
    ]


def test_every_json_success_declares_its_body(document: dict[str, Any]) -> None:
    """A new route without `answers=` (or a response model) fails here: FastAPI then
    documents its body as `{}`, which any answer matches."""
    components = document["components"]["schemas"]
    undeclared = []
    for method, path, status, content in json_successes(document):
        ref = content.get("schema", {}).get("$ref", "")
        model = components.get(ref.removeprefix("#/components/schemas/"))
        if model is None or model.get("additionalProperties") is not False:
            undeclared.append(f"{method} {path} {status}: {content}")
    assert not undeclared, "\n".join(undeclared)


def test_no_operation_answers_without_a_success(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)


class DeclaredModels:
    """Validates each answer against the model its route declares, and remembers which
    documented operations were seen answering a body."""

    def __init__(self, app_routes: list[Any]) -> None:
        routes = [*app_routes, *(route for router in ROUTERS for route in router.routes)]
        self.routes = [r for r in routes if isinstance(r, APIRoute) and r.include_in_schema]
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, response: httpx.Response) -> Any:
        assert response.is_success, response.text
        route = self._route(response.request.method, response.request.url.path)
        model = route.responses.get(response.status_code, {}).get("model", route.response_model)
        assert model is not None, f"{route.path} declares no body"
        body = TypeAdapter(model).validate_json(response.content, strict=True)
        self.seen.add((response.request.method, route.path, str(response.status_code)))
        return body

    def _route(self, method: str, path: str) -> APIRoute:
        # The documented route, with or without the trailing slash the request used.
        for route in self.routes:
            matches = route.path_regex.match(path) or route.path_regex.match(f"{path}/")
            if method in route.methods and matches:
                return route
        raise AssertionError(f"no documented route for {method} {path}")


def _check_checkout(api: httpx.Client, models: DeclaredModels, gateway: Any) -> None:
    """Hosted checkout's routes (issue 14): sessions, a payment inside one, payment links."""
    public = {"X-KULMI-PUBLIC-API-KEY": gateway.merchant.public_key}
    with httpx.Client(
        base_url=gateway.api, trust_env=False, headers=public, verify=SHARED_SSL_CONTEXT
    ) as browser:
        checkout = models.check(browser.post("/checkout/", json={"amount": 100}))
        signed = {"checkout_id": checkout["id"], "signature": checkout["signature"]}
        models.check(browser.post("/checkout/details/", json=signed))
        models.check(
            browser.post(
                "/payment/collection/",
                json={"method": "M-PESA", "phone_number": "254712345699", **signed},
            )
        )
    link = models.check(api.post("/paymentlinks/", json={"title": "Greens", "amount": 100}))
    models.check(api.get("/paymentlinks/"))
    models.check(api.get(f"/paymentlinks/{link['id']}/"))
    models.check(api.put(f"/paymentlinks/{link['id']}/", json={"usage_limit": 2}))
    models.check(api.patch(f"/paymentlinks/{link['id']}/", json={"title": "Sukuma"}))
    models.check(api.post(f"/paymentlinks/{link['id']}/deactivate/"))


def test_every_answer_validates_against_its_declared_model(start_gateway, document) -> None:
    dead = bound_socket()  # bound, never listening: deliveries are refused at once
    gateway = start_gateway(webhook_max_attempts=1, webhook_backoff_s=0, webhook_timeout_s=1)
    app_routes = create_app(Settings(database_url="sqlite+aiosqlite://")).routes
    models = DeclaredModels(app_routes)
    secret = gateway.merchant.secret_key
    settlement = gateway.merchant.wallet_id
    with gateway.client(secret) as api:
        hook = models.check(
            api.post(
                "/webhooks/",
                json={"endpoint": f"http://127.0.0.1:{dead.getsockname()[1]}/", "challenge": "c"},
            )
        )
        session = models.check(
            api.post(
                "/payment/mpesa-stk-push/", json={"phone_number": APPROVING_PHONE, "amount": 100}
            )
        )
        second = models.check(
            api.post(
                "/payment/collection/",
                json={"phone_number": APPROVING_PHONE, "amount": 100, "method": "M-PESA"},
            )
        )
        invoice_id = session["invoice"]["invoice_id"]
        gateway.wait_final(invoice_id)
        # The transfer below spends the second payment (the refund holds all of the first).
        # Its callback can beat its push response; it is then credited only once M-Pesa has
        # confirmed its receipt, a few requests later.
        assert gateway.wait_final(second["invoice"]["invoice_id"])["state"] == "COMPLETE"
        models.check(api.post("/payment/status/", json={"invoice_id": invoice_id}))
        models.check(api.post("/payment/get_amount_estimate/", json={"amount": 100}))
        models.check(api.get("/invoices/", params={"page_size": 1}))
        models.check(api.get(f"/invoices/{invoice_id}/"))
        wait_until(lambda: gateway.status(invoice_id)["mpesa_reference"], what="a receipt")
        paid = gateway.status(invoice_id)
        refund = models.check(
            api.post(
                "/chargebacks/",
                json={"invoice_id": invoice_id, "amount": paid["value"], "reason": "Other"},
            )
        )
        models.check(api.get("/chargebacks/"))
        models.check(api.get(f"/chargebacks/{refund['chargeback_id']}/"))
        wallet = models.check(api.post("/wallets/", json={"currency": "KES", "label": "spare"}))
        models.check(
            api.post(
                f"/wallets/{settlement}/intra_transfer/",
                json={"wallet_id": wallet["wallet_id"], "amount": 10, "narrative": "move"},
            )
        )
        models.check(api.get("/wallets/"))
        models.check(api.get(f"/wallets/{settlement}/"))
        models.check(api.get(f"/wallets/{settlement}/transactions/"))
        models.check(api.get("/transactions/", params={"page_size": 1}))
        _check_checkout(api, models, gateway)
        models.check(api.get("/webhooks/"))
        models.check(api.get(f"/webhooks/{hook['id']}/"))
        models.check(api.patch(f"/webhooks/{hook['id']}/", json={"is_active": True}))
        failed = wait_until(
            lambda: models.check(api.get("/webhooks/events/", params={"status": "FAILED"}))[
                "results"
            ],
            what="an event to fail",
        )
        models.check(api.post(f"/webhooks/events/{failed[0]['id']}/replay/"))
    dead.close()
    with httpx.Client(base_url=gateway.url, trust_env=False, verify=SHARED_SSL_CONTEXT) as plain:
        models.check(plain.post("/callbacks/stk/not-a-token", json={"Body": {}}))
        models.check(plain.post("/callbacks/reversal/not-a-token/result", json={"Result": {}}))
        models.check(plain.post("/callbacks/stk/not-a-token/status", json={"Result": {}}))
        models.check(plain.get("/healthz"))
        models.check(plain.get("/readyz"))
    documented = {(method, path, status) for method, path, status, _ in json_successes(document)}
    assert documented - models.seen == set()
