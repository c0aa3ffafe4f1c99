"""Broker settings: TOML files (stdlib tomllib) loaded into typed, validated dataclasses.

Every key lives in a section and carries its Kafka name, its default and what
values it admits. Unknown sections or keys, wrong types and out-of-range
values are refused with one line naming the file, the key and what is allowed
(ConfigError). config/README.md is generated from these declarations
(`trilog config docs`), and a test keeps the two in step.

Units are last in names (segment_bytes, retention_ms). Kafka's "never" for
counts and intervals (Long.MAX_VALUE) is written as -1 here where noted.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A configuration problem, as one line fit to show an operator."""


def _key(
    default: Any,
    kafka: str,
    doc: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    choices: tuple[str, ...] | None = None,
    why: str = "",
) -> Any:
    """Declare one setting. `why` says why the default differs from Kafka's."""
    meta = {"kafka": kafka, "doc": doc, "lo": lo, "hi": hi, "choices": choices, "why": why}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class BrokerSection:
    node_id: int = _key(1, "node.id", "This broker's id, unique in the cluster.", lo=0, hi=INT_MAX)
    rack: str = _key(
        "", "broker.rack", "Rack of this broker (follower reads, KIP-392); empty means none."
    )
    data_dir: str = _key(
        "data",
        "log.dirs",
        "Directory holding partition logs and "
        "checkpoints; a relative path is taken from the config file's "
        "directory.",
        why="Kafka's /tmp/kafka-logs is wiped on reboot.",
    )


@dataclass(frozen=True, slots=True)
class NetworkSection:
    listeners: str = _key(
        "PLAINTEXT://127.0.0.1:9092",
        "listeners",
        "Comma-separated listeners NAME://HOST:PORT; only PLAINTEXT.",
        why="Kafka binds all interfaces; a dev broker should not.",
    )
    advertised_listeners: str = _key(
        "",
        "advertised.listeners",
        "What clients are told to connect to; empty means the same as listeners.",
    )
    request_bytes_max: int = _key(
        104857600,
        "socket.request.max.bytes",
        "Largest request frame accepted; a larger one closes the connection.",
        lo=1024,
        hi=INT_MAX,
    )
    connections_max: int = _key(
        1000,
        "max.connections",
        "Open client connections across all listeners.",
        lo=1,
        hi=INT_MAX,
        why="Kafka leaves it unbounded (Int.MAX); every limit here is finite.",
    )
    connections_per_ip_max: int = _key(
        500,
        "max.connections.per.ip",
        "Open connections from one IP address.",
        lo=1,
        hi=INT_MAX,
        why="Kafka: unbounded.",
    )
    inflight_requests_per_connection_max: int = _key(
        100,
        "(none: queued.max.requests is global)",
        "Requests read from one connection and not yet answered; reading pauses at the limit.",
        lo=1,
        hi=100000,
    )
    connections_max_idle_ms: int = _key(
        600000,
        "connections.max.idle.ms",
        "Close a connection silent this long.",
        lo=1000,
        hi=LONG_MAX,
    )
    shutdown_timeout_ms: int = _key(
        30000,
        "(none)",
        "On SIGTERM, how long in-flight requests may take to finish before connections are closed.",
        lo=0,
        hi=3600000,
    )


