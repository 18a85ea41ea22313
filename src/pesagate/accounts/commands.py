"""`pesagate user …`: dashboard users."""

import sys
from typing import Annotated

import typer

from pesagate.accounts import passwords, service
from pesagate.commands import console, err_console, load_settings, with_database
from pesagate.models import Role

user_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)


@user_app.command("create")
def create_user(
    email: str,
    business: Annotated[str, typer.Option(help="The business_id (or exact name).")],
    role: Annotated[Role, typer.Option(help="owner, developer or viewer.")],
    operator: Annotated[bool, typer.Option("--operator", help="Sees every business.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a dashboard user with a role in a business (or give an existing user one)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = load_settings()
    passwords.use(settings.dashboard_password_hashing)
    try:
        user, found, _ = with_database(
            lambda db: service.create_user(db, email, password, business, role, operator=operator),
            settings,
        )
    except service.AccountError as refused:
        err_console.print(f"[red]{refused}[/]")
        raise typer.Exit(2) from None
    extra = " (operator)" if user.is_operator else ""
    console.print(f"{user.email} is {role.value} of {found.name} ({found.business_id}){extra}")


@user_app.command("revoke-sessions")
def revoke_sessions(email: str) -> None:
    """Sign a user out everywhere, now."""
    try:
        count = with_database(lambda db: service.revoke_sessions(db, email))
    except service.AccountError as refused:
        err_console.print(f"[red]{refused}[/]")
        raise typer.Exit(2) from None
    console.print(f"{count} session(s) revoked")
