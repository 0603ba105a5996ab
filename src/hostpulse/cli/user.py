"""`hostpulse user add|list|passwd|role|remove`: accounts on the server's database (run it on the
server's machine, as the user that runs the server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hostpulse.cli.auth_common import DataOpt, DbOpt, run_auth, when

if TYPE_CHECKING:
    from hostpulse.server.auth.repository import UserRow
    from hostpulse.server.auth.service import AuthService

app = typer.Typer(
    help="Users who sign in to the dashboard and API: add, list, passwd, role, remove."
)

NameArg = Annotated[str, typer.Argument(help="User name, e.g. alice.")]
PasswordOpt = Annotated[
    str,
    typer.Option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="At least 12 characters (asked for when not given; avoid passing it on the "
        "command line, where other users can see it).",
    ),
]
RoleOpt = Annotated[str, typer.Option("--role", help="viewer, editor or admin.")]


@app.command("add")
def add(
    username: NameArg,
    password: PasswordOpt,
    role: RoleOpt = "viewer",
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Add a user: hostpulse user add alice --role editor"""
    from hostpulse.server.auth.users import parse_role

    async def op(auth: AuthService) -> UserRow:
        return await auth.users.create(username, password, parse_role(role))

    row = run_auth(data_dir, database_url, op)
    typer.echo(f"added user {row.username} ({row.role})")


@app.command("list")
def list_users(data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """List users and their roles."""

    async def op(auth: AuthService) -> list[UserRow]:
        return await auth.users.list_users()

    rows = run_auth(data_dir, database_url, op)
    typer.echo(f"{'USER':<24} {'ROLE':<8} CREATED")
    for r in rows:
        typer.echo(f"{r.username:<24} {r.role:<8} {when(r.created_ms)}")


@app.command("passwd")
def passwd(
    username: NameArg,
    password: PasswordOpt,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Set a user's password (their sessions end)."""
    from hostpulse.server.auth.principals import User
    from hostpulse.server.auth.roles import Role

    async def op(auth: AuthService) -> UserRow:
        operator = User("(command line)", Role.admin)
        return await auth.users.update(operator, username, role=None, password=password)

    run_auth(data_dir, database_url, op)
    typer.echo(f"changed the password of {username}")


@app.command("role")
def role(
    username: NameArg,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor or admin.")],
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Change a user's role: hostpulse user role alice admin (never demotes the last admin)."""
    from hostpulse.server.auth.principals import User
    from hostpulse.server.auth.roles import Role
    from hostpulse.server.auth.users import parse_role

    async def op(auth: AuthService) -> UserRow:
        operator = User("(command line)", Role.admin)
        return await auth.users.update(operator, username, role=parse_role(new_role), password=None)

    row = run_auth(data_dir, database_url, op)
    typer.echo(f"{row.username} is now {row.role}")


@app.command("remove")
def remove(username: NameArg, data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Remove a user (never the last admin)."""

    async def op(auth: AuthService) -> None:
        await auth.users.delete(username)

    run_auth(data_dir, database_url, op)
    typer.echo(f"removed user {username}")
