"""AgentSettings: precedence, ${VAR} substitution, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostpulse.agent.config import AgentSettings, ConfigError, load_settings, parse_listen


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == AgentSettings()
    assert s.interval == 5.0
    assert s.interval_of("cpu") == 5.0
    assert s.interval_of("disk_usage") == 30.0
    assert s.interval_of("processes") == 15.0
    assert s.exporter.listen is None
    assert s.log.level == "info"


def test_file_env_flags_precedence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "interval: 10\ntop_n: 3\nlog:\n  level: warning\n  file: /tmp/x.log\n"
        "labels:\n  env: prod\nexporter:\n  listen: 127.0.0.1:9100\n",
    )
    env = {"HOSTPULSE_INTERVAL": "7", "HOSTPULSE_LOG__LEVEL": "debug"}
    s = load_settings(path, env=env, overrides={"interval": "2", "top_n": None})
    assert s.interval == 2.0  # flag beats env and file
    assert s.log.level == "debug"  # env beats file
    assert s.log.file == "/tmp/x.log"  # file beats default; siblings merge
    assert s.top_n == 3  # a flag that was not given does not override
    assert s.labels == {"env": "prod"}
    assert s.exporter.listen == "127.0.0.1:9100"


def test_labels_merge_name_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "labels:\n  env: prod\n  role: web\n  dc: a\n")
    env = {"HOSTPULSE_LABELS": "role=db"}
    s = load_settings(path, env=env, overrides={"labels": "dc=b,rack=7"})
    assert s.labels == {"env": "prod", "role": "db", "dc": "b", "rack": "7"}
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"labels": "nolabel"})
    assert info.value.key == "labels"


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "top_n: 4\n")
    assert load_settings(env={"HOSTPULSE_CONFIG": str(path)}).top_n == 4


def test_env_nested_and_labels() -> None:
    env = {
        "HOSTPULSE_INTERVALS__DISK_USAGE": "60",
        "HOSTPULSE_LABELS": "env=prod, role=db",
        "HOSTPULSE_SERVER_URL": "http://x",  # another component's variable: ignored
    }
    s = load_settings(env=env)
    assert s.interval_of("disk_usage") == 60.0
    assert s.labels == {"env": "prod", "role": "db"}


def test_substitution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "interval: ${INTERVAL:-3}\nhost_id: ${HOST}-$${literal}\n"
        "log:\n  file: ${LOGDIR:-/var}/a.log\n",
    )
    s = load_settings(path, env={"HOST": "web1", "LOGDIR": ""})
    assert s.interval == 3.0
    assert s.host_id == "web1-${literal}"
    assert s.log.file == "/var/a.log"  # empty counts as unset for :-


def test_durations(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "interval: 2s\nintervals:\n  disk_usage: 1m\n"), env={})
    assert s.interval == 2.0 and s.interval_of("disk_usage") == 60.0
    assert load_settings(env={"HOSTPULSE_INTERVAL": "1500ms"}).interval == 1.5
    with pytest.raises(ConfigError, match="at least 1"):
        load_settings(env={"HOSTPULSE_INTERVAL": "500ms"})


def test_per_collector_interval_never_below_agent_interval(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "interval: 10\nintervals:\n  disk_usage: 2\n"), env={})
    assert s.interval_of("disk_usage") == 10.0


@pytest.mark.parametrize(
    ("text", "env", "key", "words"),
    [
        ("interval: fast\n", {}, "interval", "expected a number"),
        ("interval: 0.5\n", {}, "interval", "at least 1"),
        ("top_n: 2.5\n", {}, "top_n", "integer"),
        ("top_n: true\n", {}, "top_n", "integer"),
        ("intervals:\n  disk_usage: [1]\n", {}, "intervals.disk_usage", "a list"),
        ("intervals:\n  fpga: 5\n", {}, "intervals.fpga", "unknown key"),
        ("bogus: 1\n", {}, "bogus", "unknown key"),
        ("log:\n  level: loud\n", {}, "log.level", "expected one of"),
        ("log: 3\n", {}, "log", "expected a mapping"),
        ("labels:\n  bad-name: x\n", {}, "labels.bad-name", "label names"),
        ("host_id: ${NOPE}\n", {}, "host_id", "NOPE is not set"),
        ("exporter:\n  listen: nowhere\n", {}, "exporter.listen", "host:port"),
    ],
)
def test_errors_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env=env)
    assert info.value.key == key
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "interval: 5\nlog: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(path) in str(info.value)
    assert "line" in str(info.value)


def test_env_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"HOSTPULSE_TOP_N": "many"})
    assert info.value.key == "top_n"


def test_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yml", env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path, env={})  # a directory
    binary = tmp_path / "agent.yml"
    binary.write_bytes(b"interval: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(binary, env={})


def test_shipped_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "agent.yml"
    s = load_settings(example, env={})
    assert s.interval == 5.0
    assert s.interval_of("disk_usage") == 30.0
    # It says "the values below are the defaults": every section, shipper and spool included.
    assert s == AgentSettings()
    text = example.read_text()
    for section in ("shipper:", "spool:", "exporter:", "log:", "intervals:"):
        assert f"\n{section}\n" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:0", ("::1", 0)),
        (":9100", ("0.0.0.0", 9100)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected
