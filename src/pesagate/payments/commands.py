"""`pesagate stk-push PHONE AMOUNT`: a payment through the API, as a merchant's server sends it."""

import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

FINAL_STATES = ("COMPLETE", "FAILED")


def stk_push(
    phone: Annotated[str, typer.Argument(help="254XXXXXXXXX, 07XXXXXXXX or +254XXXXXXXXX")],
    amount: Annotated[str, typer.Argument(help="KES; decimals are rounded up")],
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = "http://127.0.0.1:8000",
    secret_key: Annotated[
        str, typer.Option(envvar="PESAGATE_SECRET_KEY", help="The merchant's secret key.")
    ] = "",
    api_ref: Annotated[str, typer.Option(help="Your reference.")] = "pesagate cli",
    timeout_s: Annotated[float, typer.Option(help="How long to wait for a final state.")] = 180.0,
) -> None:
    """Send an STK push through the API and follow the invoice to its final state."""
    if not secret_key:
        err_console.print(
            "[red]Give the merchant's secret key: --secret-key or $PESAGATE_SECRET_KEY.[/]"
        )
        raise typer.Exit(2)
    api = f"{url.rstrip('/')}/api/v1"
    with httpx.Client(headers={"Authorization": f"Bearer {secret_key}"}, timeout=60) as client:
        session = _post(
            client,
            f"{api}/payment/mpesa-stk-push/",
            {
                "phone_number": phone,
                "amount": amount,
                "api_ref": api_ref,
            },
        )
        invoice = session["invoice"]
        console.print(
            f"invoice [bold]{invoice['invoice_id']}[/]: KES {invoice['value']}"
            f" to {invoice['account']} (charges {invoice['charges']}, net {invoice['net_amount']})"
        )
        final = _follow(client, api, invoice, timeout_s)
    _report(final)


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> Any:
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        console.print(f"[red]Cannot reach the gateway: {exc}[/]")
        raise typer.Exit(1) from None
    if response.status_code != 200:
        console.print(f"[red]HTTP {response.status_code}[/]: {response.text}")
        raise typer.Exit(1)
    return response.json()


def _follow(
    client: httpx.Client, api: str, invoice: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last_state = None
    with console.status("waiting for the customer…") as status:
        while True:
            if invoice["state"] != last_state:
                last_state = invoice["state"]
                console.print(f"  state: [bold]{last_state}[/]")
                status.update(f"{last_state}: waiting for the customer…")
            if invoice["state"] in FINAL_STATES or time.monotonic() > deadline:
                return invoice
            time.sleep(1)
            invoice = _post(
                client, f"{api}/payment/status/", {"invoice_id": invoice["invoice_id"]}
            )["invoice"]


def _report(invoice: dict[str, Any]) -> None:
    if invoice["state"] == "COMPLETE":
        console.print(f"[bold green]Paid[/]: M-Pesa receipt {invoice['mpesa_reference']}")
    elif invoice["state"] == "FAILED":
        console.print(f"[bold red]Failed[/] ({invoice['failed_code']}): {invoice['failed_reason']}")
        raise typer.Exit(1)
    else:
        console.print(f"[yellow]Still {invoice['state']} when the wait ended.[/]")
        raise typer.Exit(1)
