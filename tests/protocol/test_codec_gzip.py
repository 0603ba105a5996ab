"""gzip bodies: one that fits is returned as the decompressor made it; the bounds and the
errors are the same however the output arrives, with the server's ISA-L inflate and with
zlib (an install without the server extra)."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from types import ModuleType

import pytest
from isal import isal_zlib

from hostpulse.protocol import codec

INSTALLED = codec._inflate


@pytest.fixture(autouse=True, params=[isal_zlib, zlib], ids=["isal", "zlib"])
def inflate(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    module: ModuleType = request.param
    monkeypatch.setattr(codec, "_inflate", module)
    yield


def test_the_server_install_inflates_with_isa_l() -> None:
    assert INSTALLED is isal_zlib


def test_a_body_within_the_limit_comes_back_whole() -> None:
    raw = os.urandom(3000) * 20
    assert codec.decompress(gzip.compress(raw), "gzip", len(raw)) == raw
    assert codec.decompress(gzip.compress(b""), "gzip", 0) == b""


@pytest.mark.parametrize("size", [60_001, 10**6])
def test_one_byte_over_the_limit_is_too_large(size: int) -> None:
    with pytest.raises(codec.TooLarge):
        codec.decompress(gzip.compress(b"\0" * size), "gzip", 60_000)


def test_a_bomb_stops_at_the_limit() -> None:
    with pytest.raises(codec.TooLarge):
        codec.decompress(gzip.compress(b"\0" * (50 * 2**20)), "gzip", 2**20)


@pytest.mark.parametrize("cut", [1, 8, 100])
def test_a_cut_body_is_truncated(cut: int) -> None:
    body = gzip.compress(os.urandom(5000))
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.decompress(body[:-cut], "gzip", 10**6)
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.decompress(b"", "gzip", 10**6)


def test_a_corrupt_body_is_corrupt() -> None:
    with pytest.raises(codec.CodecError, match="corrupt"):
        codec.decompress(b"\x1f\x8b\x08\x00garbage-garbage", "gzip", 10**6)


@pytest.mark.parametrize("body", [b"not gzip at all", b"\x1f\x8bxgarbage-garbage"])
def test_a_body_that_is_not_gzip_is_corrupt(body: bytes) -> None:
    with pytest.raises(codec.CodecError, match="corrupt"):
        codec.decompress(body, "gzip", 10**6)


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("size", [0, 1, 4000, 200_000])
def test_what_gzip_made_comes_back_byte_for_byte(level: int, size: int) -> None:
    # half random, half repetitive: stored, fixed and dynamic deflate blocks
    raw = (os.urandom(size - size // 2) + b"host-cpu-" * (size // 18 + 1))[:size]
    assert len(raw) == size
    assert codec.decompress(gzip.compress(raw, compresslevel=level), "gzip", size) == raw