@dataclass(frozen=True, slots=True)
class LogSection:
    segment_bytes: int = _key(
        1073741824, "log.segment.bytes", "Roll to a new segment at this size.", lo=14, hi=INT_MAX
    )
    segment_ms: int = _key(
        604800000,
        "log.roll.ms",
        "Roll a segment this old (from its first batch's append).",
        lo=1,
        hi=LONG_MAX,
    )
    segment_index_bytes: int = _key(
        10485760,
        "log.index.size.max.bytes",
        "Largest offset or time index file; roll when full.",
        lo=1024,
        hi=INT_MAX,
    )
    index_interval_bytes: int = _key(
        4096,
        "log.index.interval.bytes",
        "Log bytes between offset index entries.",
        lo=0,
        hi=INT_MAX,
    )
    retention_bytes: int = _key(
        -1,
        "log.retention.bytes",
        "Delete oldest segments beyond this partition size; -1 keeps all.",
        lo=-1,
        hi=LONG_MAX,
    )
    retention_ms: int = _key(
        604800000,
        "log.retention.ms",
        "Delete segments whose newest record is older; -1 keeps all.",
        lo=-1,
        hi=LONG_MAX,
    )
    retention_check_interval_ms: int = _key(
        300000, "log.retention.check.interval.ms", "How often retention runs.", lo=1, hi=LONG_MAX
    )
    flush_messages: int = _key(
        -1,
        "log.flush.interval.messages",
        "fsync after this many records; -1 leaves it to the OS (Kafka's Long.MAX default).",
        lo=-1,
        hi=LONG_MAX,
    )
    flush_ms: int = _key(
        -1,
        "log.flush.interval.ms",
        "fsync data older than this; -1 leaves it to the OS.",
        lo=-1,
        hi=LONG_MAX,
    )
    message_bytes_max: int = _key(
        1048588,
        "message.max.bytes",
        "Largest record batch accepted (after compression).",
        lo=0,
        hi=INT_MAX,
    )
    num_partitions: int = _key(
        1, "num.partitions", "Partitions of an auto-created topic.", lo=1, hi=100000
    )
    default_replication_factor: int = _key(
        1, "default.replication.factor", "Replicas of an auto-created topic.", lo=1, hi=32767
    )
    min_insync_replicas: int = _key(
        1, "min.insync.replicas", "Smallest ISR that accepts acks=all writes.", lo=1, hi=32767
    )
    auto_create_topics_enable: bool = _key(
        True, "auto.create.topics.enable", "Create a topic on first Metadata or Produce."
    )


@dataclass(frozen=True, slots=True)
class ReplicationSection:
    replica_lag_time_max_ms: int = _key(
        30000,
        "replica.lag.time.max.ms",
        "A follower not caught up for this long leaves the ISR.",
        lo=1,
        hi=LONG_MAX,
    )
    replica_fetch_max_bytes: int = _key(
        1048576,
        "replica.fetch.max.bytes",
        "Bytes a follower asks for per partition in one Fetch.",
        lo=1024,
        hi=INT_MAX,
    )
    replica_fetch_response_max_bytes: int = _key(
        10485760,
        "replica.fetch.response.max.bytes",
        "Bytes a follower asks for in one Fetch across partitions.",
        lo=1024,
        hi=INT_MAX,
    )
    replica_fetch_wait_max_ms: int = _key(
        500,
        "replica.fetch.wait.max.ms",
        "How long the leader may hold a follower's Fetch waiting for data.",
        lo=0,
        hi=INT_MAX,
    )
    replica_fetch_backoff_ms: int = _key(
        1000,
        "replica.fetch.backoff.ms",
        "Pause after a failed follower Fetch.",
        lo=0,
        hi=INT_MAX,
    )
    replication_throttle_bytes_per_s: int = _key(
        -1,
        "follower.replication.throttled.rate",
        "Replication bytes per second this broker fetches; -1 is unlimited.",
        lo=-1,
        hi=LONG_MAX,
    )
    high_watermark_checkpoint_interval_ms: int = _key(
        5000,
        "replica.high.watermark.checkpoint.interval.ms",
        "How often high watermarks are written to replication-offset-checkpoint.",
        lo=100,
        hi=LONG_MAX,
    )


PROCESS_ROLES = ("broker,controller", "broker", "controller")


