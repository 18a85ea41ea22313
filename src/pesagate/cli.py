"""The `pesagate` command line."""

from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from pesagate import __version__
from pesagate.config import Settings
from pesagate.kit.logs import configure_logging

app = typer.Typer(
    name="pesagate",
    help="Self-hosted M-Pesa STK push gateway with a faithful Daraja simulator.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"pesagate {__version__}")


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the gateway (and, in sandbox, the embedded Daraja simulator at /sim)."""
    from pesagate.app import create_app

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    gateway = create_app(settings)
    console.print(f"[bold green]pesagate {__version__}[/] ({settings.env}) on http://{host}:{port}")
    if settings.simulator_enabled:
        console.print(
            f"Daraja simulator: http://{host}:{port}/sim/  "
            f"(virtual phone: http://{host}:{port}/sim/phone/254700009008)"
        )
    uvicorn.run(gateway, host=host, port=port, log_config=None, access_log=False)


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

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
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
