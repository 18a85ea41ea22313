"""The `pesagate` command line.

The composition root (`services`: the HTTP stack, every job handler), the app and uvicorn are
imported by the commands that use them, not here: every command would otherwise pay ~0.25 s of
imports before it starts (the suite runs ~60 of them)."""

import asyncio
import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from pesagate import __version__
from pesagate.accounts import passwords
from pesagate.accounts.commands import user_app
from pesagate.commands import (
    console,
    err_console,
    load_settings,
    prepare_schema,
    run,
    with_database,
)
from pesagate.config import LogSettings, Settings
from pesagate.db import Database
from pesagate.kit.logs import configure_logging
from pesagate.kit.runtime import EVENT_LOOP, freeze_after_full_collections, tune_gc
from pesagate.ledger.commands import ledger_app, wallet_app
from pesagate.merchants.commands import keys_app, merchant_app
from pesagate.models import Environment
from pesagate.payments.commands import stk_push
from pesagate.refunds.commands import refund
from pesagate.webhooks.commands import webhook_app
from pesagate.worker.commands import jobs_commands
from pesagate.worker.jobs import Revived

if TYPE_CHECKING:
    from pesagate.services import DemoMerchant


def _jobs_revived() -> Mapping[str, Revived]:
    from pesagate.services import JOBS_REVIVED

    return JOBS_REVIVED


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
app.add_typer(jobs_commands(_jobs_revived), name="jobs")
app.add_typer(user_app, name="user")
app.command("stk-push")(stk_push)
app.command("refund")(refund)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]


# Here, not in merchants/commands.py: a new merchant's settlement wallet is the ledger's.
@merchant_app.command("create")
def create_merchant_command(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    short_name: Annotated[
        str | None, typer.Option(help="What the customer's prompt shows (13 characters).")
    ] = None,
) -> None:
    """Create a merchant with its keys and KES settlement wallet. The secret key is shown once."""
    from pesagate.services import open_merchant

    settings = load_settings()
    environment = Environment(settings.env)
    try:
        created = with_database(
            lambda db: open_merchant(db, name, environment, short_name), settings
        )
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    result = {
        "business_id": created.business.business_id,
        "name": created.business.name,
        "public_key": created.keys.public_key,
        "secret_key": created.keys.secret_key,
        "wallet_id": created.settlement_wallet.wallet_id,
    }
    if as_json:
        typer.echo(orjson.dumps(result).decode())
        return
    for key, value in result.items():
        console.print(f"[bold]{key}[/]: {value}")
    console.print("[yellow]Store the secret key now: it is not shown again.[/]")


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
    import uvicorn

    from pesagate.app import create_app

    settings = _with_public_url(load_settings(), host, port)
    if workers > 1 and settings.simulator_enabled:
        err_console.print(
            "[bold red]--workers needs PESAGATE_SIMULATOR=off:[/] the embedded simulator keeps "
            "M-Pesa's state in one process. Run `pesagate simulator` on its own and point "
            "PESAGATE_MPESA_BASE_URL at it."
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    demo = run(_prepare(settings))
    console.print(
        f"[bold green]pesagate {__version__}[/] ({settings.env}) listening on {host}:{port}, "
        f"public URL {settings.public_url}"
    )
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
            loop=EVENT_LOOP,
            log_config=None,
            access_log=False,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        return
    gateway = create_app(settings, run_worker=False if no_worker else None)
    tune_gc()
    uvicorn.run(
        gateway,
        host=host,
        port=port,
        loop=EVENT_LOOP,
        log_config=None,
        access_log=False,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Unless PESAGATE_PUBLIC_URL says otherwise, the gateway is reached where it listens: the
    embedded simulator, callbacks and the printed URLs all follow `--host` and `--port`."""
    if "public_url" in settings.model_fields_set:
        return settings
    public_url = _url_of(host, port)
    os.environ["PESAGATE_PUBLIC_URL"] = public_url  # for the processes of `--workers N`
    return settings.model_copy(update={"public_url": public_url})


def _url_of(host: str, port: int) -> str:
    """A URL for a listening address; a wildcard address is reached on this host's loopback."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (a comparison, not a binding)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def _prepare(settings: Settings) -> "DemoMerchant | None":
    from pesagate.services import open_demo_merchant_if_empty

    await prepare_schema(settings)
    if settings.env != "sandbox":
        return None
    passwords.use(settings.dashboard_password_hashing)  # the demo owner's
    db = Database(settings.database_url)
    try:
        return await open_demo_merchant_if_empty(db)
    finally:
        await db.dispose()


DEMO_TEMPLATE = """
[bold]A demo merchant was created[/] (the secret key is shown only this once):
  business_id  {business_id}
  public_key   {public_key}
  secret_key   {secret_key}
  wallet_id    {wallet_id}

[bold]Dashboard[/]: {public_url}/dashboard/  sign in as {owner_email}, password {owner_password}
(shown only this once; `pesagate user create` adds more people)

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

[bold]Hosted checkout[/]: open the "url" this answers, pay with 0700009008 and type the PIN 1234
on {public_url}/sim/phone/254700009008

curl -s {api}/checkout/ \\
  -H 'Content-Type: application/json' \\
  -d '{{"public_key": "{public_key}", "amount": 100}}'
"""


def _print_demo(demo: "DemoMerchant", settings: Settings) -> None:
    merchant = demo.merchant
    text = DEMO_TEMPLATE.format(
        business_id=merchant.business.business_id,
        public_key=merchant.keys.public_key,
        secret_key=merchant.keys.secret_key,
        wallet_id=merchant.settlement_wallet.wallet_id,
        owner_email=demo.owner_email,
        owner_password=demo.owner_password,
        api=f"{settings.public_url}/api/v1",
        public_url=settings.public_url,
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
    import uvicorn

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
    freeze_after_full_collections()
    uvicorn.run(
        create_simulator_app(sim_settings),
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
    )