@dataclass(frozen=True, slots=True)
class ControllerSection:
    process_roles: str = _key(
        "broker,controller",
        "process.roles",
        "What this process is: a broker, a controller quorum voter, or both (combined).",
        choices=PROCESS_ROLES,
    )
    quorum_voters: str = _key(
        "",
        "controller.quorum.voters",
        "The controller quorum, id@host:port,...; empty means this node alone is its own "
        "quorum (a standalone broker: no controller listener is opened).",
    )
    quorum_learners: str = _key(
        "",
        "(none: KRaft brokers observe by fetching)",
        "Broker-only nodes that receive the metadata log without voting, id@host:port,...; "
        "every node lists the same learners.",
    )
    listener: str = _key(
        "127.0.0.1:9093",
        "listeners (CONTROLLER://...)",
        "host:port where this node listens for the quorum and for brokers' controller requests.",
    )
    election_timeout_ms: int = _key(
        1000,
        "controller.quorum.election.timeout.ms",
        "A voter that hears no leader for a random time in [this, 2 x this) runs for leader.",
        lo=10,
        hi=600000,
    )
    quorum_heartbeat_interval_ms: int = _key(
        200,
        "(none: KRaft followers fetch instead)",
        "How often the quorum leader contacts its followers; below election_timeout_ms.",
        lo=1,
        hi=600000,
    )
    broker_session_timeout_ms: int = _key(
        9000,
        "broker.session.timeout.ms",
        "A broker whose heartbeats stop for this long is fenced and loses its leaderships.",
        lo=10,
        hi=3600000,
    )
    broker_heartbeat_interval_ms: int = _key(
        2000,
        "broker.heartbeat.interval.ms",
        "How often a broker heartbeats to the active controller.",
        lo=1,
        hi=3600000,
    )
    unclean_leader_election_enable: bool = _key(
        False,
        "unclean.leader.election.enable",
        "Let a replica outside the ISR lead an offline partition (data may be lost).",
    )
    auto_leader_rebalance_enable: bool = _key(
        True,
        "auto.leader.rebalance.enable",
        "Move leadership back to preferred replicas when a broker is too imbalanced.",
    )
    leader_imbalance_per_broker_percentage: int = _key(
        10,
        "leader.imbalance.per.broker.percentage",
        "Imbalance that triggers an automatic preferred-leader election.",
        lo=0,
        hi=100,
    )
    leader_imbalance_check_interval_ms: int = _key(
        300000,
        "leader.imbalance.check.interval.seconds (x1000)",
        "How often imbalance is checked.",
        lo=1,
        hi=LONG_MAX,
    )
    snapshot_entries: int = _key(
        1000,
        "metadata.log.max.record.bytes.between.snapshots (in entries here)",
        "Metadata log entries applied between snapshots of the image.",
        lo=1,
        hi=INT_MAX,
        why="counted in entries: our entries are whole commands, not Kafka's records.",
    )


@dataclass(frozen=True, slots=True)
class GroupSection:
    session_timeout_min_ms: int = _key(
        6000,
        "group.min.session.timeout.ms",
        "Shortest session a consumer may ask for.",
        lo=1,
        hi=INT_MAX,
    )
    session_timeout_max_ms: int = _key(
        1800000,
        "group.max.session.timeout.ms",
        "Longest session a consumer may ask for.",
        lo=1,
        hi=INT_MAX,
    )
    initial_rebalance_delay_ms: int = _key(
        3000,
        "group.initial.rebalance.delay.ms",
        "A new group waits this long for more members before its first generation.",
        lo=0,
        hi=INT_MAX,
    )
    group_members_max: int = _key(
        1000,
        "group.max.size",
        "Members one group may have.",
        lo=1,
        hi=INT_MAX,
        why="Kafka: Int.MAX; every limit here is finite.",
    )
    offsets_topic_num_partitions: int = _key(
        50,
        "offsets.topic.num.partitions",
        "Partitions of __consumer_offsets (fixed once created).",
        lo=1,
        hi=10000,
    )
    offsets_topic_replication_factor: int = _key(
        3,
        "offsets.topic.replication.factor",
        "Replicas of __consumer_offsets, capped at the live brokers.",
        lo=1,
        hi=32767,
    )
    offsets_commit_timeout_ms: int = _key(
        5000,
        "offsets.commit.timeout.ms",
        "How long a commit waits for the replicas.",
        lo=1,
        hi=INT_MAX,
    )


