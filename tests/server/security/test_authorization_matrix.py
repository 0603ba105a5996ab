"""Every route of the OpenAPI schema against every kind of caller, from ONE table.

A route added to the app without an entry here fails ``test_every_route_has_an_entry``; each
entry says which role it needs, and the expected status of each identity follows from that.
The requests are real ones (a rule that exists, a key of a real host ...), so an allowed
caller reaches the handler and gets its success status."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol
from wire import batch, now_ms, request

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.app import create_app
from hostpulse.server.install import wheel_filename
from hostpulse.server.testing import LiveServer
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

SIM_A = SimHost(make_profile(0))  # its snapshots carry processes too
HOST_A = SIM_A.host_id
IDENTITIES = (
    "anonymous",
    "viewer",
    "editor",
    "admin",
    "agent_a",
    "expired_jwt",
    "foreign_jwt",
    "alg_none_jwt",
    "revoked_refresh",
    "revoked_key",
)
USERS = ("viewer", "editor", "admin")
BAD = ("expired_jwt", "foreign_jwt", "alg_none_jwt", "revoked_refresh", "revoked_key")


def expected(kind: str, ok: int) -> dict[str, int]:
    """The status each identity gets on a route of ``kind`` whose success status is ``ok``."""
    if kind == "public":
        return dict.fromkeys(IDENTITIES, ok)
    table = {"anonymous": 401, "agent_a": 403, **dict.fromkeys(BAD, 401)}
    if kind == "agent":
        return {**table, **dict.fromkeys(USERS, 403), "agent_a": ok}
    needed = {"viewer": 0, "editor": 1, "admin": 2, "self": 0}[kind]
    for rank, user in enumerate(USERS):
        table[user] = ok if rank >= needed else 403
    if kind == "self":  # PATCH /users/viewer: the viewer itself or an admin
        table["editor"] = 403
    return table


_n = itertools.count()


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_n)}"


Prep = Callable[[LiveServer], tuple[str, dict[str, Any]]]
"""Builds one request (path and httpx keyword arguments), creating what it needs as admin."""


def admin(srv: LiveServer, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, srv.url + path, headers=srv.headers("admin"), timeout=30, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


RULE = {"metric": "cpu_busy_percent", "op": ">", "warning": 80, "critical": 90, "for": "1m"}


def new_rule(srv: LiveServer) -> str:
    rule_id = uid("rule")
    admin(srv, "POST", "/api/v1/alerts/rules", json={**RULE, "id": rule_id})
    return rule_id


def channel_body(channel_id: str) -> dict[str, Any]:  # port 9: nothing listens on loopback
    return {"id": channel_id, "type": "webhook", "url": "http://127.0.0.1:9/hook"}


def new_channel(srv: LiveServer) -> str:
    channel_id = uid("chan")
    admin(srv, "POST", "/api/v1/alerts/channels", json=channel_body(channel_id))
    return channel_id


SILENCE = {"hosts": [HOST_A], "ends_at": "2999-01-01T00:00:00Z", "comment": "maintenance"}


def new_silence(srv: LiveServer) -> str:
    return str(admin(srv, "POST", "/api/v1/alerts/silences", json=SILENCE)["id"])


def new_key_id(srv: LiveServer) -> int:
    host = uid("keyhost")
    key = srv.agent_key(host)
    assert key
    keys = admin(srv, "GET", "/api/v1/agent-keys")
    return int(next(k["id"] for k in keys if k["host_id"] == host and k["revoked_at"] is None))


def new_enrollment(srv: LiveServer) -> int:
    return int(admin(srv, "POST", "/api/v1/enrollment-tokens", json={})["id"])


BOARD = {
    "name": "matrix",
    "spec": {"widgets": [{"id": "h", "type": "hosts", "x": 0, "y": 0, "w": 12, "h": 4}]},
}


def new_board(srv: LiveServer, sharing: str = "edit") -> str:
    """A board of the admin's, shared so that every role sees it (and editors may save it)."""
    return str(admin(srv, "POST", "/api/v1/dashboards", json={**BOARD, "sharing": sharing})["id"])


def new_user(srv: LiveServer) -> str:
    name = uid("user")
    admin(srv, "POST", "/api/v1/users", json={"username": name, "password": "p" * 16})
    return name


def fresh_refresh(srv: LiveServer) -> str:
    assert srv.admin_password
    token: str = srv.login("admin", srv.admin_password)["refresh_token"]
    return token


