"""The host row's labels text is the sorted JSON it always was (rows are compared as text)."""

from __future__ import annotations

import json

from hostpulse.store.registry import _labels_text


def test_host_labels_are_stored_as_sorted_json() -> None:
    labels = {"zone": "b", "app": "\u00fc", "rack": '"7"'}
    assert _labels_text(labels) == json.dumps(labels, sort_keys=True)
    assert _labels_text({}) == "{}"