SECTIONS: dict[str, type] = {
    "broker": BrokerSection,
    "network": NetworkSection,
    "log": LogSection,
    "replication": ReplicationSection,
    "controller": ControllerSection,
    "group": GroupSection,
}


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """All settings of one broker process, validated."""

    broker: BrokerSection = field(default_factory=BrokerSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    log: LogSection = field(default_factory=LogSection)
    replication: ReplicationSection = field(default_factory=ReplicationSection)
    controller: ControllerSection = field(default_factory=ControllerSection)
    group: GroupSection = field(default_factory=GroupSection)
    source: str = "<defaults>"
    base_dir: str = "."

    @property
    def data_path(self) -> Path:
        return Path(self.base_dir, self.broker.data_dir).resolve()

    @property
    def listeners(self) -> list[Listener]:
        return parse_listeners(self.network.listeners, "network.listeners")

    @property
    def voters(self) -> dict[int, tuple[str, int]]:
        """The controller quorum: node id -> (host, port) of its controller listener."""
        raw = self.controller.quorum_voters
        if not raw:
            return {
                self.broker.node_id: parse_host_port(
                    self.controller.listener, "controller.listener"
                )
            }
        return parse_voters(raw)

    @property
    def learners(self) -> dict[int, tuple[str, int]]:
        """Quorum learners (broker-only nodes): node id -> controller listener."""
        raw = self.controller.quorum_learners
        return parse_voters(raw, "controller.quorum_learners") if raw else {}

    @property
    def is_controller(self) -> bool:
        return "controller" in self.controller.process_roles

    @property
    def is_broker(self) -> bool:
        return "broker" in self.controller.process_roles

    @property
    def advertised_listeners(self) -> list[Listener]:
        raw = self.network.advertised_listeners or self.network.listeners
        return parse_listeners(raw, "network.advertised_listeners")


def parse_listeners(raw: str, key: str) -> list[Listener]:
    """Parse 'PLAINTEXT://host:port,...'; ValueError names the key and the rule."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, rest = item.partition("://")
        host, colon, port = rest.rpartition(":")
        if not sep or not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{key}: '{item}' is not NAME://HOST:PORT")
        if name != "PLAINTEXT":
            raise ValueError(f"{key}: listener '{name}' unsupported (only PLAINTEXT)")
        out.append(Listener(name, host.strip("[]") or "0.0.0.0", int(port)))
    if not out:
        raise ValueError(f"{key}: at least one listener is required")
    return out


def parse_host_port(raw: str, key: str) -> tuple[str, int]:
    host, colon, port = raw.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{key}: '{raw}' is not HOST:PORT")
    return host.strip("[]"), int(port)


def parse_voters(raw: str, key: str = "controller.quorum_voters") -> dict[int, tuple[str, int]]:
    """'1@host:port,2@host:port' -> {1: (host, port), ...}."""
    voters: dict[int, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        node, at, address = item.partition("@")
        if not at or not node.isdigit():
            raise ValueError(f"{key}: '{item}' is not ID@HOST:PORT")
        if int(node) in voters:
            raise ValueError(f"{key}: node {node} named twice")
        voters[int(node)] = parse_host_port(address, key)
    if not voters:
        raise ValueError(f"{key}: no nodes")
    return voters


def _check_value(section: str, f: dataclasses.Field, value: Any) -> str | None:
    """Why `value` is not allowed for field f, or None when it is."""
    meta = f.metadata
    want = f.type if isinstance(f.type, type) else {"int": int, "str": str, "bool": bool}[f.type]
    if want is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected an integer, got {value!r}"
    if want is not int and not isinstance(value, want):
        return f"expected {want.__name__}, got {value!r}"
    lo, hi = meta["lo"], meta["hi"]
    if want is int and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        return f"{value} out of range {lo}..{hi}"
    if meta["choices"] and value not in meta["choices"]:
        return f"{value!r} is not one of {', '.join(meta['choices'])}"
    return None


def _build_section(source: str, name: str, table: Any) -> Any:
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in table.items():
        f = fields.get(key)
        if f is None:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key {name}.{key} (allowed: {allowed})")
        problem = _check_value(name, f, value)
        if problem:
            raise ConfigError(f"{source}: {name}.{key} ({f.metadata['kafka']}): {problem}")
    return cls(**table)


def config_from_dict(
    data: dict[str, Any], *, source: str = "<dict>", base_dir: str = "."
) -> BrokerConfig:
    """Validate a parsed TOML document into a BrokerConfig."""
    sections = {}
    for name, table in data.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{name}] (allowed: {', '.join(SECTIONS)})"
            )
        sections[name] = _build_section(source, name, table)
    config = BrokerConfig(**sections, source=source, base_dir=base_dir)
    _check_cross_field(config)
    return config


def _check_cross_field(config: BrokerConfig) -> None:
    try:
        config.listeners  # noqa: B018 - parsed for validation
        config.advertised_listeners  # noqa: B018
        voters = config.voters
        learners = config.learners
        parse_host_port(config.controller.listener, "controller.listener")
    except ValueError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    ctl = config.controller
    node = config.broker.node_id
    if voters.keys() & learners.keys():
        raise ConfigError(f"{config.source}: a node is both a quorum voter and a learner")
    if not config.is_controller and ctl.quorum_voters and node not in learners:
        raise ConfigError(
            f"{config.source}: broker-only node {node} must be in controller.quorum_learners"
        )
    if not config.is_broker and node in learners:
        raise ConfigError(f"{config.source}: a controller-only node cannot be a learner")
    if config.is_controller and config.broker.node_id not in voters:
        raise ConfigError(
            f"{config.source}: broker.node_id {config.broker.node_id} is a controller "
            f"(process_roles = {ctl.process_roles!r}) but not in controller.quorum_voters"
        )
    if config.group.session_timeout_min_ms > config.group.session_timeout_max_ms:
        raise ConfigError(
            f"{config.source}: group.session_timeout_min_ms exceeds group.session_timeout_max_ms"
        )
    if ctl.quorum_heartbeat_interval_ms >= ctl.election_timeout_ms:
        raise ConfigError(
            f"{config.source}: controller.quorum_heartbeat_interval_ms must be below "
            f"controller.election_timeout_ms"
        )
    if ctl.broker_heartbeat_interval_ms >= ctl.broker_session_timeout_ms:
        raise ConfigError(
            f"{config.source}: controller.broker_heartbeat_interval_ms must be below "
            f"controller.broker_session_timeout_ms"
        )
    if config.log.message_bytes_max > config.network.request_bytes_max:
        raise ConfigError(
            f"{config.source}: log.message_bytes_max ({config.log.message_bytes_max}) "
            f"exceeds network.request_bytes_max ({config.network.request_bytes_max})"
        )


def load_config(path: str | Path) -> BrokerConfig:
    """Read and validate a TOML config file; ConfigError says what is wrong."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return config_from_dict(data, source=str(path), base_dir=str(path.parent))


def dump_config(config: BrokerConfig) -> str:
    """The effective config as TOML text that load_config reads back identically."""
    lines = []
    for name in SECTIONS:
        section = getattr(config, name)
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def config_docs() -> str:
    """Markdown reference of every key: section, name, Kafka name, default, range."""
    out = [
        "# trilog configuration reference",
        "",
        "Generated by `trilog config docs` from broker/config.py; do not edit by hand.",
        "Every key is optional; a file holds only what differs from the default.",
        "",
    ]
    for name, cls in SECTIONS.items():
        out += [
            f"## [{name}]",
            "",
            "| key | Kafka name | default | allowed | meaning |",
            "|---|---|---|---|---|",
        ]
        for f in dataclasses.fields(cls):
            m = f.metadata
            allowed = _allowed_text(f)
            doc = m["doc"] + (f" Differs from Kafka: {m['why']}" if m["why"] else "")
            out.append(
                f"| `{f.name}` | `{m['kafka']}` | `{_toml_value(f.default)}` | {allowed} | {doc} |"
            )
        out.append("")
    return "\n".join(out)


def _allowed_text(f: dataclasses.Field) -> str:
    m = f.metadata
    if m["choices"]:
        return ", ".join(m["choices"])
    if m["lo"] is not None:
        return f"{m['lo']}..{m['hi']}"
    return "true/false" if f.type in (bool, "bool") else "text"
