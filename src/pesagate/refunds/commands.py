"""`pesagate refund INVOICE_ID AMOUNT --reason ...`: a refund through the API, as a merchant's
server asks for one, followed until M-Pesa has settled it."""

import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from pesagate.refunds.reasons import REASONS

console = Console()
err_console = Console(stderr=True)

FINAL_STATUSES = ("COMPLETED", "CANCELLED", "DISPUTED")


def refund(
    invoice_id: Annotated[str, typer.Argument(help="The COMPLETE invoice to refund.")],
    amount: Annotated[str, typer.Argument(help="KES: the invoice's full value (M-Pesa rule)")],
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(REASONS)}.")] = "Other",
    details: Annotated[str | None, typer.Option(help="Free text kept with the refund.")] = None,
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = "http://127.0.0.1:8000",
    secret_key: Annotated[
        str, typer.Option(envvar="PESAGATE_SECRET_KEY", help="The merchant's secret key.")
    ] = "",
    wait: Annotated[bool, typer.Option(help="Follow the refund to its final status.")] = True,
    timeout_s: Annotated[float, typer.Option(help="How long to follow it.")] = 300.0,
) -> None:
    """Refund a payment: M-Pesa reverses it and the wallet is debited once."""
    if not secret_key:
        err_console.print(
            "[red]Give the merchant's secret key: --secret-key or $PESAGATE_SECRET_KEY.[/]"
        )
        raise typer.Exit(2)
    api = f"{url.rstrip('/')}/api/v1"
    body: dict[str, Any] = {"invoice_id": invoice_id, "amount": amount, "reason": reason}
    if details:
        body["reason_details"] = details
    with httpx.Client(headers={"Authorization": f"Bearer {secret_key}"}, timeout=60) as client:
        chargeback = _call(client, "POST", f"{api}/chargebacks/", body)
        console.print(
            f"chargeback [bold]{chargeback['chargeback_id']}[/]: KES {chargeback['amount']}"
            f" of invoice {chargeback['invoice']} is {chargeback['status']}"
        )
        if wait:
            chargeback = _follow(
                client, f"{api}/chargebacks/{chargeback['chargeback_id']}/", timeout_s
            )
    _report(chargeback)


def _call(client: httpx.Client, method: str, url: str, body: Any = None) -> dict[str, Any]:
    try:
        response = client.request(method, url, json=body)
    except httpx.HTTPError as exc:
        err_console.print(f"[red]The gateway did not answer: {exc}[/]")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        err_console.print(f"[red]HTTP {response.status_code}: {response.text}[/]")
        raise typer.Exit(1)
    answer: dict[str, Any] = response.json()
    return answer


def _follow(client: httpx.Client, url: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    chargeback = _call(client, "GET", url)
    while chargeback["status"] not in FINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(1.0)
        chargeback = _call(client, "GET", url)
    return chargeback


def _report(chargeback: dict[str, Any]) -> None:
    status = chargeback["status"]
    colour = {"COMPLETED": "green", "CANCELLED": "red", "DISPUTED": "yellow"}.get(status, "white")
    line = f"[{colour}]{status}[/]"
    if chargeback.get("mpesa_reference"):
        line += f" (M-Pesa reversal {chargeback['mpesa_reference']})"
    if chargeback.get("resolution"):
        line += f": {chargeback['resolution']}"
    console.print(line)
    if status in ("CANCELLED", "DISPUTED"):
        raise typer.Exit(1)
