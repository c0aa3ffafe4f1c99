"""A local trilog cluster of broker processes, for the fault tests and the cluster benches.

`DevCluster` runs `trilog dev` (by default) or starts each broker itself from the configs
`broker.dev.broker_config` produces (`via_dev=False`, needed to give brokers racks), on free
ports under one directory: broker i serves clients on base_port + i - 1 and keeps its data,
its effective config (broker.toml) and its pid (broker.pid) in DIR/broker-<i>/.

Faults are signals sent by PID: `kill` (SIGKILL), `stop`/`cont` (SIGSTOP/SIGCONT);
`restart` starts a killed broker again as its own process from its broker.toml. `close`
SIGKILLs every process the cluster ever started, by PID and by process group, whatever
state it is in; callers put it in a `finally`.

Cluster state is read with raw Metadata requests (our protocol codecs over a blocking
socket) sent to one named broker, so a test knows exactly whose view it checks.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from broker.dev import CONTROLLER_PORT_OFFSET, broker_config, write_broker_files
from protocol.api import ApiKey
from protocol.framing import encode_frame
from protocol.headers import decode_response, encode_request
from protocol.schema import Data

START_DEADLINE_S = 60.0
REAP_DEADLINE_S = 10.0
POLL_INTERVAL_S = 0.05
REQUEST_TIMEOUT_S = 3.0
METADATA_VERSION = 8
CLIENT_ID = "cluster-faults"
BROKER_COMMAND = [sys.executable, "-m", "broker.cli"]
REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], deadline_s: float, what: str) -> T:
    """Poll `condition` until it returns something truthy; AssertionError at the deadline.

    An OSError from the condition (a broker not answering yet) counts as "not yet".
    """
    deadline = time.monotonic() + deadline_s
    last: object = None
    while True:
        try:
            value = condition()
        except OSError as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {deadline_s:g} s (last: {last!r})")
        time.sleep(POLL_INTERVAL_S)  # poll: waiting on a condition, bounded by a deadline


# ---- raw requests -----------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        data += chunk
    return bytes(data)


def kafka_request(
    port: int,
    api_key: int,
    version: int,
    body: Mapping[str, Any],
    *,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Data:
    """One request to the broker on 127.0.0.1:port over a fresh connection; its response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(encode_frame(encode_request(api_key, version, 1, CLIENT_ID, body)))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        _, response = decode_response(api_key, version, _recv_exact(sock, size))
    return response


@dataclass(frozen=True)
class PartitionView:
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error_code: int


@dataclass(frozen=True)
class ClusterView:
    """One broker's Metadata answer."""

    brokers: dict[int, str | None]  # node id -> rack
    controller_id: int
    partitions: dict[tuple[str, int], PartitionView]

    def partition(self, topic: str, partition: int) -> PartitionView | None:
        return self.partitions.get((topic, partition))


def metadata(port: int, topics: Iterable[str] | None = None) -> ClusterView:
    body = {
        "topics": None if topics is None else [{"name": t} for t in topics],
        "allow_auto_topic_creation": False,
        "include_cluster_authorized_operations": False,
        "include_topic_authorized_operations": False,
    }
    response = kafka_request(port, ApiKey.METADATA, METADATA_VERSION, body)
    partitions = {
        (t.name, p.partition_index): PartitionView(
            p.leader_id, p.leader_epoch, tuple(p.replica_nodes), tuple(p.isr_nodes), p.error_code
        )
        for t in response.topics
        for p in t.partitions
    }
    brokers = {b.node_id: b.rack for b in response.brokers}
    return ClusterView(brokers, response.controller_id, partitions)


