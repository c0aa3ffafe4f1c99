"""Config loading: defaults, validation errors that name file and key, docs kept in step."""

from pathlib import Path

import pytest

from broker.config import (
    BrokerConfig,
    ConfigError,
    config_docs,
    config_from_dict,
    dump_config,
    load_config,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_kafka_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.log.segment_bytes == 1073741824
    assert config.log.retention_ms == 604800000
    assert config.network.request_bytes_max == 104857600
    assert config.log.min_insync_replicas == 1
    assert config.data_path == (tmp_path / "data").resolve()


def test_example_config_is_valid():
    config = load_config(ROOT / "config" / "broker.example.toml")
    assert config.broker.node_id == 1
    assert [(lst.host, lst.port) for lst in config.listeners] == [("127.0.0.1", 9092)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[log]\nsegment_bytes = 'big'\n",
            "log.segment_bytes (log.segment.bytes): expected an integer",
        ),
        ("[log]\nsegment_bytes = 3\n", "3 out of range 14.."),
        ("[log]\nauto_create_topics_enable = 1\n", "expected bool"),
        ("[log]\nnum_partitions = true\n", "expected an integer"),
        ("[log]\nbogus = 1\n", "unknown key log.bogus"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("log = 3\n", "[log] must be a table"),
        ("[network]\nlisteners = 'SSL://h:1'\n", "only PLAINTEXT"),
        ("[network]\nlisteners = 'PLAINTEXT://h'\n", "is not NAME://HOST:PORT"),
        ("[network]\nlisteners = ''\n", "at least one listener"),
        ("[log\n", "invalid TOML"),
        (
            "[log]\nmessage_bytes_max = 2000\n[network]\nrequest_bytes_max = 1024\n",
            "exceeds network.request_bytes_max",
        ),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_dump_round_trips(tmp_path):
    config = config_from_dict(
        {"broker": {"node_id": 7, "rack": 'r"1'}, "log": {"retention_ms": -1}},
        base_dir=str(tmp_path),
    )
    path = write(tmp_path, dump_config(config))
    again = load_config(path)
    assert (again.broker, again.network, again.log) == (config.broker, config.network, config.log)


def test_every_key_is_documented_with_its_kafka_name():
    docs = config_docs()
    for section in ("broker", "network", "log"):
        assert f"## [{section}]" in docs
    assert "`log.segment.bytes`" in docs
    assert "`min.insync.replicas`" in docs


def test_config_readme_is_generated_from_the_code():
    readme = (ROOT / "config" / "README.md").read_text()
    assert readme.strip() == config_docs().strip(), (
        "regenerate: trilog config docs > config/README.md"
    )


def test_defaults_object_is_valid():
    config = BrokerConfig()
    assert config.advertised_listeners == config.listeners