def ingest_body(srv: LiveServer) -> tuple[str, dict[str, Any]]:
    stamps = np.array([now_ms() - 1000 - next(_n)], dtype=np.int64)
    body = codec.encode(IngestRequest(batches=[host_batch(SIM_A, stamps, 5.0)]))
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
    return "/api/v1/ingest", {"content": body, "headers": headers}


def enroll_body(srv: LiveServer) -> tuple[str, dict[str, Any]]:
    host = uid("enrolled")
    return "/api/v1/agent/enroll", {"json": {"token": srv.enrollment_token(host), "host_id": host}}


def at(path: str, **kw: Any) -> Prep:
    return lambda srv: (path, kw)


@dataclass(frozen=True)
class Entry:
    kind: str  # public | viewer | editor | admin | self | agent
    ok: int
    prep: Prep


H = f"/api/v1/hosts/{HOST_A}"
T0 = now_ms() - 3_600_000

# (method, path as in the schema) -> who may call it, its success status, how to build a call
TABLE: dict[tuple[str, str], Entry] = {
    ("GET", "/api/v1/health"): Entry("public", 200, at("/api/v1/health")),
    ("GET", "/api/v1/ready"): Entry("public", 200, at("/api/v1/ready")),
    ("GET", "/install/agent.sh"): Entry("public", 200, at("/install/agent.sh")),
    ("GET", "/install/{filename}"): Entry("public", 200, at(f"/install/{wheel_filename()}")),
    ("POST", "/api/v1/auth/login"): Entry(
        "public",
        200,
        lambda s: (
            "/api/v1/auth/login",
            {"json": {"username": "admin", "password": s.admin_password}},
        ),
    ),
    ("POST", "/api/v1/auth/refresh"): Entry(
        "public",
        200,
        lambda s: ("/api/v1/auth/refresh", {"json": {"refresh_token": fresh_refresh(s)}}),
    ),
    ("POST", "/api/v1/auth/logout"): Entry(
        "public",
        204,
        lambda s: ("/api/v1/auth/logout", {"json": {"refresh_token": fresh_refresh(s)}}),
    ),
    ("POST", "/api/v1/agent/enroll"): Entry("public", 201, enroll_body),
    ("GET", "/api/v1/auth/me"): Entry("viewer", 200, at("/api/v1/auth/me")),
    ("GET", "/api/v1/users"): Entry("admin", 200, at("/api/v1/users")),
    ("POST", "/api/v1/users"): Entry(
        "admin",
        201,
        lambda s: ("/api/v1/users", {"json": {"username": uid("new"), "password": "q" * 14}}),
    ),
    ("PATCH", "/api/v1/users/{username}"): Entry(
        "self",
        200,
        lambda s: (
            "/api/v1/users/viewer",
            {
                "json": {
                    "password": s.passwords["viewer"],
                    "current_password": s.passwords["viewer"],
                }
            },
        ),
    ),
    ("DELETE", "/api/v1/users/{username}"): Entry(
        "admin", 204, lambda s: (f"/api/v1/users/{new_user(s)}", {})
    ),
    ("GET", "/api/v1/agent-keys"): Entry("admin", 200, at("/api/v1/agent-keys")),
    ("POST", "/api/v1/agent-keys/{key_id}/revoke"): Entry(
        "admin", 204, lambda s: (f"/api/v1/agent-keys/{new_key_id(s)}/revoke", {})
    ),
    ("POST", "/api/v1/agent-keys/{key_id}/rotate"): Entry(
        "admin", 200, lambda s: (f"/api/v1/agent-keys/{new_key_id(s)}/rotate", {})
    ),
    ("GET", "/api/v1/enrollment-tokens"): Entry("admin", 200, at("/api/v1/enrollment-tokens")),
    ("POST", "/api/v1/enrollment-tokens"): Entry(
        "admin", 201, at("/api/v1/enrollment-tokens", json={"host_id": "web-9", "ttl_seconds": 60})
    ),
    ("DELETE", "/api/v1/enrollment-tokens/{token_id}"): Entry(
        "admin",
        204,
        lambda s: (f"/api/v1/enrollment-tokens/{new_enrollment(s)}", {}),
    ),
    ("POST", "/api/v1/agent/rotate"): Entry("agent", 200, at("/api/v1/agent/rotate")),
    ("POST", "/api/v1/ingest"): Entry("agent", 200, ingest_body),
    ("GET", "/api/v1/alerts/rules"): Entry("viewer", 200, at("/api/v1/alerts/rules")),
    ("POST", "/api/v1/alerts/rules"): Entry(
        "editor", 201, lambda s: ("/api/v1/alerts/rules", {"json": {**RULE, "id": uid("r")}})
    ),
    ("GET", "/api/v1/alerts/rules/{rule_id}"): Entry(
        "viewer", 200, lambda s: (f"/api/v1/alerts/rules/{new_rule(s)}", {})
    ),
    ("PUT", "/api/v1/alerts/rules/{rule_id}"): Entry(
        "editor",
        200,
        lambda s: (
            f"/api/v1/alerts/rules/{(r := new_rule(s))}",
            {"json": {**RULE, "id": r, "warning": 70}},
        ),
    ),
    ("DELETE", "/api/v1/alerts/rules/{rule_id}"): Entry(
        "editor", 204, lambda s: (f"/api/v1/alerts/rules/{new_rule(s)}", {})
    ),
    ("GET", "/api/v1/alerts/channels"): Entry("viewer", 200, at("/api/v1/alerts/channels")),
    ("POST", "/api/v1/alerts/channels"): Entry(
        "editor", 201, lambda s: ("/api/v1/alerts/channels", {"json": channel_body(uid("c"))})
    ),
    ("GET", "/api/v1/alerts/channels/{channel_id}"): Entry(
        "viewer", 200, lambda s: (f"/api/v1/alerts/channels/{new_channel(s)}", {})
    ),
    ("PUT", "/api/v1/alerts/channels/{channel_id}"): Entry(
        "editor",
        200,
        lambda s: (
            f"/api/v1/alerts/channels/{(c := new_channel(s))}",
            {"json": channel_body(c)},
        ),
    ),
    ("DELETE", "/api/v1/alerts/channels/{channel_id}"): Entry(
        "editor", 204, lambda s: (f"/api/v1/alerts/channels/{new_channel(s)}", {})
    ),
    ("POST", "/api/v1/alerts/channels/{channel_id}/test"): Entry(
        "editor", 200, lambda s: (f"/api/v1/alerts/channels/{new_channel(s)}/test", {})
    ),
    ("GET", "/api/v1/alerts/silences"): Entry("viewer", 200, at("/api/v1/alerts/silences")),
    ("POST", "/api/v1/alerts/silences"): Entry(
        "editor", 201, at("/api/v1/alerts/silences", json=SILENCE)
    ),
    ("GET", "/api/v1/alerts/silences/{silence_id}"): Entry(
        "viewer", 200, lambda s: (f"/api/v1/alerts/silences/{new_silence(s)}", {})
    ),
    ("PUT", "/api/v1/alerts/silences/{silence_id}"): Entry(
        "editor",
        200,
        lambda s: (f"/api/v1/alerts/silences/{new_silence(s)}", {"json": SILENCE}),
    ),
    ("DELETE", "/api/v1/alerts/silences/{silence_id}"): Entry(
        "editor", 204, lambda s: (f"/api/v1/alerts/silences/{new_silence(s)}", {})
    ),
    ("GET", "/api/v1/alerts/active"): Entry("viewer", 200, at("/api/v1/alerts/active")),
    # no alert is firing: an allowed caller reaches the handler, which knows no such alert
    ("POST", "/api/v1/alerts/active/{alert_id}/ack"): Entry(
        "editor", 404, at("/api/v1/alerts/active/no-such-alert/ack")
    ),
    ("GET", "/api/v1/alerts/notifications"): Entry(
        "viewer", 200, at("/api/v1/alerts/notifications")
    ),
    ("GET", "/api/v1/alerts/history"): Entry("viewer", 200, at("/api/v1/alerts/history")),
    ("GET", "/api/v1/hosts"): Entry("viewer", 200, at("/api/v1/hosts")),
    ("GET", "/api/v1/hosts/{host_id}"): Entry("viewer", 200, at(H)),
    ("GET", "/api/v1/hosts/{host_id}/current"): Entry("viewer", 200, at(f"{H}/current")),
    ("GET", "/api/v1/hosts/{host_id}/series"): Entry("viewer", 200, at(f"{H}/series")),
    ("POST", "/api/v1/current"): Entry(
        "viewer", 200, at("/api/v1/current", json={"hosts": [HOST_A], "metrics": ["cpu_load1"]})
    ),
    ("GET", "/api/v1/hosts/{host_id}/processes"): Entry("viewer", 200, at(f"{H}/processes")),
    ("GET", "/api/v1/hosts/{host_id}/processes/history"): Entry(
        "viewer", 200, at(f"{H}/processes/history", params={"start": str(T0)})
    ),
    ("GET", "/api/v1/hosts/{host_id}/metrics/{metric}/history"): Entry(
        "viewer", 200, at(f"{H}/metrics/cpu_busy_percent/history", params={"start": str(T0)})
    ),
    ("POST", "/api/v1/history"): Entry(
        "viewer",
        200,
        at(
            "/api/v1/history",
            json={"start": T0, "series": [{"host_id": HOST_A, "metric": "cpu_busy_percent"}]},
        ),
    ),
    ("GET", "/api/v1/metrics/{area}"): Entry(
        "viewer", 200, at("/api/v1/metrics/cpu", params={"host": HOST_A})
    ),
    ("GET", "/api/v1/catalog"): Entry("viewer", 200, at("/api/v1/catalog")),
    ("GET", "/api/v1/dashboards"): Entry("viewer", 200, at("/api/v1/dashboards")),
    ("POST", "/api/v1/dashboards"): Entry("editor", 201, at("/api/v1/dashboards", json=BOARD)),
    ("GET", "/api/v1/dashboards/templates"): Entry(
        "viewer", 200, at("/api/v1/dashboards/templates")
    ),
    ("POST", "/api/v1/dashboards/import"): Entry(
        "editor", 201, at("/api/v1/dashboards/import", json=BOARD)
    ),
    ("GET", "/api/v1/dashboards/{board_id}"): Entry(
        "viewer", 200, lambda s: (f"/api/v1/dashboards/{new_board(s)}", {})
    ),
    ("GET", "/api/v1/dashboards/{board_id}/export"): Entry(
        "viewer", 200, lambda s: (f"/api/v1/dashboards/{new_board(s, 'view')}/export", {})
    ),
    # shared as "edit": any editor saves it
    ("PUT", "/api/v1/dashboards/{board_id}"): Entry(
        "editor",
        200,
        lambda s: (f"/api/v1/dashboards/{new_board(s)}", {"json": {**BOARD, "sharing": "edit"}}),
    ),
    # only its owner (the admin here) or an admin deletes it
    ("DELETE", "/api/v1/dashboards/{board_id}"): Entry(
        "admin", 204, lambda s: (f"/api/v1/dashboards/{new_board(s)}", {})
    ),
}