# ---- processes --------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(brokers: int) -> int:
    """A base port P with P..P+n-1 and the quorum ports P+100..P+100+n-1 all free now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000)
        wanted = [base + i for i in range(brokers)]
        wanted += [base + CONTROLLER_PORT_OFFSET + i for i in range(brokers)]
        if all(_port_free(p) for p in wanted):
            return base
    raise RuntimeError("no free block of ports for a dev cluster")


def _running(pid: int) -> bool:
    """The process exists and is neither a zombie nor dead (it may be stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


class DevCluster:
    """`brokers` broker processes under `root`; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        brokers: int = 3,
        via_dev: bool = True,
        racks: Sequence[str] | None = None,
        log_level: str = "INFO",
        src: Path | None = None,
    ) -> None:
        assert racks is None or (not via_dev and len(racks) == brokers), "racks need via_dev=False"
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.size = brokers
        self.via_dev = via_dev
        self.racks = racks
        self.log_level = log_level
        # `python -m broker.cli` run in another checkout imports that checkout's broker
        self.src = Path(src).resolve() if src else REPO
        self.base_port = 0
        self.pids: dict[int, int] = {}  # broker id -> pid of its current process
        self._popens: list[subprocess.Popen[bytes]] = []  # every process we started
        self._dev: subprocess.Popen[bytes] | None = None
        self._down: set[int] = set()  # killed by us and not restarted

    # -- addresses and files ---------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.size + 1))

    def port(self, broker: int) -> int:
        return self.base_port + broker - 1

    def bootstrap(self, brokers: Iterable[int] | None = None) -> str:
        chosen = self.ids if brokers is None else brokers
        return ",".join(f"127.0.0.1:{self.port(i)}" for i in chosen)

    def home(self, broker: int) -> Path:
        return self.root / f"broker-{broker}"

    def config_path(self, broker: int) -> Path:
        return self.home(broker) / "broker.toml"

    def log_path(self, broker: int) -> Path:
        """Where this broker's own process writes (all of them in direct mode, restarts in dev)."""
        return self.home(broker) / "broker.log"

    @property
    def dev_log_path(self) -> Path:
        return self.root / "dev.log"

    def logs(self) -> str:
        """Everything every broker process wrote, for failure messages and diagnosis."""
        parts = []
        for path in [self.dev_log_path, *(self.log_path(i) for i in self.ids)]:
            if path.exists():
                parts.append(f"---- {path}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def segment_files(self, broker: int, topic: str, partition: int) -> list[Path]:
        return sorted((self.home(broker) / f"{topic}-{partition}").glob("*.log"))

    def log_bytes(self, broker: int, topic: str, partition: int) -> bytes:
        return b"".join(p.read_bytes() for p in self.segment_files(broker, topic, partition))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DevCluster:
        """Start every broker and wait until each answers Metadata listing all of them."""
        self.base_port = free_base_port(self.size)
        if self.via_dev:
            self._start_dev()
        else:
            for i in self.ids:
                config = broker_config(self.root, i, self.base_port, self.size)
                if self.racks is not None:
                    config = replace(config, broker=replace(config.broker, rack=self.racks[i - 1]))
                write_broker_files(config)
                self._spawn(i)
        self.wait_ready()
        return self

    def _start_dev(self) -> None:
        command = [*BROKER_COMMAND, "dev", "--brokers", str(self.size)]
        command += ["--data-dir", str(self.root), "--base-port", str(self.base_port)]
        with self.dev_log_path.open("ab") as log:
            self._dev = subprocess.Popen(
                command,
                cwd=self.src,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._popens.append(self._dev)
        for i in self.ids:
            pid_file = self.home(i) / "broker.pid"
            text = wait_until(
                lambda f=pid_file: f.exists() and f.read_text().strip(),
                START_DEADLINE_S,
                f"{pid_file} written by trilog dev",
            )
            self.pids[i] = int(text)

    def _spawn(self, broker: int) -> None:
        command = [*BROKER_COMMAND, "broker", "start", "--config", str(self.config_path(broker))]
        command += ["--log-level", self.log_level]
        with self.log_path(broker).open("ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=self.src,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._popens.append(proc)
        self.pids[broker] = proc.pid
        (self.home(broker) / "broker.pid").write_text(f"{proc.pid}\n")

    def wait_ready(self, brokers: Iterable[int] | None = None) -> None:
        """Until each of `brokers` (default: all) answers Metadata listing every live broker."""
        chosen = self.ids if brokers is None else list(brokers)
        for i in chosen:
            want = set(self.live())

            def ready(i: int = i, want: set[int] = want) -> bool:
                self.check_alive()
                return want <= set(metadata(self.port(i)).brokers)

            try:
                wait_until(ready, START_DEADLINE_S, f"broker {i} listing brokers {sorted(want)}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def alive(self, broker: int) -> bool:
        return _running(self.pids[broker])

    def live(self) -> list[int]:
        return [i for i in self.ids if i not in self._down]

    def check_alive(self) -> None:
        """AssertionError naming any broker that died without being killed by us."""
        dead = [i for i in self.live() if not self.alive(i)]
        if dead:
            raise AssertionError(f"broker(s) {dead} died on their own:\n{self.log_tail(120)}")

    def kill(self, broker: int) -> float:
        """SIGKILL the broker; returns when its process is gone, with the time of the kill."""
        pid = self.pids[broker]
        self._down.add(broker)
        t_kill = time.monotonic()
        _signal(pid, signal.SIGKILL)
        wait_until(lambda: not _running(pid), REAP_DEADLINE_S, f"broker {broker} (pid {pid}) gone")
        return t_kill

    def stop(self, broker: int) -> float:
        """SIGSTOP: the broker freezes with its sockets open. Returns the time of the signal."""
        t_stop = time.monotonic()
        _signal(self.pids[broker], signal.SIGSTOP)
        return t_stop

    def cont(self, broker: int) -> None:
        _signal(self.pids[broker], signal.SIGCONT)

    def restart(self, broker: int, *, wait: bool = True) -> None:
        """Start a killed broker again from its broker.toml, as its own process."""
        assert broker in self._down and not self.alive(broker), f"broker {broker} is running"
        self._down.discard(broker)
        self._spawn(broker)
        if wait:
            self.wait_ready([broker])

    def close(self) -> None:
        """SIGKILL every process ever started, by PID and by process group; reap ours."""
        for pid in self.pids.values():
            if _running(pid):
                _signal(pid, signal.SIGKILL)
        for proc in self._popens:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            _signal(proc.pid, signal.SIGKILL)
        for proc in self._popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=REAP_DEADLINE_S)

    def __enter__(self) -> DevCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cluster state -----------------------------------------------------------------------

    def metadata(self, via: int | None = None) -> ClusterView:
        """Metadata as broker `via` sees it (default: the first live, running broker)."""
        if via is None:
            via = next(i for i in self.live())
        return metadata(self.port(via))

    def leader_of(self, topic: str, partition: int = 0, via: int | None = None) -> int:
        view = self.metadata(via).partition(topic, partition)
        return -1 if view is None else view.leader

    def partition_view(self, topic: str, partition: int = 0, via: int | None = None):
        return self.metadata(via).partition(topic, partition)

    def controller_id(self, via: int | None = None) -> int:
        return self.metadata(via).controller_id

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 3,
        config: Mapping[str, str] | None = None,
        replica_assignment: list[list[int]] | None = None,
    ) -> None:
        """Create a topic and wait until every live broker shows each partition led with a
        full ISR."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap(self.live())})
        if replica_assignment is not None:
            topic = NewTopic(
                name, -1, replica_assignment=replica_assignment, config=dict(config or {})
            )
        else:
            topic = NewTopic(name, partitions, replication_factor, config=dict(config or {}))
        admin.create_topics([topic], operation_timeout=10)[name].result(timeout=30)
        rf = len(replica_assignment[0]) if replica_assignment else replication_factor
        count = len(replica_assignment) if replica_assignment else partitions

        def settled(via: int) -> bool:
            view = self.metadata(via)
            parts = [view.partition(name, p) for p in range(count)]
            return all(p is not None and p.leader >= 0 and len(p.isr) == rf for p in parts)

        for i in self.live():
            wait_until(lambda i=i: settled(i), 30, f"topic {name} settled on broker {i}")
