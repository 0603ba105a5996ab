"""`hostpulse simulate`: realistic fake hosts pushing to a server (demos, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import httpx
import typer


def simulate(
    hosts: Annotated[int, typer.Option("--hosts", min=1, help="How many hosts.")] = 10,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between snapshots.")
    ] = 5.0,
    server: Annotated[
        str, typer.Option("--server", help="Server base URL.")
    ] = "http://127.0.0.1:8400",
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    backfill: Annotated[
        float, typer.Option("--backfill", min=0, help="First push this many hours of history.")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Varies the hosts' hardware.")] = 0,
    enroll_token: Annotated[
        str | None,
        typer.Option(
            "--enroll-token",
            envvar="HOSTPULSE_ENROLL_TOKEN",
            help="A multi-use enrollment token (hostpulse token create --multi-use): each "
            "simulated host enrolls with it and pushes with its own key.",
        ),
    ] = None,
) -> None:
    """Push N simulated hosts to a server: optional back-fill, then live every interval.

    Each host enrolls first: hostpulse token create --multi-use --ttl 1h, then
    hostpulse simulate --enroll-token TOKEN."""
    from hostpulse.sim.push import EnrollError, enroll_hosts, make_hosts, run_live
    from hostpulse.sim.push import backfill as run_backfill

    if not enroll_token:
        typer.echo(
            "error: --enroll-token is needed: each simulated host enrolls like a real agent "
            "(create one with: hostpulse token create --multi-use --ttl 1h)",
            err=True,
        )
        raise typer.Exit(2)

    fleet = make_hosts(hosts, seed)

    async def main() -> int:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=server, timeout=30.0, limits=limits) as client:
            try:
                keys = await enroll_hosts(client, fleet, enroll_token)
            except EnrollError as exc:
                typer.echo(f"error: {exc}", err=True)
                return -1
            failures = 0
            if backfill > 0:
                now_ms = int(time.time() * 1000)
                start_ms = now_ms - int(backfill * 3_600_000)
                typer.echo(f"back-filling {backfill} h for {hosts} hosts into {server} ...")
                st = await run_backfill(client, fleet, start_ms, now_ms, interval, keys=keys)
                typer.echo(f"back-filled {st.samples} samples in {st.requests} requests")
                failures += st.failures
            if duration is None or duration > 0:
                typer.echo(f"pushing {hosts} hosts every {interval} s to {server} (Ctrl-C stops)")
                live = await run_live(client, fleet, interval, duration, keys=keys)
                typer.echo(f"pushed {live.samples} samples in {live.requests} requests")
                failures += live.failures
            return failures

    try:
        failures = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if failures < 0:
        raise typer.Exit(2)
    if failures:
        typer.echo(f"{failures} requests failed (see the log)", err=True)
        raise typer.Exit(1)
