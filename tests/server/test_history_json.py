"""The history JSON built from the store's point columns is the ``History`` model's JSON:
the same numbers (orjson's formatting of numpy and Python floats), the same fields."""

from __future__ import annotations

import json

import numpy as np
import orjson

from hostpulse.server import query_service as qs
from hostpulse.server.api.models import History
from hostpulse.store.types import Agg, PointArrays, RangeResult, SeriesPoints, Tier


def _arrays(n: int, seed: int) -> PointArrays:
    rng = np.random.default_rng(seed)
    value = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    value[: min(n, 6)] = [0.0, -0.0, 5e-324, 1e300, 12.0, 123456789012345.6][: min(n, 6)]
    return PointArrays(
        np.arange(n, dtype=np.int64) * 60_000 + 1_700_000_000_000,
        value,
        value - rng.random(n),
        value + rng.random(n),
        rng.integers(1, 13, n).astype(np.int64),
    )


def test_points_json_is_orjson_of_the_points() -> None:
    for n in (0, 1, 2, 1440):
        a = _arrays(n, n)
        assert qs.points_json(a) == orjson.dumps(a.points())


def test_history_json_matches_the_model() -> None:
    res = RangeResult(
        Tier.MINUTE,
        60_000,
        [
            SeriesPoints(
                "fs_used_bytes", (("device", 'sd"a'), ("mountpoint", "/")), arrays=_arrays(30, 1)
            ),
            SeriesPoints(
                "fs_used_bytes", (("device", "sdb"), ("mountpoint", "/x")), arrays=_arrays(0, 2)
            ),
            SeriesPoints(
                "fs_used_bytes", (("device", "sdc"), ("mountpoint", "/y")), _arrays(3, 3).points()
            ),
        ],
        next_cursor="t123",
    )
    body = qs.history_json("h\u00e9-1", "fs_used_bytes", 1, 2, Agg.MAX, res)
    model = History(
        host_id="h\u00e9-1",
        metric="fs_used_bytes",
        start_ms=1,
        end_ms=2,
        agg=Agg.MAX,
        tier=Tier.MINUTE,
        step_ms=60_000,
        series=qs.series_out(res.series),
        next_cursor="t123",
    )
    assert json.loads(body) == json.loads(model.model_dump_json())
    assert History.model_validate_json(body) == model
