import re

from hostpulse import catalog


def test_every_key_is_declared_once() -> None:
    keys = [m.key for m in catalog.METRICS]
    assert len(keys) == len(set(keys))


def test_prometheus_names_follow_node_exporter_conventions() -> None:
    for m in catalog.METRICS:
        if m.subsystem == "container":  # cAdvisor's names
            assert m.prom_name == m.key + ("_total" if m.kind is catalog.Kind.COUNTER else "")
        else:
            assert re.fullmatch(r"node_[a-z][a-z0-9_]*", m.prom_name), m.prom_name
        assert m.prom_name.endswith("_total") == (m.kind is catalog.Kind.COUNTER), m.prom_name
        assert m.help.endswith("."), m.key


def test_rates_point_at_counters_of_the_same_collector() -> None:
    for m in catalog.METRICS:
        if m.rate_of is not None:
            source = catalog.get(m.rate_of)
            assert source.kind is catalog.Kind.COUNTER, m.key
            assert source.collector == m.collector, m.key


def test_unknown_key_names_the_key() -> None:
    try:
        catalog.get("cpu_nonsense")
    except KeyError as exc:
        assert "cpu_nonsense" in str(exc)
    else:
        raise AssertionError("expected KeyError")
