"""GET /api/v1/ws: the live stream (see proto/hostpulse/v1/live.proto and docs/dashboard.md).

Authentication: a browser cannot set headers on a WebSocket, so it offers the subprotocols
``hostpulse`` and ``bearer.<access token>`` (``new WebSocket(url, ["hostpulse", "bearer." + t])``);
the server answers with the subprotocol ``hostpulse``. Other clients may send
``Authorization: Bearer <token>``. The token is never in the URL, where proxies and browser
histories would log it.

Query: ``format=protobuf|json`` (default protobuf: binary messages, one LiveFrame each),
``hosts=a,b`` (subscribe to these hosts' samples), ``fleet=true`` (per-host summaries of every
host: every 0.2 s one frame with the newest summary of each host that reported since the last
one), ``alerts=true`` (alert events: a snapshot of the active alerts, then each alert that
fires, changes or ends; see ``server/alert_feed.py``). The client may change its subscription at
any time with a text message ``{"hosts": ["a", "b"], "fleet": false, "alerts": true}``; the
server answers every change with a ``subscribed`` frame. A heartbeat frame comes every
``heartbeat_seconds``.

The connection lives no longer than its access token: it is closed with code 4401 when the
token expires, and once its user is deleted: at once when that happens through the API (of
any replica, with ``redis_url``), else within ``live_auth_recheck`` seconds (the token is
checked again as on every request). The dashboard then signs in again (refresh) and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect

from hostpulse.server.alert_feed import AlertFeed
from hostpulse.server.auth.deps import auth_of, websocket_user
from hostpulse.server.auth.exceptions import AuthError
from hostpulse.server.auth.service import bearer
from hostpulse.server.live import (
    LiveClient,
    LiveHub,
    Payload,
    WireFormat,
    error_frame,
    heartbeat_frame,
)

logger = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

MAX_HOSTS = 2000
MAX_HOST_ID = 200
CLOSE_TOO_SLOW = 1013  # "try again later": the client fell behind and was dropped
CLOSE_SIGNED_OUT = 4401  # the access token expired or its user is gone: sign in, reconnect
DEFAULT_RECHECK_S = 30.0


SUBPROTOCOL = "hostpulse"
BEARER_PREFIX = "bearer."


def offered_subprotocols(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def subprotocol_token(websocket: WebSocket) -> str | None:
    """The access token a browser offered as the subprotocol ``bearer.<token>``."""
    for proto in offered_subprotocols(websocket):
        if proto.startswith(BEARER_PREFIX) and len(proto) > len(BEARER_PREFIX):
            return proto[len(BEARER_PREFIX) :]
    return None


async def websocket_principal(websocket: WebSocket) -> tuple[str, str]:
    """Who is connecting, and with which access token: a viewer+ user from the
    ``bearer.<token>`` subprotocol or ``Authorization: Bearer``; refused with close code 1008
    otherwise."""
    token = subprotocol_token(websocket)
    user = await websocket_user(websocket, token)
    credential = token or bearer(websocket.headers.get("authorization"))
    assert credential is not None  # websocket_user refuses a connection without one
    return user.username, credential


def _expiry(credential: str) -> float:
    """The wall-clock expiry of an access token already verified at connect."""
    claims = jwt.decode(credential, options={"verify_signature": False})
    return float(claims["exp"])


async def _watch_auth(ws: WebSocket, credential: str, recheck_s: float, hub: LiveHub) -> str:
    """Return (the reason) once the token has expired or no longer names a user: checked at
    its expiry, every ``recheck_s`` seconds and at once when users change (here or, with
    ``redis_url``, on another replica)."""
    users = auth_of(ws.app.state).users
    expires = _expiry(credential)
    while True:
        left = expires - time.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.auth_change().wait(), max(0.0, min(left, recheck_s)))
        try:
            await users.from_access_token(credential)
        except AuthError as exc:
            return exc.reason
        except Exception:  # the database briefly unavailable: keep the socket, check again
            logger.warning("live: could not check the user's token", exc_info=True)
        if time.time() >= expires:  # a clock step: the token is past its expiry
            return "access token expired"


def get_hub(websocket: WebSocket) -> LiveHub:
    hub: LiveHub = websocket.app.state.live
    return hub


class SubscriptionError(ValueError):
    pass


def parse_hosts(value: object, where: str) -> frozenset[str]:
    if isinstance(value, str):
        items: list[object] = [h for h in value.split(",") if h]
    elif isinstance(value, list):
        items = value
    else:
        raise SubscriptionError(f"{where}: must be a list of host ids")
    if len(items) > MAX_HOSTS:
        raise SubscriptionError(f"{where}: at most {MAX_HOSTS} hosts")
    for item in items:
        if not isinstance(item, str) or not item or len(item) > MAX_HOST_ID:
            raise SubscriptionError(f"{where}: each host id must be a non-empty string <= 200")
    return frozenset(str(i) for i in items)


def apply_message(client: LiveClient, text: str) -> None:
    """Replace the client's subscription from ``{"hosts": [...], "fleet": bool}``."""
    try:
        msg = json.loads(text)
    except ValueError:
        raise SubscriptionError("message is not JSON") from None
    if not isinstance(msg, dict):
        raise SubscriptionError('message must be an object like {"hosts": [], "fleet": false}')
    unknown = set(msg) - {"hosts", "fleet", "alerts"}
    if unknown:
        raise SubscriptionError(f"unknown field {sorted(unknown)[0]!r} (use hosts, fleet, alerts)")
    raw_hosts = msg.get("hosts", [])
    if not isinstance(raw_hosts, list):
        raise SubscriptionError('hosts: must be a list of host ids, e.g. ["web-1"]')
    hosts = parse_hosts(raw_hosts, "hosts")
    fleet = msg.get("fleet", False)
    if not isinstance(fleet, bool):
        raise SubscriptionError("fleet: must be true or false")
    alerts = msg.get("alerts", False)
    if not isinstance(alerts, bool):
        raise SubscriptionError("alerts: must be true or false")
    client.hosts, client.fleet, client.alerts = hosts, fleet, alerts


