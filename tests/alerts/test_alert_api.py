"""The /alerts router on a real uvicorn server over loopback, with a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from alert_receivers import LOOPBACK_ALLOW, HttpReceiver
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from hostpulse.alerts.config import parse_config
from hostpulse.alerts.repository import AlertRepository
from hostpulse.alerts.service import AlertService
from hostpulse.server.api.alerts import router
from hostpulse.server.auth.repository import AuthRepository
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.service import AuthService
from hostpulse.server.edge import validation_failed

T = TypeVar("T")
CPU = "cpu_busy_percent"


@dataclass
class Api:
    client: httpx.Client  # signed in as alice, an editor
    loop: asyncio.AbstractEventLoop
    service: AlertService
    viewer: httpx.Client  # signed in as victor, a viewer

    def call(self, fn: Callable[[AlertService], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop (the service is not thread-safe)."""
        return asyncio.run_coroutine_threadsafe(fn(self.service), self.loop).result(10)


@pytest.fixture
def api(tmp_path: Path, http_receiver: HttpReceiver) -> Iterator[Api]:
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hp.db'}")
        await AlertRepository(engine).create_tables()
        cfg = parse_config(
            {
                "allow_networks": list(LOOPBACK_ALLOW),
                "create_default_rules": False,
                "channels": [{"id": "hook", "type": "webhook", "url": http_receiver.url}],
            },
            {},
        )
        service = AlertService(engine, cfg)
        await service.start()
        app.state.alerts = service
        # the router checks roles: alice is an editor (writes rules, acknowledges alerts)
        auth_repo = AuthRepository(engine)
        await auth_repo.create_tables()
        auth = AuthService(auth_repo, secrets.token_hex(32).encode())
        password = secrets.token_urlsafe(16)
        await auth.users.create("alice", password, Role.editor)
        holder["token"] = (await auth.users.login("alice", password, "test")).access_token
        await auth.users.create("victor", password, Role.viewer)
        holder["viewer"] = (await auth.users.login("victor", password, "test")).access_token
        app.state.auth = auth
        holder["loop"] = asyncio.get_running_loop()
        holder["service"] = service
        try:
            yield
        finally:
            await service.stop()
            await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(router, prefix="/api/v1")
    app.add_exception_handler(RequestValidationError, validation_failed)  # as the server does
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}/api/v1/alerts"
        with (
            httpx.Client(
                base_url=base, headers={"authorization": f"Bearer {holder['token']}"}, timeout=10
            ) as c,
            httpx.Client(
                base_url=base, headers={"authorization": f"Bearer {holder['viewer']}"}, timeout=10
            ) as viewer,
        ):
            yield Api(c, holder["loop"], holder["service"], viewer)
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


RULE = {"id": "cpu", "metric": CPU, "op": ">", "warning": 80, "critical": 90, "for": "1m"}


def test_rules_crud(api: Api) -> None:
    c = api.client
    assert c.get("/rules").json() == []
    created = c.post("/rules", json=RULE)
    assert created.status_code == 201, created.text
    assert created.json()["rule"]["for"] == 60.0
    assert created.json()["source"] == "api"
    assert c.post("/rules", json=RULE).status_code == 409
    changed = c.put("/rules/cpu", json={**RULE, "warning": 70})
    assert changed.status_code == 200 and changed.json()["rule"]["warning"] == 70
    assert [r["rule"]["id"] for r in c.get("/rules").json()] == ["cpu"]
    assert c.put("/rules/nope", json={**RULE, "id": "nope"}).status_code == 404
    assert c.delete("/rules/cpu").status_code == 204
    assert c.get("/rules/cpu").status_code == 404


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({**RULE, "metric": "cpu_nope"}, ["body", "threshold", "metric"], "unknown metric"),
        ({"id": "x", "metric": CPU}, ["body", "threshold"], "'warning' or a 'critical'"),
        ({**RULE, "for": "two minutes"}, ["body", "threshold", "for"], "invalid duration"),
        ({**RULE, "op": "=="}, ["body", "threshold", "op"], "'>', '>=', '<' or '<='"),
        ({**RULE, "labels": {"mount": "/"}}, ["body", "threshold"], "has no label 'mount'"),
        ({**RULE, "colour": "red"}, ["body", "threshold", "colour"], "Extra inputs"),
        ({**RULE, "kind": "magic"}, ["body"], "'kind' must be one of"),
        ({**RULE, "id": "has space"}, ["body", "threshold", "id"], "pattern"),
        # an endless "for" once broke the evaluation of every sample after it
        ({**RULE, "for": "inf"}, ["body", "threshold", "for"], "not a finite number"),
        ({**RULE, "for": "nan"}, ["body", "threshold", "for"], "not a finite number"),
        ({**RULE, "for": float("inf")}, ["body", "threshold", "for"], "not a finite number"),
        (
            {**RULE, "aggregation": {"fn": "avg", "window": "1e400"}},
            ["body", "threshold", "aggregation", "window"],
            "not a finite number",
        ),
        ({**RULE, "warning": float("nan")}, ["body", "threshold", "warning"], "finite number"),
        ({**RULE, "critical": float("inf")}, ["body", "threshold", "critical"], "finite number"),
    ],
)
def test_invalid_rule_gets_422_saying_what_is_wrong(
    api: Api, body: dict[str, Any], where: list[str], says: str
) -> None:
    # json.dumps writes NaN and Infinity, which the server's JSON parser reads
    response = api.client.post(
        "/rules", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["loc"] == where and says in d["msg"] for d in detail), detail


def test_rule_with_unknown_channel_or_mismatched_id_is_422(api: Api) -> None:
    response = api.client.post("/rules", json={**RULE, "channels": ["pager"]})
    assert response.status_code == 422
    assert response.json()["detail"] == "channels: unknown channel 'pager'"
    api.client.post("/rules", json=RULE)
    response = api.client.put("/rules/cpu", json={**RULE, "id": "other"})
    assert response.status_code == 422 and "differs" in response.json()["detail"]


def test_channels_crud_masks_secrets_and_test_send(api: Api, http_receiver: HttpReceiver) -> None:
    c = api.client
    spec = {"id": "signed", "type": "webhook", "url": http_receiver.url, "secret": "abc"}
    assert c.post("/channels", json=spec).status_code == 201
    got = c.get("/channels/signed").json()["channel"]
    assert got["secret"] == "********" and got["url"] == "********"
    assert c.put("/channels/signed", json={**got, "name": "Signed"}).status_code == 200
    kept = api.call(lambda s: asyncio.sleep(0, s.channel("signed").spec))
    assert kept.secret == "abc"  # type: ignore[union-attr]
    result = c.post("/channels/signed/test").json()
    assert result["ok"] is True and result["error"] is None
    (req,) = http_receiver.wait_for(1)
    assert req.json()["kind"] == "test"
    assert "x-hostpulse-signature" in req.headers
    http_receiver.statuses = [400]
    failed = c.post("/channels/signed/test").json()
    assert failed["ok"] is False and failed["status"] == 400
    bad = c.post("/channels", json={"id": "x", "type": "sms", "account_sid": "a"})
    assert bad.status_code == 422
    ssrf = c.post("/channels", json={"id": "x", "type": "slack", "url": "http://169.254.169.254/"})
    assert ssrf.status_code == 422 and "allow_networks in alerts.yml" in ssrf.json()["detail"]
    bad_url = c.post("/channels", json={"id": "x", "type": "discord", "url": "ftp://h/x"})
    assert bad_url.status_code == 422 and "http:// or https://" in bad_url.text
    assert c.delete("/channels/signed").status_code == 204
    assert c.post("/channels/signed/test").status_code == 404


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"X-A": "b\r\nX-Injected: 1"}, "printable ASCII on one line"),
        ({"X-Team": "\u00fcber"}, "printable ASCII on one line"),
        ({"Bad Name": "x"}, "not a valid HTTP header name"),
        ({"Content-Length": "5"}, "set by hostpulse"),
    ],
)
def test_webhook_headers_that_could_never_be_sent_are_422(
    api: Api, http_receiver: HttpReceiver, headers: dict[str, str], says: str
) -> None:
    spec = {"id": "h", "type": "webhook", "url": http_receiver.url, "headers": headers}
    response = api.client.post("/channels", json=spec)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook", "headers"] and says in error["msg"]
    ok = {**spec, "headers": {"Authorization": "Bearer abc", "X-Team": "ops"}}
    assert api.client.post("/channels", json=ok).status_code == 201
    assert api.client.post("/channels/h/test").json()["ok"] is True
    (req,) = http_receiver.wait_for(1)
    assert req.headers["x-team"] == "ops"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", ["ops@example.com\r\nBcc: someone@example.net"]),
        ("to", ["not an address"]),
        ("sender", "hostpulse@example.com\nBcc: someone@example.net"),
    ],
)
def test_email_addresses_that_could_never_be_sent_are_422(
    api: Api, field: str, value: object
) -> None:
    spec = {"id": "m", "type": "email", "host": "127.0.0.1", "sender": "hp@example.com"}
    spec |= {"to": ["Ops <ops@example.com>"], field: value}
    response = api.client.post("/channels", json=spec)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "email", field] and "not an email address" in error["msg"]


def test_silences_crud(api: Api) -> None:
    c = api.client
    body = {"hosts": ["web-1"], "ends_at": "2999-01-01T00:00:00Z", "comment": "upgrade"}
    created = c.post("/silences", json=body)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert created.json()["active"] is True
    window = {"rules": ["cpu"], "recurring": {"days": ["sun"], "start": "02:00", "duration": "2h"}}
    assert c.put(f"/silences/{sid}", json=window).json()["silence"]["recurring"]["days"] == ["sun"]
    assert len(c.get("/silences").json()) == 1
    bad = c.post("/silences", json={"ends_at": "2999-01-01T00:00:00Z"})
    assert bad.status_code == 422 and "at least one of" in bad.text
    assert c.delete(f"/silences/{sid}").status_code == 204
    assert c.get(f"/silences/{sid}").status_code == 404


def test_active_ack_and_history(api: Api, http_receiver: HttpReceiver) -> None:
    c = api.client
    assert c.post("/rules", json={**RULE, "for": 0}).status_code == 201

    async def breach(service: AlertService) -> None:
        now = service.clock.now_ms()
        service.observe("web-1", {}, now, [(CPU, (), 95.0)])
        service.observe("web-2", {}, now, [(CPU, (), 85.0)])
        await service.flush()

    api.call(breach)
    active = c.get("/active").json()
    assert [(a["host"], a["severity"], a["state"]) for a in active] == [
        ("web-1", "critical", "firing"),
        ("web-2", "warning", "firing"),
    ]
    acked = c.post(f"/active/{active[0]['id']}/ack", json={"by": "alice"})
    assert acked.status_code == 200 and acked.json()["acked_by"] == "alice"
    assert c.get("/active").json()[0]["acked_by"] == "alice"
    assert c.post("/active/0000/ack").status_code == 404
    assert {r.json()["alerts"][0]["host"] for r in http_receiver.wait_for(2)} == {"web-1", "web-2"}

    deadline = time.monotonic() + 10
    while {n["status"] for n in c.get("/notifications").json()} != {"sent"}:
        assert time.monotonic() < deadline, c.get("/notifications").json()
        time.sleep(0.05)
    sent = c.get("/notifications").json()
    assert sorted(n["summary"] for n in sent) == [
        "[CRITICAL] cpu on web-1",
        "[WARNING] cpu on web-2",
    ]
    assert all(n["attempts"] == 1 and n["channel_id"] == "hook" for n in sent)

    history = c.get("/history", params={"host": "web-1", "state": "firing"}).json()
    assert [(h["from_state"], h["to_state"], h["severity"]) for h in history] == [
        ("pending", "firing", "critical")
    ]
    assert c.get("/history", params={"rule": "other"}).json() == []
    assert c.get("/history", params={"since": "2999-01-01T00:00:00Z"}).json() == []
    assert len(c.get("/history", params={"since": "2000-01-01T00:00:00Z"}).json()) == 4
    bad = c.get("/history", params={"since": "2030-01-01T00:00:00Z", "until": "2020-01-01"})
    assert bad.status_code == 422


def test_openapi_documents_every_alerts_route() -> None:
    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    paths = app.openapi()["paths"]
    assert {p.removeprefix("/api/v1/alerts") for p in paths} == {
        "/rules",
        "/rules/{rule_id}",
        "/channels",
        "/channels/{channel_id}",
        "/channels/{channel_id}/test",
        "/silences",
        "/silences/{silence_id}",
        "/active",
        "/active/{alert_id}/ack",
        "/history",
        "/notifications",
    }


MASK = "********"
# every channel type with every secret-bearing field set; "moved" changes its target
CHANNELS: list[tuple[dict[str, Any], list[str], dict[str, Any]]] = [
    (
        {
            "id": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": 2525,
            "username": "hp",
            "password": "smtp-pass",
            "sender": "hp@example.com",
            "to": ["ops@example.com"],
        },
        ["password"],
        {"host": "127.0.0.2"},
    ),
    (
        {
            "id": "text",
            "type": "sms",
            "base_url": "http://127.0.0.1:9/",
            "account_sid": "AC123",
            "auth_token": "tw-token",
            "from_number": "+15550000001",
            "to": ["+15550000002"],
        },
        ["account_sid", "auth_token"],
        {"base_url": "http://127.0.0.2:9/"},
    ),
    (
        {
            "id": "hook2",
            "type": "webhook",
            "url": "http://127.0.0.1:9/hook?token=t0k",
            "secret": "hmac-key",
            "headers": {"Authorization": "Bearer hdr-secret", "X-Team": "ops"},
        },
        ["url", "secret", "headers.Authorization", "headers.X-Team"],
        {"url": "http://127.0.0.2:9/hook"},
    ),
    (
        {"id": "am", "type": "alertmanager", "url": "http://127.0.0.1:9/am?key=k3y"},
        ["url"],
        {},  # the URL is the only secret: a new URL is a new secret
    ),
    (
        {"id": "sl", "type": "slack", "url": "http://127.0.0.1:9/services/T/B/xyz"},
        ["url"],
        {},
    ),
    (
        {"id": "dc", "type": "discord", "url": "http://127.0.0.1:9/api/webhooks/1/abc"},
        ["url"],
        {},
    ),
]
SECRETS = ("smtp-pass", "AC123", "tw-token", "t0k", "hmac-key", "hdr-secret", "k3y", "xyz", "abc")