def schema_operations() -> set[tuple[str, str]]:
    spec = create_app().openapi()
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


def test_every_route_has_an_entry() -> None:
    ops = schema_operations()
    missing = sorted(ops - set(TABLE))
    assert not missing, f"routes without an entry in the authorization table: {missing}"
    stale = sorted(set(TABLE) - ops)
    assert not stale, f"table entries for routes that no longer exist: {stale}"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def credentials(srv: LiveServer) -> dict[str, str | None]:
    """Each identity's bearer credential (None: no Authorization header)."""
    secret = (srv.settings.data_dir / "jwt-secret").read_text().strip().encode()
    now = int(time.time())
    claims = {"sub": "admin", "typ": "access", "iat": now, "exp": now + 600}
    revoked_refresh = fresh_refresh(srv)
    httpx.post(
        f"{srv.url}/api/v1/auth/logout", json={"refresh_token": revoked_refresh}, timeout=10
    ).raise_for_status()
    gone = uid("host-revoked")
    revoked_key = srv.agent_key(gone)
    key_id = next(
        k["id"]
        for k in admin(srv, "GET", "/api/v1/agent-keys")
        if k["host_id"] == gone and k["revoked_at"] is None
    )
    admin(srv, "POST", f"/api/v1/agent-keys/{key_id}/revoke")
    return {
        "anonymous": None,
        "viewer": srv.token("viewer"),
        "editor": srv.token("editor"),
        "admin": srv.token("admin"),
        "agent_a": srv.agent_key(HOST_A),
        "expired_jwt": jwt.encode(
            {**claims, "iat": now - 3600, "exp": now - 60}, secret, algorithm="HS256"
        ),
        "foreign_jwt": jwt.encode(claims, b"another-server-secret-" * 3, algorithm="HS256"),
        "alg_none_jwt": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "revoked_refresh": revoked_refresh,
        "revoked_key": revoked_key,
    }


