"""The host row's labels text is the sorted JSON it always was (rows are compared as text)."""

from __future__ import annotations

import json

from hostpulse.store.registry import _labels_text


def test_host_labels_are_stored_as_sorted_json() -> None:
    labels = {"zone": "b", "app": "\u00fc", "rack": '"7"'}
    assert _labels_text(labels) == json.dumps(labels, sort_keys=True)
    assert _labels_text({}) == "{}"


def test_series_rows_are_written_in_statements_of_a_few_sizes() -> None:
    """Every row is written once, in statements whose sizes repeat (each size is compiled by
    SQLite once): at most ``per`` rows each, all full ones but the power-of-two rest."""
    from hostpulse.store.registry import _statement_sizes

    seen: set[int] = set()
    for n in [*range(0, 300), 1999, 2000, 2001, 4321, 16_500]:
        for per in (2000, 249):
            sizes = _statement_sizes(n, per)
            assert sum(sizes) == n and all(0 < s <= per for s in sizes)
            rest = [s for s in sizes if s != per]
            assert all(s & (s - 1) == 0 for s in rest) and len(set(rest)) == len(rest)
            seen.update(sizes)
    assert len(seen) <= 2 + 11 + 8
