"""Admission control rules: the request cap, the byte cap, and a lone request always admitted."""

from __future__ import annotations

import pytest

from hostpulse.server.ingest.admission import Admission, Overloaded


def test_requests_beyond_the_cap_are_refused_until_one_leaves() -> None:
    a = Admission(max_requests=2, max_bytes=1000, retry_after=7)
    a.enter(10)
    a.enter(10)
    with pytest.raises(Overloaded) as refused:
        a.enter(10)
    assert refused.value.retry_after == 7
    assert "2 ingest requests (20 bytes)" in refused.value.reason
    a.leave(10)
    a.enter(10)
    assert (a.pending, a.pending_bytes, a.refused) == (2, 20, 1)


def test_bytes_beyond_the_cap_are_refused_but_a_lone_request_always_enters() -> None:
    a = Admission(max_requests=100, max_bytes=1000, retry_after=1)
    a.enter(5000)  # alone: admitted however large (max_body_bytes bounds it)
    with pytest.raises(Overloaded):
        a.enter(1)
    a.leave(5000)
    a.enter(600)
    with pytest.raises(Overloaded):
        a.enter(401)
    a.enter(400)
    assert (a.pending, a.pending_bytes) == (2, 1000)
