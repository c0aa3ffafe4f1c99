"""A broker process: its state, its request handlers, and its lifecycle.

`run_broker(config)` opens the data directory, replays the metadata log,
opens partitions, listens, and on SIGTERM/SIGINT shuts down gracefully: stop
accepting, let in-flight requests finish (bounded by shutdown_timeout_ms),
then flush logs and write checkpoints.
"""

from __future__ import annotations

import itertools
import logging
import random
import signal
import uuid
from pathlib import Path

import trio

from broker.config import BrokerConfig
from broker.controller.records import MetadataRecord
from broker.log.log_config import LogConfig
from broker.replication.leader import Completion
from broker.replication.partition import Partition
from broker.server import api_admin, api_data
from broker.server.clock import now_ms
from broker.server.connection import ConnectionLimits
from broker.server.dispatch import RequestDispatcher
from broker.server.listener import ConnectionTracker, serve_listener
from broker.server.metadata_store import MetadataStore
from broker.server.replica_manager import ReplicaManager
from broker.server.waits import AcksWait
from protocol.api import ApiKey

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 1.0
REPLICATION_TICK_S = 0.05


class DataDirError(RuntimeError):
    """The data directory cannot be used (another cluster's, another node's)."""


def _read_meta_properties(data_dir: Path, node_id: int) -> str:
    """cluster.id from meta.properties, created on first start (Kafka's file)."""
    path = data_dir / "meta.properties"
    if not path.exists():
        cluster_id = uuid.uuid4().hex[:22]
        path.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
        return cluster_id
    props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if props.get("node.id") != str(node_id):
        raise DataDirError(
            f"{path}: data directory belongs to node {props.get('node.id')}, not {node_id}"
        )
    return props["cluster.id"]


class Broker:
    """Everything one broker knows; handlers in api_admin/api_data act on it."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.broker.node_id
        self.data_dir = config.data_path
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id = _read_meta_properties(self.data_dir, self.node_id)
        self.rng = random.Random()
        self.log_defaults = LogConfig.from_section(config.log)
        self.metadata = MetadataStore(self.data_dir, now_ms())
        self.replicas = ReplicaManager(
            self.node_id,
            self.data_dir,
            self.log_defaults,
            min_insync_replicas=config.log.min_insync_replicas,
            lag_time_max_ms=config.replication.replica_lag_time_max_ms,
        )
        self.replicas.sync_with(self.metadata.image, now_ms())
        self.appended: dict[tuple[str, int], trio.Event] = {}
        self.acks_waits: dict[int, AcksWait] = {}
        self._request_ids = itertools.count(1)
        self.producer_ids_handed_out = self.metadata.image.next_producer_id
        advertised = config.advertised_listeners[0]
        self.advertised = (advertised.host, advertised.port)

    @property
    def live_brokers(self) -> list[int]:
        return [self.node_id]

    def commit(self, records: list[MetadataRecord]) -> None:
        """Make metadata records durable, apply them, and follow them with the replicas."""
        self.metadata.commit(records, now_ms())
        self.complete(self.replicas.sync_with(self.metadata.image, now_ms()))

    def new_acks_wait(self) -> AcksWait:
        wait = AcksWait(next(self._request_ids))
        self.acks_waits[wait.request_id] = wait
        return wait

    def complete(self, completions: list[Completion]) -> None:
        """Release acks=all produces a replication core has decided about."""
        for completion in completions:
            wait = self.acks_waits.pop(completion.request_id, None)
            if wait is not None:
                wait.finish(completion.error)

    def preferred_read_replica(self, partition: Partition, rack: str) -> int | None:
        """KIP-392: an in-sync replica in the consumer's rack, if the leader is not."""
        if rack == self.config.broker.rack:
            return None
        for replica in sorted(partition.leader.isr):
            if replica != self.node_id and self.rack_of(replica) == rack:
                return replica
        return None

    def rack_of(self, broker_id: int) -> str | None:
        return self.config.broker.rack or None if broker_id == self.node_id else None

    def tick_replication(self, now: int) -> None:
        """Time-based replication work: acks timeouts, ISR shrink proposals."""
        for partition in self.replicas.partitions.values():
            if partition.leader is not None and (
                partition.leader.waiters or len(partition.leader.replicas) > 1
            ):
                self.complete(partition.leader.completions(now))

    def notify_append(self, key: tuple[str, int]) -> None:
        """Wake fetches waiting for data on this partition."""
        event = self.appended.pop(key, None)
        if event is not None:
            event.set()

    def append_event(self, key: tuple[str, int]) -> trio.Event:
        event = self.appended.get(key)
        if event is None:
            event = self.appended[key] = trio.Event()
        return event

    def dispatcher(self) -> RequestDispatcher:
        handlers = {
            ApiKey.API_VERSIONS: api_admin.api_versions,
            ApiKey.METADATA: lambda h, b: api_admin.metadata(self, h, b),
            ApiKey.CREATE_TOPICS: lambda h, b: api_admin.create_topics(self, h, b),
            ApiKey.DELETE_TOPICS: lambda h, b: api_admin.delete_topics(self, h, b),
            ApiKey.CREATE_PARTITIONS: lambda h, b: api_admin.create_partitions(self, h, b),
            ApiKey.DESCRIBE_CONFIGS: lambda h, b: api_admin.describe_configs(self, h, b),
            ApiKey.INIT_PRODUCER_ID: lambda h, b: api_admin.init_producer_id(self, h, b),
            ApiKey.PRODUCE: lambda h, b: api_data.produce(self, h, b),
            ApiKey.FETCH: lambda h, b: api_data.fetch(self, h, b),
            ApiKey.LIST_OFFSETS: lambda h, b: api_data.list_offsets(self, h, b),
            ApiKey.OFFSET_FOR_LEADER_EPOCH: lambda h, b: api_data.offset_for_leader_epoch(
                self, h, b
            ),
        }
        return RequestDispatcher(handlers)

    def close(self) -> None:
        self.replicas.close()
        self.metadata.close()


