"""`pesagate jobs list [--dead]`, `pesagate jobs retry JOB_ID… | --all-dead`."""

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from pesagate.commands import console, err_console, with_database
from pesagate.kit.clock import rfc3339_ms
from pesagate.models import Job
from pesagate.worker import jobs
from pesagate.worker.jobs import MissingJobs, Revived


def jobs_commands(revived: Callable[[], Mapping[str, Revived]]) -> typer.Typer:
    """The `jobs` commands; `revived()`: per kind of job, what reviving a dead one settles
    (asked for only by `retry`: it comes from the composition root, slow to import)."""
    app = typer.Typer(help="Background jobs (reconciliation, webhooks, ...).", no_args_is_help=True)
    app.command("list")(list_jobs)

    @app.command("retry")
    def retry(
        job_ids: Annotated[list[int] | None, typer.Argument(help="Ids of dead jobs.")] = None,
        all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead job.")] = False,
    ) -> None:
        """Run dead jobs again now, from a clean slate (a dead webhook delivery's event too)."""
        if not job_ids and not all_dead:
            err_console.print("[red]Give job ids or --all-dead.[/]")
            raise typer.Exit(2)
        try:
            retried = with_database(lambda db: jobs.retry_dead(db, job_ids, revived()))
        except MissingJobs as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        console.print(f"retrying {len(retried)} job(s): {', '.join(map(str, retried)) or '-'}")

    return app


def list_jobs(
    dead: Annotated[bool, typer.Option("--dead", help="Only dead jobs.")] = False,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Jobs waiting, running or dead, with their last error."""
    found = with_database(lambda db: jobs.listed(db, dead=dead, kind=kind, limit=limit))
    rows = [job_json(job) for job in found]
    if as_json:
        typer.echo(orjson.dumps(rows).decode())
        return
    table = Table("id", "kind", "key", "state", "attempts", "failures", "run_at", "last_error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["key"],
            row["state"],
            str(row["attempts"]),
            str(row["failures"]),
            row["run_at"],
            row["last_error"] or "",
        )
    console.print(table)


def job_json(job: Job) -> dict[str, Any]:
    if job.dead_at is not None:
        state = "dead"
    elif job.locked_by is not None:
        state = "running"
    else:
        state = "waiting"
    return {
        "id": job.id,
        "kind": job.kind,
        "key": job.key,
        "state": state,
        "attempts": job.attempts,
        "failures": job.failures,
        "run_at": rfc3339_ms(job.run_at),
        "dead_at": rfc3339_ms(job.dead_at) if job.dead_at else None,
        "locked_by": job.locked_by,
        "lane": job.lane,
        "last_error": job.last_error,
    }