def _field(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


@pytest.mark.parametrize(("spec", "secrets_at", "moved"), CHANNELS, ids=lambda v: str(v)[:12])
def test_channel_secrets_are_masked_for_editors_and_viewers_see_no_target(
    api: Api, spec: dict[str, Any], secrets_at: list[str], moved: dict[str, Any]
) -> None:
    del moved
    created = api.client.post("/channels", json=spec)
    assert created.status_code == 201, created.text
    for answer in (created, api.client.get(f"/channels/{spec['id']}"), api.client.get("/channels")):
        assert not any(s in answer.text for s in SECRETS), answer.text
    got = api.client.get(f"/channels/{spec['id']}").json()["channel"]
    assert all(_field(got, path) == MASK for path in secrets_at)
    for answer in (api.viewer.get(f"/channels/{spec['id']}"), api.viewer.get("/channels")):
        assert answer.status_code == 200
        assert not any(s in answer.text for s in SECRETS), answer.text
    seen = api.viewer.get(f"/channels/{spec['id']}").json()["channel"]
    assert set(seen) == {"id", "name", "type", "enabled", "min_severity", "send_resolved"}


@pytest.mark.parametrize(("spec", "secrets_at", "moved"), CHANNELS, ids=lambda v: str(v)[:12])
def test_a_masked_secret_is_kept_only_while_the_target_is_unchanged(
    api: Api, spec: dict[str, Any], secrets_at: list[str], moved: dict[str, Any]
) -> None:
    c, cid = api.client, spec["id"]
    assert c.post("/channels", json=spec).status_code == 201
    echoed = c.get(f"/channels/{cid}").json()["channel"]
    renamed = c.put(f"/channels/{cid}", json={**echoed, "name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    stored = api.call(lambda s: asyncio.sleep(0, s.channel(cid).spec)).model_dump(mode="json")
    assert stored == {**spec, "name": "renamed", **{k: stored[k] for k in stored if k not in spec}}
    if moved:
        refused = c.put(f"/channels/{cid}", json={**echoed, **moved})
        assert refused.status_code == 422, refused.text
        first_masked = next(p for p in secrets_at if p.split(".")[0] not in moved)
        assert refused.json()["detail"].startswith(f"{first_masked}: the channel's")
        again = api.call(lambda s: asyncio.sleep(0, s.channel(cid).spec)).model_dump(mode="json")
        assert again == stored  # nothing changed
        fresh = {**spec, **moved}
        assert c.put(f"/channels/{cid}", json=fresh).status_code == 200
    # a mask where nothing is stored is not saved as the secret
    bare = {**spec, "id": cid + "x", **{p: MASK for p in secrets_at if "." not in p}}
    refused = c.post("/channels", json=bare)
    assert refused.status_code == 422 and "give the value" in refused.json()["detail"]


def test_an_editor_cannot_redirect_a_stored_smtp_password_to_its_own_server(api: Api) -> None:
    spec, _, _ = CHANNELS[0]
    c = api.client
    assert c.post("/channels", json=spec).status_code == 201
    echoed = c.get("/channels/mail").json()["channel"]
    for change in ({"host": "127.0.0.9"}, {"port": 25}, {"security": "none"}):
        answer = c.put("/channels/mail", json={**echoed, **change})
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("password: the channel's")
    kept = api.call(lambda s: asyncio.sleep(0, s.channel("mail").spec))
    assert (kept.host, kept.port, kept.password) == ("127.0.0.1", 2525, "smtp-pass")  # type: ignore[union-attr]


def test_a_silence_is_created_by_the_signed_in_user(api: Api) -> None:
    c = api.client
    body = {"hosts": ["web-1"], "ends_at": "2999-01-01T00:00:00Z", "created_by": "mallory"}
    created = c.post("/silences", json=body)
    assert created.status_code == 201
    assert created.json()["silence"]["created_by"] == "alice"
    sid = created.json()["id"]
    replaced = c.put(f"/silences/{sid}", json={**body, "comment": "longer"})
    assert replaced.json()["silence"]["created_by"] == "alice"
    assert c.get(f"/silences/{sid}").json()["silence"]["created_by"] == "alice"
    assert api.viewer.post("/silences", json=body).status_code == 403