async def _send(ws: WebSocket, payload: Payload) -> None:
    if isinstance(payload, bytes):
        await ws.send_bytes(payload)
    else:
        await ws.send_text(payload)


async def _sender(ws: WebSocket, client: LiveClient, hub: LiveHub) -> None:
    next_beat = time.monotonic() + hub.heartbeat_s
    while True:
        timeout = max(0.0, next_beat - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.wake.wait(), timeout)
        client.wake.clear()
        while client.outbox and not client.dropped:
            await _send(ws, client.take())
            client.sent += 1
        if client.dropped:
            await ws.close(code=CLOSE_TOO_SLOW, reason="too slow: outbox full, reconnect")
            return
        if time.monotonic() >= next_beat:
            await _send(ws, heartbeat_frame(hub.now_ms(), client.fmt))
            next_beat = time.monotonic() + hub.heartbeat_s


async def _receiver(ws: WebSocket, client: LiveClient, hub: LiveHub) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            client.offer(error_frame("send subscriptions as JSON text messages", client.fmt))
            continue
        had_alerts = client.alerts
        try:
            apply_message(client, text)
        except SubscriptionError as exc:
            client.offer(error_frame(str(exc), client.fmt))
        else:
            await hub.subscriptions_changed()
            client.offer(client.subscribed_frame(hub.heartbeat_s))
            if client.alerts and not had_alerts:
                _want_alerts(ws, client)


def _want_alerts(ws: WebSocket, client: LiveClient) -> None:
    """Queue the snapshot of active alerts for a client that just subscribed to them (nothing
    when the server runs without the alert engine)."""
    feed: AlertFeed | None = getattr(ws.app.state, "alert_feed", None)
    if feed is not None:
        feed.want_snapshot(client)


@router.websocket("/ws", name="live")
async def live(
    websocket: WebSocket,
    hub: Annotated[LiveHub, Depends(get_hub)],
    principal: Annotated[tuple[str, str], Depends(websocket_principal)],
    format: Annotated[WireFormat, Query()] = WireFormat.PROTOBUF,
    hosts: Annotated[str | None, Query(description="Comma-separated host ids.")] = None,
    fleet: Annotated[bool, Query(description="Receive the fleet summary.")] = False,
    alerts: Annotated[bool, Query(description="Receive alert events.")] = False,
) -> None:
    # a browser that offered subprotocols drops the connection unless one is chosen
    await websocket.accept(
        subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(websocket) else None
    )
    client = hub.connect(format)
    try:
        try:
            client.hosts = parse_hosts(hosts or "", "hosts")
        except SubscriptionError as exc:
            await _send(websocket, error_frame(str(exc), format))
        client.fleet, client.alerts = fleet, alerts
        await hub.subscriptions_changed()  # other replicas' samples come from now on
        await _send(websocket, client.subscribed_frame(hub.heartbeat_s))
        if alerts:
            _want_alerts(websocket, client)
        username, credential = principal
        logger.info("live client connected", extra={"user": username, "format": format.value})
        recheck = getattr(websocket.app.state, "live_auth_recheck", DEFAULT_RECHECK_S)
        watcher = asyncio.create_task(_watch_auth(websocket, credential, recheck, hub))
        tasks = [
            asyncio.create_task(_sender(websocket, client, hub)),
            asyncio.create_task(_receiver(websocket, client, hub)),
            watcher,
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if watcher in done and watcher.exception() is None:
            reason = watcher.result()
            logger.info("live client signed out", extra={"user": username, "reason": reason})
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=CLOSE_SIGNED_OUT, reason=reason[:120])
        for t in done:
            err = t.exception()
            if err is not None and not isinstance(err, WebSocketDisconnect | RuntimeError):
                logger.warning("live connection failed", extra={"error": repr(err)})
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect(client)
        with contextlib.suppress(Exception):
            await hub.subscriptions_changed()
        if client.dropped:
            logger.info("live client dropped (too slow)")
