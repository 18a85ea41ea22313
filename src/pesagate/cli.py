"""The `pesagate` command line."""

import asyncio
import os
import signal
from typing import Annotated, Any

import typer
import uvicorn

from pesagate import __version__
from pesagate.commands import console, err_console, load_settings, prepare_schema, run
from pesagate.config import LogSettings, Settings
from pesagate.db import Database
from pesagate.kit.logs import configure_logging
from pesagate.kit.runtime import tune_gc
from pesagate.ledger.commands import ledger_app, wallet_app
from pesagate.merchants.commands import keys_app, merchant_app
from pesagate.merchants.service import NewMerchant, create_demo_merchant_if_empty
from pesagate.models import Environment
from pesagate.payments.commands import stk_push
from pesagate.webhooks.commands import webhook_app

app = typer.Typer(
    name="pesagate",
    help="Self-hosted M-Pesa STK push gateway with a faithful Daraja simulator.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(merchant_app, name="merchant")
app.add_typer(keys_app, name="keys")
app.add_typer(wallet_app, name="wallet")
app.add_typer(ledger_app, name="ledger")
app.add_typer(webhook_app, name="webhook")
app.command("stk-push")(stk_push)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"pesagate {__version__}")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from pesagate import migrate as migrations

    settings = load_settings()
    run(migrations.upgrade(settings.database_url))
    console.print(f"schema at revision {migrations.head_revision()}")


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Run no jobs here.")] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (each runs jobs too).")
    ] = 1,
) -> None:
    """Run the API, the worker and (in sandbox) the Daraja simulator at /sim."""
    from pesagate.app import create_app

    settings = load_settings()
    if workers > 1 and settings.simulator_enabled:
        err_console.print(
            "[bold red]--workers needs PESAGATE_SIMULATOR=off:[/] the embedded simulator keeps "
            "M-Pesa's state in one process. Run `pesagate simulator` on its own and point "
            "PESAGATE_MPESA_BASE_URL at it."
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    demo = run(_prepare(settings))
    console.print(f"[bold green]pesagate {__version__}[/] ({settings.env}) on http://{host}:{port}")
    if demo is not None:
        _print_demo(demo, settings)
    if settings.simulator_enabled:
        console.print(
            f"Daraja simulator: {settings.public_url}/sim/  "
            f"(a phone that waits for your PIN: {settings.public_url}/sim/phone/254700009008)"
        )
    if workers > 1:  # each process builds its app from the environment
        if no_worker:
            os.environ["PESAGATE_RUN_WORKER"] = "false"
        uvicorn.run(
            "pesagate.app:from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
        )
        return
    gateway = create_app(settings, run_worker=False if no_worker else None)
    tune_gc()
    uvicorn.run(gateway, host=host, port=port, log_config=None, access_log=False)


async def _prepare(settings: Settings) -> NewMerchant | None:
    await prepare_schema(settings)
    if settings.env != "sandbox":
        return None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await create_demo_merchant_if_empty(session, Environment.SANDBOX)
    finally:
        await db.dispose()


DEMO_TEMPLATE = """
[bold]A demo merchant was created[/] (the secret key is shown only this once):
  business_id  {business_id}
  public_key   {public_key}
  secret_key   {secret_key}
  wallet_id    {wallet_id}

[bold]Try it[/] (254712345678 approves after a moment; see /sim/ for the other test numbers):

curl -s {api}/payment/mpesa-stk-push/ \\
  -H 'Authorization: Bearer {secret_key}' \\
  -H 'Content-Type: application/json' \\
  -d '{{"phone_number": "254712345678", "amount": 100}}'

.venv/bin/python - <<'EOF'
from kulmipay import APIService
service = APIService(
    token="{secret_key}",
    publishable_key="{public_key}",
    base_url="{api}",
)
print(service.collect.mpesa_stk_push(phone_number="254712345678", amount=100, api_ref="order-1"))
EOF

PESAGATE_SECRET_KEY={secret_key} .venv/bin/pesagate stk-push 254712345678 100
"""


def _print_demo(demo: NewMerchant, settings: Settings) -> None:
    text = DEMO_TEMPLATE.format(
        business_id=demo.business.business_id,
        public_key=demo.keys.public_key,
        secret_key=demo.keys.secret_key,
        wallet_id=demo.settlement_wallet.wallet_id,
        api=f"{settings.public_url}/api/v1",
    )
    console.print(text, soft_wrap=True, highlight=False)


@app.command()
def worker() -> None:
    """Run jobs (reconciliation, …) until stopped. Run as many as you like."""
    from pesagate.services import Services

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)

    async def go() -> None:
        await prepare_schema(settings)
        services = Services.build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await services.schedule_periodic_jobs()
            await services.worker().run(stop)
        finally:
            await services.aclose()

    asyncio.run(go())


@app.command()
def simulator(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible outcomes.")] = None,
    delay_s: Annotated[
        str | None, typer.Option(help="Customer approval delay: seconds, or a range like 1-3.")
    ] = None,
    prompt_ttl_s: Annotated[float | None, typer.Option(help="Prompt lifetime in seconds.")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the Daraja simulator on its own."""
    from pesagate.simulator import SimulatorSettings, create_simulator_app

    logging = LogSettings()
    configure_logging(logging.log_format, logging.log_level)
    overrides: dict[str, Any] = {"seed": seed, "prompt_ttl_s": prompt_ttl_s}
    sim_settings = SimulatorSettings(**{k: v for k, v in overrides.items() if v is not None})
    if delay_s is not None:
        sim_settings = sim_settings.with_delay(delay_s)
    console.print(
        f"[bold green]Daraja simulator[/] on http://{host}:{port}  "
        f"shortcode {sim_settings.paybill_shortcode}, consumer key {sim_settings.consumer_key}"
    )
    uvicorn.run(
        create_simulator_app(sim_settings),
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
    )
