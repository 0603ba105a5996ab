"""Schemathesis against the server's own OpenAPI document, every operation, on a real server
over loopback: no 5xx, and every answer matches what the schema declares (status codes,
content types, headers, bodies). Examples per operation are bounded to keep this fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode, checks
from schemathesis.schemas import APIOperation
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, codec
from hostpulse.server.app import create_app
from hostpulse.server.config import ServerSettings
from hostpulse.server.testing import LiveServer

EXAMPLES_PER_OPERATION = 40
# Not checked: that every schema-valid request is accepted. The API also validates what a
# schema cannot say (a metric must be in the catalog, a silence needs a matcher, a duration is
# not negative), so such requests are rightly answered 422 (which the schema declares).
# Nor ``ignored_auth``: it re-sends a request "without authentication" but keeps the headers
# given here, so it cannot tell; tests/server/security/test_authz_matrix.py sends every route
# with no, expired, forged and revoked credentials instead.
# Nor that every schema-violating request is refused: unknown query parameters are ignored (the
# history route also takes dynamic ``label.<name>`` filters), which the schema cannot express.
# What stays checked: no 5xx, and every answer's status, content type, headers and body match
# the schema.
NOT_CHECKED = [
    checks.positive_data_acceptance,
    checks.ignored_auth,
    checks.negative_data_rejection,
]
HOST = "schema-host"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with one host's data, so that routes with a host in the path have something
    to answer with besides 404."""
    with LiveServer(tmp_path_factory.mktemp("schema") / "data") as srv:
        t0 = now_ms() - 120_000
        values = {
            ("cpu_busy_percent", ()): 10.0,
            ("filesystem_used_bytes", (("device", "sda1"), ("mountpoint", "/"))): 5e9,
        }
        body = codec.encode(request(batch(HOST, [(t0 + 1000 * i, values) for i in range(60)])))
        r = httpx.post(
            srv.url + "/api/v1/ingest",
            content=body,
            headers={
                "content-type": PROTOBUF_CONTENT_TYPE,
                "content-encoding": "gzip",
                **srv.agent_headers(HOST),
            },
        )
        r.raise_for_status()
        # channel targets are resolved by the SSRF guard: answer from here rather than DNS,
        # so fuzzed host names never leave the machine (tests talk to loopback only)
        srv.app.state.alerts.guard._resolve = offline_resolver
        yield srv


async def offline_resolver(host: str, port: int) -> list[str]:
    """Every name resolves to a documentation address (refused by the guard: 422)."""
    del host, port
    return ["192.0.2.1"]


AGENT_OPERATIONS = {"POST /api/v1/ingest", "POST /api/v1/agent/rotate"}


@pytest.fixture(scope="module")
def auth_headers(live: LiveServer) -> Callable[[str], dict[str, str]]:
    """The headers an operation's fuzzed requests carry: an admin's bearer token, or for the
    agents' operations the host's agent key, so that the fuzzing reaches the routes' logic
    rather than stopping at 401."""
    admin = live.headers("admin")
    agent = live.agent_headers(HOST)
    return lambda label: agent if label in AGENT_OPERATIONS else admin


def load_operations() -> dict[str, APIOperation]:
    """Every operation of the app's OpenAPI document (built without starting anything)."""
    doc = create_app(ServerSettings()).openapi()
    loaded = schemathesis.openapi.from_dict(doc)
    ops = [result.ok() for result in loaded.get_all_operations()]
    return {op.label: op for op in ops}


OPERATIONS = load_operations()
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection"}


def test_the_schema_lists_the_api() -> None:
    assert len(OPERATIONS) >= 20
    assert "POST /api/v1/ingest" in OPERATIONS


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_within_its_schema(
    label: str, live: LiveServer, auth_headers: Callable[[str], dict[str, str]]
) -> None:
    operation = OPERATIONS[label]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Case) -> None:
        # the generated Authorization header stands for real credentials; a case generated
        # without one goes without (and must get a documented 401)
        # framing headers are the HTTP client's: a generated "content-length: [wm3" is refused
        # by the HTTP parser (uvicorn's 400) before any route, so no operation documents it
        headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() not in FRAMING_HEADERS
        }
        if any(k.lower() == "authorization" for k in headers):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers.update(auth_headers(label))
        case.headers = headers
        case.call_and_validate(
            base_url=live.url,
            timeout=30,
            excluded_checks=NOT_CHECKED,
        )

    call()
