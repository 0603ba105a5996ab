"""`hostpulse token create|list|delete` (enrollment tokens) and `hostpulse key
list|revoke|rotate` (agent keys), on the server's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hostpulse.cli.auth_common import DataOpt, DbOpt, run_auth, when

if TYPE_CHECKING:
    from hostpulse.server.auth.principals import NewKey
    from hostpulse.server.auth.repository import EnrollmentRow, KeyRow
    from hostpulse.server.auth.service import AuthService

tokens = typer.Typer(
    help="Enrollment tokens: a new host exchanges one for its agent key "
    "(hostpulse agent --server URL --enroll TOKEN)."
)
keys = typer.Typer(help="Agent keys (one per host): list, revoke, rotate.")

IdArg = Annotated[int, typer.Argument(help="The id shown by the list command.")]


@tokens.command("create")
def create_token(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Only this host_id may enroll with it (default: any). Needed to enroll a host "
            "again while it has a live key (its old key stops working).",
        ),
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Valid for: 30m, 1h, 7d ...")] = "1h",
    multi_use: Annotated[
        bool, typer.Option("--multi-use", help="Several hosts may enroll with it until it expires.")
    ] = False,
    server_url: Annotated[
        str, typer.Option("--server-url", help="The server URL the hosts reach, for the command.")
    ] = "http://127.0.0.1:8400",
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Create an enrollment token: hostpulse token create --host web-1 --ttl 1h"""
    from hostpulse.server.auth.agent_keys import enroll_command
    from hostpulse.server.config import parse_duration
    from hostpulse.server.install import install_command

    try:
        seconds = int(parse_duration(ttl))
    except ValueError as exc:
        typer.echo(f"error: --ttl: {exc}", err=True)
        raise typer.Exit(2) from None

    async def op(auth: AuthService) -> tuple[EnrollmentRow, str]:
        return await auth.agents.create_enrollment(host, seconds, not multi_use)

    row, token = run_auth(data_dir, database_url, op)
    scope = f"host {row.host_id}" if row.host_id else "any host"
    uses = "once" if row.single_use else "any number of times"
    typer.echo(f"enrollment token {row.id} for {scope}, usable {uses} until {when(row.expires_ms)}")
    typer.echo(
        "shown only now; on a new host paste (as root; installs, enrolls, starts the agent):"
    )
    typer.echo(f"  {install_command(server_url, token, row.host_id)}")
    typer.echo("or, where hostpulse is installed already, run:")
    typer.echo(f"  {enroll_command(server_url, token, row.host_id)}")
    typer.echo(
        "(to keep the token out of the process list, put it in a file only the agent's user "
        "can read and use --enroll-file FILE instead of --enroll, or set HOSTPULSE_ENROLL_TOKEN)"
    )


@tokens.command("list")
def list_tokens(data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """List enrollment tokens (never the tokens themselves)."""

    async def op(auth: AuthService) -> list[EnrollmentRow]:
        return await auth.agents.list_enrollments()

    typer.echo(f"{'ID':>4} {'HOST':<24} {'USE':<8} {'USES':>4} EXPIRES")
    for r in run_auth(data_dir, database_url, op):
        use = "single" if r.single_use else "multi"
        typer.echo(
            f"{r.id:>4} {r.host_id or '(any)':<24} {use:<8} {r.uses:>4} {when(r.expires_ms)}"
        )


@tokens.command("delete")
def delete_token(token_id: IdArg, data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Delete an enrollment token (hosts enrolled with it keep their keys)."""

    async def op(auth: AuthService) -> None:
        await auth.agents.delete_enrollment(token_id)

    run_auth(data_dir, database_url, op)
    typer.echo(f"deleted enrollment token {token_id}")


@keys.command("list")
def list_keys(data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """List agent keys (prefix only, never the key)."""

    async def op(auth: AuthService) -> list[KeyRow]:
        return await auth.agents.list_keys()

    typer.echo(f"{'ID':>4} {'HOST':<24} {'PREFIX':<13} {'LAST USED':<24} REVOKED")
    for k in run_auth(data_dir, database_url, op):
        typer.echo(
            f"{k.id:>4} {k.host_id:<24} {k.prefix:<13} {when(k.last_used_ms):<24} "
            f"{when(k.revoked_ms)}"
        )


@keys.command("revoke")
def revoke_key(key_id: IdArg, data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Revoke an agent key. A running server refuses it within 10 seconds (at once when
    revoked through the API, POST /api/v1/agent-keys/ID/revoke, or with HOSTPULSE_REDIS_URL
    set as for the servers)."""

    async def op(auth: AuthService) -> None:
        await auth.agents.revoke(key_id)

    run_auth(data_dir, database_url, op)
    typer.echo(f"revoked agent key {key_id}")


@keys.command("rotate")
def rotate_key(key_id: IdArg, data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """A new key for the same host (printed once); the old one is revoked."""

    async def op(auth: AuthService) -> NewKey:
        return await auth.agents.rotate(key_id)

    new = run_auth(data_dir, database_url, op)
    typer.echo(f"new agent key {new.id} for host {new.host_id} (shown only now):")
    typer.echo(f"  {new.key}")
    typer.echo("save it on the host in its key file (mode 0600) and restart the agent")