async def _tick_replication(broker: Broker) -> None:
    while True:
        await trio.sleep(REPLICATION_TICK_S)
        broker.tick_replication(now_ms())


async def _maintain(broker: Broker) -> None:
    """Roll and flush every second; retention and high-watermark checkpoints when due."""
    interval_ms = broker.config.log.retention_check_interval_ms
    hw_interval_ms = broker.config.replication.high_watermark_checkpoint_interval_ms
    next_retention_ms = now_ms() + interval_ms
    next_hw_ms = now_ms() + hw_interval_ms
    while True:
        await trio.sleep(MAINTENANCE_INTERVAL_S)
        now = now_ms()
        due = now >= next_retention_ms
        if due:
            next_retention_ms = now + interval_ms
        broker.replicas.maintain(now, retention=due)
        if now >= next_hw_ms:
            next_hw_ms = now + hw_interval_ms
            broker.replicas.checkpoint_high_watermarks()


async def run_broker(
    config: BrokerConfig,
    *,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation), then shut down cleanly."""
    await serve_broker(Broker(config), task_status=task_status)


async def serve_broker(
    broker: Broker,
    *,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an opened Broker until a signal or cancellation; always close it."""
    # The signal receiver stays open until the logs are closed: a second SIGTERM or
    # Ctrl-C during shutdown must not fall back to the default handler and kill us
    # before the flush.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        try:
            await _serve(broker, signals, task_status)
        finally:
            broker.close()
            log.info("broker %d stopped; logs flushed, checkpoints written", broker.node_id)


async def _serve(broker: Broker, signals, task_status: trio.TaskStatus) -> None:
    """Listen until the first signal; then stop accepting and drain connections."""
    net = broker.config.network
    limits = ConnectionLimits(
        request_bytes_max=net.request_bytes_max,
        inflight_requests_max=net.inflight_requests_per_connection_max,
        idle_timeout_s=net.connections_max_idle_ms / 1000,
    )
    tracker = ConnectionTracker(net.connections_max, net.connections_per_ip_max)
    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as services:
            bound = []
            for listener in broker.config.listeners:
                sockets = await services.start(
                    serve_listener,
                    listener.host,
                    listener.port,
                    broker.dispatcher,
                    limits,
                    tracker,
                    connections,
                )
                bound += [s.socket.getsockname()[:2] for s in sockets]
            if not broker.config.network.advertised_listeners and broker.advertised[1] == 0:
                broker.advertised = bound[0]  # port 0: tell clients the port we got
            services.start_soon(_maintain, broker)
            services.start_soon(_tick_replication, broker)
            log.info(
                "broker %d serving on %s, data %s, %d partitions, cluster %s",
                broker.node_id,
                ", ".join(f"{h}:{p}" for h, p in bound),
                broker.data_dir,
                len(broker.replicas.partitions),
                broker.cluster_id,
            )
            task_status.started(bound)
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
            services.cancel_scope.cancel()
        tracker.stop_reading_all()
        with trio.move_on_after(net.shutdown_timeout_ms / 1000):
            await tracker.idle.wait()
        connections.cancel_scope.cancel()