def test_every_route_against_every_identity(secured: LiveServer) -> None:
    srv = secured
    path, kw = ingest_body(srv)  # host A has data, so its pages exist
    kw["headers"] = {**kw["headers"], **srv.agent_headers(HOST_A)}
    assert httpx.post(srv.url + path, timeout=30, **kw).status_code == 200
    creds = credentials(srv)
    wrong: list[str] = []
    for (method, route), entry in TABLE.items():
        want = expected(entry.kind, entry.ok)
        for who in IDENTITIES:
            path, kw = entry.prep(srv)
            headers = dict(kw.pop("headers", {}))
            if creds[who] is not None:
                headers["authorization"] = f"Bearer {creds[who]}"
            r = httpx.request(method, srv.url + path, headers=headers, timeout=30, **kw)
            if r.status_code != want[who]:
                wrong.append(f"{method} {route} as {who}: {r.status_code} != {want[who]} {r.text}")
            elif r.status_code == 401:
                assert r.headers.get("www-authenticate") == "Bearer", (method, route, who)
            if r.status_code == 200 and route == "/api/v1/agent/rotate":
                creds["agent_a"] = r.json()["key"]  # the old key stopped working
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("fast_ingest", [True, False])
def test_agent_of_host_a_cannot_push_as_host_b(tmp_path: Any, fast_ingest: bool) -> None:
    with LiveServer(tmp_path / "d", fast_ingest=fast_ingest) as srv:
        t = now_ms() - 1000
        sample = {("cpu_busy_percent", ()): 1.0}
        headers = {"content-type": "application/x-protobuf", **srv.agent_headers(HOST_A)}
        for req in (
            request(batch("host-b", [(t, sample)])),
            request(batch(HOST_A, [(t, sample)]), batch("host-b", [(t, sample)])),
        ):
            r = httpx.post(
                srv.url + "/api/v1/ingest", content=req.SerializeToString(), headers=headers
            )
            assert r.status_code == 403
            assert r.json() == {"detail": f"this key may only push for host {HOST_A}"}
        assert srv.call(srv.store.stats()).hosts == 0  # nothing stored, not even host A's
        listed = httpx.get(srv.url + "/api/v1/hosts", headers=srv.headers("viewer")).json()
        assert listed == []
        ok = request(batch(HOST_A, [(t, sample)])).SerializeToString()
        assert (
            httpx.post(srv.url + "/api/v1/ingest", content=ok, headers=headers).status_code == 200
        )


