"""/api/v1/dashboards on a real server, with the relational state in SQLite and in PostgreSQL:
boards keep their owner, viewers read shared boards but never write, editors change boards
shared as ``edit`` but not their sharing, private boards are invisible to others, stale saves
are refused, export/import round-trips and the bounds answer 4xx naming what is wrong."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hostpulse.server.dashboards import limits
from hostpulse.server.testing import Clock, LiveServer

BOARD: dict[str, Any] = {
    "name": "Web tier",
    "spec": {
        "range_s": 3600,
        "variables": [{"name": "host", "type": "host", "default": "web-1"}],
        "widgets": [
            {
                "id": "cpu",
                "type": "timeseries",
                "x": 0,
                "y": 0,
                "w": 6,
                "h": 4,
                "metric": "cpu_busy_percent",
                "host": "$host",
                "title": "CPU",
            },
            {"id": "hosts", "type": "hosts", "x": 6, "y": 0, "w": 6, "h": 4},
        ],
    },
}


@pytest.fixture
def srv(tmp_path: Path, server_db: dict[str, str]) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "d", Clock(), **server_db) as server:
        yield server


class Api:
    def __init__(self, srv: LiveServer, role: str) -> None:
        self.srv, self.headers = srv, srv.headers(role)

    def __call__(self, method: str, path: str = "", **kw: Any) -> httpx.Response:
        url = f"{self.srv.url}/api/v1/dashboards{path}"
        return httpx.request(method, url, headers=self.headers, timeout=30, **kw)


def second_editor(srv: LiveServer) -> Api:
    pw = "pw-second-editor-1"
    body = {"username": "editor2", "password": pw, "role": "editor"}
    httpx.post(
        f"{srv.url}/api/v1/users", json=body, headers=srv.headers("admin")
    ).raise_for_status()
    api = Api.__new__(Api)
    api.srv = srv
    api.headers = {"authorization": f"Bearer {srv.login('editor2', pw)['access_token']}"}
    return api


def test_owner_sharing_and_roles(srv: LiveServer) -> None:
    admin, editor, viewer = Api(srv, "admin"), Api(srv, "editor"), Api(srv, "viewer")
    other = second_editor(srv)

    r = viewer("POST", json=BOARD)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    r = editor("POST", json=BOARD)
    assert r.status_code == 201, r.text
    board = r.json()
    assert board["owner"] == "editor" and board["sharing"] == "private" and board["version"] == 1
    assert board["spec"]["widgets"][0]["host"] == "$host"
    bid = board["id"]

    # private: others do not even learn it exists; admins see every board
    for api in (viewer, other):
        assert api("GET", f"/{bid}").status_code == 404
        assert bid not in [b["id"] for b in api("GET").json()]
    assert bid in [b["id"] for b in admin("GET").json()]

    # shared read-only: everyone reads it, nobody but the owner and admins writes
    shared = {**BOARD, "sharing": "view", "version": 1}
    r = editor("PUT", f"/{bid}", json=shared)
    assert r.status_code == 200 and r.json()["version"] == 2
    got = viewer("GET", f"/{bid}").json()
    assert got["spec"] == r.json()["spec"] and got["can_edit"] is False
    assert [b["id"] for b in viewer("GET").json()] == [bid]
    assert other("GET", f"/{bid}").json()["can_edit"] is False
    for api in (viewer, other):
        assert api("PUT", f"/{bid}", json={**BOARD, "sharing": "view"}).status_code == 403
        assert api("DELETE", f"/{bid}").status_code == 403

    # shared editable: other editors save it but neither re-share nor delete it; viewers still
    # only read
    r = editor("PUT", f"/{bid}", json={**BOARD, "sharing": "edit"})
    assert r.status_code == 200
    renamed = {**BOARD, "name": "Web tier (by editor2)", "sharing": "edit"}
    r = other("PUT", f"/{bid}", json=renamed)
    assert r.status_code == 200 and r.json()["owner"] == "editor"
    assert r.json()["can_edit"] and not r.json()["can_manage"]
    assert other("PUT", f"/{bid}", json={**renamed, "sharing": "private"}).status_code == 403
    assert other("DELETE", f"/{bid}").status_code == 403
    assert viewer("PUT", f"/{bid}", json=renamed).status_code == 403
    v = viewer("GET", f"/{bid}").json()
    assert v["name"] == "Web tier (by editor2)" and v["can_edit"] is False

    # admins manage any board
    assert admin("PUT", f"/{bid}", json={**renamed, "sharing": "private"}).status_code == 200
    assert other("GET", f"/{bid}").status_code == 404
    assert admin("DELETE", f"/{bid}").status_code == 204
    assert editor("GET", f"/{bid}").status_code == 404


def test_stale_save_is_refused(srv: LiveServer) -> None:
    editor = Api(srv, "editor")
    bid = editor("POST", json=BOARD).json()["id"]
    assert (
        editor("PUT", f"/{bid}", json={**BOARD, "name": "first", "version": 1}).status_code == 200
    )
    r = editor("PUT", f"/{bid}", json={**BOARD, "name": "second", "version": 1})
    assert r.status_code == 409 and "since version 1" in r.json()["detail"]
    assert editor("GET", f"/{bid}").json()["name"] == "first"
    assert editor("PUT", f"/{bid}", json={**BOARD, "name": "third"}).status_code == 200


def test_export_import_round_trip_and_templates(srv: LiveServer) -> None:
    editor, viewer = Api(srv, "editor"), Api(srv, "viewer")
    bid = editor("POST", json={**BOARD, "sharing": "view"}).json()["id"]
    r = viewer("GET", f"/{bid}/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    doc = r.json()
    assert doc["hostpulse_dashboard"] == 1 and "owner" not in doc and "id" not in doc
    assert viewer("POST", "/import", json=doc).status_code == 403
    admin = Api(srv, "admin")
    copy_ = admin("POST", "/import", json=doc).json()
    assert copy_["owner"] == "admin" and copy_["sharing"] == "private"
    assert copy_["spec"] == editor("GET", f"/{bid}").json()["spec"]

    templates = viewer("GET", "/templates").json()
    assert [t["id"] for t in templates] == ["fleet", "host", "changed"]
    host = next(t for t in templates if t["id"] == "host")
    assert [v["name"] for v in host["spec"]["variables"]] == ["host"]
    types = {w["type"] for t in templates for w in t["spec"]["widgets"]}
    assert types == {"timeseries", "stat", "gauge", "bar", "table", "processes", "alerts", "hosts"}
    for t in templates:
        made = editor("POST", "/import", json={k: v for k, v in t.items() if k != "id"})
        assert made.status_code == 201, made.text


def with_widget(**change: Any) -> dict[str, Any]:
    board = copy.deepcopy(BOARD)
    board["spec"]["widgets"][0].update(change)
    return board


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**BOARD, "name": ""}, "name"),
        ({**BOARD, "name": "n" * (limits.MAX_NAME + 1)}, "name"),
        (with_widget(metric="no_such_metric"), "unknown metric"),
        (with_widget(metric=None), "needs a metric"),
        (with_widget(x=8, w=6), "12 columns"),
        (with_widget(h=limits.MAX_HEIGHT + 1), "h"),
        (with_widget(host="$nope"), "not a variable"),
        (with_widget(type="pie"), "type"),
        (with_widget(script="alert(1)"), "script"),
        ({**BOARD, "sharing": "public"}, "sharing"),
        (
            {
                **BOARD,
                "spec": {
                    "widgets": [
                        {"id": f"w{i}", "type": "hosts", "x": 0, "y": i, "w": 1, "h": 1}
                        for i in range(limits.MAX_WIDGETS + 1)
                    ]
                },
            },
            "widgets",
        ),
        (
            {
                **BOARD,
                "spec": {
                    "widgets": [
                        {
                            "id": f"w{i}",
                            "type": "hosts",
                            "x": 0,
                            "y": i,
                            "w": 1,
                            "h": 1,
                            "title": "t" * limits.MAX_NAME,
                            "labels": {f"k{j}": "v" * 200 for j in range(limits.MAX_LABEL_FILTERS)},
                        }
                        for i in range(limits.MAX_WIDGETS)
                    ]
                },
            },
            "bytes of JSON",
        ),
    ],
)
def test_bad_boards_get_422_naming_the_problem(
    tmp_path: Path, body: dict[str, Any], needle: str, bounds_server: LiveServer
) -> None:
    r = Api(bounds_server, "editor")("POST", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text


@pytest.fixture(scope="module")
def bounds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("bounds") / "d", Clock()) as server:
        yield server


def test_boards_per_user_bound(bounds_server: LiveServer) -> None:
    srv = bounds_server
    service = srv.app.state.dashboards
    service.max_per_user = 3
    try:
        editor = Api(srv, "editor")
        owned = sum(b["owner"] == "editor" for b in editor("GET").json())
        for _ in range(3 - owned):
            assert editor("POST", json=BOARD).status_code == 201
        r = editor("POST", json=BOARD)
        assert r.status_code == 409 and "3 dashboards" in r.json()["detail"]
        assert Api(srv, "admin")("POST", json=BOARD).status_code == 201  # per user
    finally:
        service.max_per_user = limits.MAX_BOARDS_PER_USER


def test_requests_without_a_session_are_refused(bounds_server: LiveServer) -> None:
    r = httpx.get(f"{bounds_server.url}/api/v1/dashboards", timeout=10)
    assert r.status_code == 401
    r = httpx.get(
        f"{bounds_server.url}/api/v1/dashboards/not%20an%20id",
        headers=bounds_server.headers("viewer"),
        timeout=10,
    )
    assert r.status_code == 422


def test_a_board_naming_a_dropped_metric_still_opens(bounds_server: LiveServer) -> None:
    """The catalog is checked when a board is saved; one stored by an older version whose
    metric is gone still opens and exports, and saving it again names the widget to fix."""
    srv = bounds_server
    editor = Api(srv, "editor")
    bid = editor("POST", json=BOARD).json()["id"]
    stale = copy.deepcopy(BOARD["spec"])
    stale["widgets"][0]["metric"] = "cpu_metric_of_an_older_version"
    repo = srv.app.state.dashboards.repo
    saved = srv.call(
        repo.update(bid, expected_version=None, name="old", sharing="private", spec=stale, now_ms=1)
    )
    assert saved is not None
    r = editor("GET", f"/{bid}")
    assert r.status_code == 200 and r.json()["spec"]["widgets"][0]["metric"].startswith("cpu_m")
    assert editor("GET", f"/{bid}/export").status_code == 200
    r = editor("PUT", f"/{bid}", json={"name": "old", "spec": stale})
    assert r.status_code == 422
    assert "spec.widgets[0].metric: unknown metric 'cpu_metric_of_an_older_version'" in r.text
