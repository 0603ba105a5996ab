"""An ingest worker process: the CPU-bound, stateless part of an ingest request off the
server's event loop and onto another core.

``main([_, LIMITS_JSON, PREPARE])`` (``pool.py`` starts it with ``python -c``) reads requests
from stdin and writes answers to stdout, each a frame: a 4-byte little-endian length, then a pickle
(protocol 5; bytes and numpy arrays only, no message objects). A request is
``(id, now_ms, content_type, content_encoding, body)``; the worker decompresses, parses and
checks it with the same code as the server process (``decode``, ``Checker``: the same
IngestError status, reason and headers) and, with PREPARE=1, ``prepare``s it for the embedded
store (numpy arrays, digests, the WAL payload). Answers (``kind`` second):

- ``(id, PREPARED, signatures, packed)``: ``store.prepare.pack`` of the prepared request;
- ``(id, CHECKED, signatures, payload, tables)``: valid, the serialized request (not
  prepared), with each batch's series-table digest where the check made one (16 zero bytes
  where not: a table this worker had checked before);
- ``(id, REFUSED, status, reason, headers)``: an IngestError;
- ``(id, FAILED, text)``: an unexpected exception (the server answers 500).

``signatures`` are the batches' ``series_signature``s, 16 bytes each, concatenated. The worker
keeps its own caches of checked signatures and series tables (pure functions of the request
and the bounds). It exits when stdin closes (the server stopped or died): no orphans.
The server side is ``pool.py``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import struct
from typing import Any

from hostpulse.protocol import varint
from hostpulse.server.ingest.checker import Checker
from hostpulse.server.ingest.decode import decode
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.store.exceptions import InvalidRequestError
from hostpulse.store.prepare import pack, prepare

PREPARED, CHECKED, REFUSED, FAILED = 0, 1, 2, 3
HELLO = b"hostpulse-ingest-worker 1"
HEADER = struct.Struct("<I")
_NO_TABLE = bytes(16)

logger = logging.getLogger(__name__)


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=5)
    return HEADER.pack(len(data)) + data


def take_frames(buf: bytearray) -> list[Any]:
    """The whole frames at the start of ``buf``, unpickled, in order; their bytes are removed
    from it (a frame not yet whole stays)."""
    out: list[Any] = []
    pos, end = 0, len(buf)
    while end - pos >= HEADER.size:
        size = HEADER.unpack_from(buf, pos)[0]
        start = pos + HEADER.size
        if end - start < size:
            break
        out.append(pickle.loads(buf[start : start + size]))
        pos = start + size
    del buf[:pos]
    return out


def limits_arg(limits: IngestLimits) -> str:
    return json.dumps(dataclasses.asdict(limits))


def answer(checker: Checker, prepared: bool, message: tuple[Any, ...]) -> tuple[Any, ...]:
    rid, now_ms, content_type, encoding, body = message
    try:
        request = decode(body, content_type, encoding, checker.limits)
        checked = checker.check(request, now_ms)
    except IngestError as exc:
        return (rid, REFUSED, exc.status, exc.reason, exc.headers)
    except Exception as exc:  # the server process would have answered 500
        logger.exception("ingest worker: decoding failed")
        return (rid, FAILED, f"{type(exc).__name__}: {exc}")
    checker.remember(checked.fresh)
    signatures = b"".join(checked.signatures)
    if prepared:
        try:
            return (
                rid,
                PREPARED,
                signatures,
                pack(
                    prepare(
                        request,
                        checked.serialized,
                        checked.arrays,
                        checked.signatures,
                        checked.tails,
                        checked.tables,
                    )
                ),
            )
        except InvalidRequestError:  # the store refuses it again, at its turn (same answer)
            pass
    tables = b"".join(t if t is not None else _NO_TABLE for t in checked.tables or ())
    # the request as the batches the check serialized (field 1 each): what the request's own
    # SerializeToString gives, less any field of the request that is not a batch (ignored
    # anyway), without serializing every batch a second time
    payload = b"".join(b"\x0a" + varint.encode(len(data)) + data for data in checked.serialized)
    return (rid, CHECKED, signatures, payload, tables)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    limits = IngestLimits(**json.loads(argv[1]))
    prepared = argv[2] == "1"
    # the frames own stdout: anything else printed goes to stderr (the server's log)
    out = os.dup(1)
    os.dup2(2, 1)
    checker = Checker(limits)
    _write(out, frame(HELLO))
    buf = bytearray()
    while True:  # the requests that arrived together are answered in one write
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return 0
        buf += chunk
        answers = [frame(answer(checker, prepared, m)) for m in take_frames(buf)]
        if answers:
            _write(out, b"".join(answers))
