"""Property tests of the ingest decoders and validation, through ``IngestService.ingest_body``
on a real store: arbitrary bytes, mutated valid messages (protobuf and JSON, plain and
compressed) and arbitrary JSON structures never raise anything but ``IngestError`` with a 4xx
status; what is accepted is stored and can be read back."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import batch, now_ms, request

from hostpulse.protocol import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, IngestRequest, codec
from hostpulse.server.ingest import IngestError, IngestLimits, IngestService
from hostpulse.store import open_store

EXAMPLES = 2000
DECLARED = {400, 413, 415, 422}
CONTENT_TYPES = [PROTOBUF_CONTENT_TYPE, JSON_CONTENT_TYPE, "application/json; charset=utf-8"]
ENCODINGS = [None, "identity", "gzip", "zstd"]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = IngestLimits(max_body_bytes=256 * 1024, max_decompressed_bytes=1024 * 1024)


def valid_request() -> IngestRequest:
    t0 = now_ms() - 60_000
    values = {
        ("cpu_busy_percent", ()): 12.5,
        ("memory_used_bytes", ()): 1e9,
        ("filesystem_used_bytes", (("device", "sda1"), ("mountpoint", "/"))): 5e9,
    }
    return request(batch("fuzz-host", [(t0 + 1000 * i, values) for i in range(3)]))


def compress(raw: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(raw, mtime=0)
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with a few bytes flipped, cut, inserted or duplicated."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "dup", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
KEYS = [
    "batches",
    "host",
    "hostId",
    "series",
    "snapshots",
    "metric",
    "labels",
    "name",
    "value",
    "timestampMs",
    "seriesIndex",
    "values",
    "intervalSeconds",
    "topCpu",
    "pid",
    "unsupported",
]


@st.composite
def shaped_json(draw: st.DrawFn) -> Any:
    """JSON with the request's field names in random places, values of random types."""

    def node(depth: int) -> Any:
        if depth > 3 or draw(st.booleans()):
            return draw(JSON_VALUES)
        if draw(st.booleans()):
            return [node(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        keys = draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True))
        return {k: node(depth + 1) for k in keys}

    return {"batches": [node(0) for _ in range(draw(st.integers(0, 3)))]}


@st.composite
def json_values_edited(draw: st.DrawFn) -> Any:
    """The valid request as JSON with one leaf replaced by an arbitrary JSON value."""
    doc = json.loads(codec.encode(valid_request(), json=True, encoding="identity"))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            paths.append((node, k))
            if isinstance(v, dict | list):
                walk(v)

    walk(doc)
    parent, key = draw(st.sampled_from(paths))
    parent[key] = draw(JSON_VALUES)
    return doc


class Harness:
    """One real store and service for all examples, on one event loop."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = open_store(str(tmp / "store"))
        self.loop.run_until_complete(self.store.start())
        self.service = IngestService(self.store, LIMITS, lambda: now_ms() / 1000)
        self.accepted = 0

    def check(self, body: bytes, content_type: str | None, encoding: str | None) -> None:
        try:
            result = self.loop.run_until_complete(
                self.service.ingest_body(body, content_type, encoding)
            )
        except IngestError as exc:
            assert exc.status in DECLARED, (exc.status, exc.reason)
            assert exc.reason and isinstance(exc.reason, str)
            return
        assert result.accepted >= 0 and result.duplicates >= 0
        self.accepted += 1

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def run(tmp_path: Path, test: Callable[[Harness], None]) -> Harness:
    h = Harness(tmp_path)
    try:
        test(h)
    finally:
        h.close()
    return h


def test_arbitrary_bytes_are_refused_with_a_declared_status(tmp_path: Path) -> None:
    def test(h: Harness) -> None:
        @FUZZ
        @given(
            body=st.binary(max_size=2048),
            content_type=st.sampled_from([*CONTENT_TYPES, None, "text/plain", ""]),
            encoding=st.sampled_from([*ENCODINGS, "br", "GZIP", " zstd "]),
        )
        def prop(body: bytes, content_type: str | None, encoding: str | None) -> None:
            h.check(body, content_type, encoding)

        prop()

    run(tmp_path, test)


def test_mutated_valid_messages_never_raise_anything_else(tmp_path: Path) -> None:
    pb = codec.encode(valid_request(), encoding="identity")
    js = codec.encode(valid_request(), json=True, encoding="identity")

    def test(h: Harness) -> None:
        @FUZZ
        @given(
            kind=st.sampled_from(["pb", "json"]),
            encoding=st.sampled_from(ENCODINGS),
            mutate_compressed=st.booleans(),
            data=st.data(),
        )
        def prop(
            kind: str, encoding: str | None, mutate_compressed: bool, data: st.DataObject
        ) -> None:
            raw = pb if kind == "pb" else js
            ct = PROTOBUF_CONTENT_TYPE if kind == "pb" else JSON_CONTENT_TYPE
            if mutate_compressed:
                body = data.draw(mutated(compress(raw, encoding)))
            else:
                body = compress(data.draw(mutated(raw)), encoding)
            h.check(body, ct, encoding)

        prop()

    h = run(tmp_path, test)
    assert h.accepted > 0  # some mutations stay valid (and must then be stored)


def test_json_structures_never_raise_anything_else(tmp_path: Path) -> None:
    def test(h: Harness) -> None:
        @FUZZ
        @given(doc=JSON_VALUES | shaped_json() | json_values_edited())
        def prop(doc: Any) -> None:
            body = json.dumps(doc).encode()
            h.check(body, JSON_CONTENT_TYPE, None)

        prop()

    h = run(tmp_path, test)
    assert h.accepted > 0


def test_the_valid_request_is_accepted(tmp_path: Path) -> None:
    def test(h: Harness) -> None:
        body = codec.encode(valid_request(), encoding="gzip")
        h.check(body, PROTOBUF_CONTENT_TYPE, "gzip")
        assert h.accepted == 1

    run(tmp_path, test)


def test_a_json_body_that_is_not_an_object_is_a_400(tmp_path: Path) -> None:
    # found by schemathesis: protobuf's JSON parser took `[]` as an empty request (200)
    def test(h: Harness) -> None:
        for body in (b"[]", b" [1, 2]", b"null", b"42", b'"batches"', b"\n true"):
            try:
                h.loop.run_until_complete(h.service.ingest_body(body, JSON_CONTENT_TYPE, None))
            except IngestError as exc:
                assert exc.status == 400 and "expected an object" in exc.reason
            else:
                raise AssertionError(f"{body!r} was accepted")

    run(tmp_path, test)
