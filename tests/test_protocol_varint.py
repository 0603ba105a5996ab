"""The shared varint helpers agree with protobuf's own encoding and refuse broken input."""

from __future__ import annotations

import pytest

from hostpulse.protocol import Snapshot, varint


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 1_700_000_000_000, 2**63 - 1])
def test_encode_matches_protobuf_and_decodes_back(n: int) -> None:
    # Snapshot.timestamp_ms is field 1 (varint): protobuf writes tag 0x08 then the varint
    assert Snapshot(timestamp_ms=n).SerializeToString() in (b"", b"\x08" + varint.encode(n))
    data = b"\xff" + varint.encode(n) + b"\x01"
    assert varint.decode(data, 1) == (n, len(data) - 1)


def test_truncated_and_overlong_varints_are_refused() -> None:
    with pytest.raises(varint.VarintError):
        varint.decode(b"\x80\x80", 0)
    with pytest.raises(varint.VarintError):  # the value ends past the given end
        varint.decode(b"\x80\x01", 0, 1)
    with pytest.raises(varint.VarintError):  # eleven continuation bytes: over 64 bits
        varint.decode(b"\xff" * 11 + b"\x01", 0)