def test_docs_and_schema_are_public_and_hold_no_data(secured: LiveServer) -> None:
    for page in ("/docs", "/redoc", "/api/v1/openapi.json"):
        assert httpx.get(secured.url + page, timeout=10).status_code == 200
    spec = httpx.get(secured.url + "/api/v1/openapi.json", timeout=10).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert HOST_A not in json.dumps(spec)


@pytest.mark.parametrize("who", IDENTITIES)
def test_live_websocket_needs_a_user_token(secured: LiveServer, who: str) -> None:
    cred = credentials(secured)[who]
    url = secured.url.replace("http://", "ws://") + "/api/v1/ws?format=json"
    # as a browser sends it: the token as a subprotocol, never in the URL
    offered = [Subprotocol("hostpulse")] + ([Subprotocol(f"bearer.{cred}")] if cred else [])
    if who in ("viewer", "editor", "admin"):
        with connect(url, proxy=None, open_timeout=10, subprotocols=offered) as ws:
            assert ws.subprotocol == "hostpulse"
            first = json.loads(ws.recv(timeout=10))
            assert "subscribed" in first
        # the header works as well (clients that can set one)
        with connect(url, proxy=None, additional_headers={"Authorization": f"Bearer {cred}"}) as ws:
            assert "subscribed" in json.loads(ws.recv(timeout=10))
        # the old ?token= query form is gone: a token there is not read (nor logged by a proxy)
        with (
            pytest.raises((ConnectionClosed, InvalidStatus)),
            connect(f"{url}&token={cred}", proxy=None, open_timeout=10) as ws,
        ):
            ws.recv(timeout=10)
        return
    with (
        pytest.raises((ConnectionClosed, InvalidStatus)) as caught,
        connect(url, proxy=None, open_timeout=10, subprotocols=offered) as ws,
    ):
        ws.recv(timeout=10)
    if isinstance(caught.value, ConnectionClosed):
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1008
    else:  # refused before the handshake completed: 403 from the server
        assert caught.value.response.status_code == 403
