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
from broker.controller.controller import ControllerConfig
from broker.controller.records import Endpoint
from broker.controller.topics import TopicDefaults
from broker.coordinator.config import GroupConfig
from broker.log.log_config import LogConfig
from broker.log.metadata_log import DurableRaftLog
from broker.raft.core import RaftNode
from broker.replication.leader import Completion
from broker.replication.partition import Partition
from broker.server import api_admin, api_data, api_ops
from broker.server.api_groups import GroupService
from broker.server.clock import now_ms
from broker.server.connection import ConnectionLimits
from broker.server.controller_service import (
    AlterPartition,
    ControllerClient,
    ControllerReply,
    ControllerService,
)
from broker.server.dispatch import RequestDispatcher
from broker.server.fetchers import FetcherManager
from broker.server.lifecycle import BrokerLifecycle
from broker.server.listener import ConnectionTracker, serve_listener
from broker.server.metadata_plane import MetadataPlane
from broker.server.peer import PeerLink, serve_peer_connection
from broker.server.quorum import QuorumDriver
from broker.server.replica_manager import ReplicaManager
from broker.server.waits import AcksWait
from protocol.api import ApiKey
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 1.0
REPLICATION_TICK_S = 0.05
ISR_PROPOSAL_TIMEOUT_S = 10.0


class DataDirError(RuntimeError):
    """The data directory cannot be used (another cluster's, another node's)."""


def _read_meta_properties(data_dir: Path, node_id: int, voters: str) -> str:
    """cluster.id from meta.properties, created on first start (Kafka's file).

    Nodes of one quorum derive the same id from the voters list (Kafka has an
    operator format the storage with an id instead); a standalone node draws one.
    """
    path = data_dir / "meta.properties"
    if not path.exists():
        seed = uuid.uuid5(uuid.NAMESPACE_URL, f"trilog:{voters}") if voters else uuid.uuid4()
        cluster_id = seed.hex[:22]
        path.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
        return cluster_id
    props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if props.get("node.id") != str(node_id):
        raise DataDirError(
            f"{path}: data directory belongs to node {props.get('node.id')}, not {node_id}"
        )
    return props["cluster.id"]


class Broker:
    """Everything one node knows; handlers in api_admin/api_data/api_groups act on it.

    Every node runs the metadata log's Raft node (a voter, or later a learner);
    a node with the controller role also runs the controller service; a node
    with the broker role registers, heartbeats and hosts partitions.
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.broker.node_id
        self.data_dir = config.data_path
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id = _read_meta_properties(
            self.data_dir, self.node_id, config.controller.quorum_voters
        )
        self.rng = random.Random()
        self.log_defaults = LogConfig.from_section(config.log)
        self._open_quorum()
        self.replicas = ReplicaManager(
            self.node_id,
            self.data_dir,
            self.log_defaults,
            min_insync_replicas=config.log.min_insync_replicas,
            lag_time_max_ms=config.replication.replica_lag_time_max_ms,
        )
        self.appended: dict[tuple[str, int], trio.Event] = {}
        self.acks_waits: dict[int, AcksWait] = {}
        self._request_ids = itertools.count(1)
        self.producer_ids = (0, 0)  # [next, end) of the block this broker hands out
        self.groups = GroupService(self, _group_config(config))
        self.fetchers: FetcherManager | None = None
        advertised = config.advertised_listeners[0]
        self.advertised = (advertised.host, advertised.port)
        self.lifecycle = BrokerLifecycle(
            self.node_id,
            lambda: (Endpoint("PLAINTEXT", *self.advertised),),
            config.broker.rack or None,
            self.controller_client,
            lambda: self.quorum.applied_index,
            config.controller.broker_heartbeat_interval_ms,
        )

    def _open_quorum(self) -> None:
        ctl = self.config.controller
        voters = self.config.voters
        learners = self.config.learners
        self.storage = DurableRaftLog(self.data_dir, now_ms())
        self.plane = MetadataPlane()
        self.links = {
            n: PeerLink(self.node_id, n, host, port)
            for n, (host, port) in (voters | learners).items()
            if n != self.node_id
        }
        self.raft = RaftNode(
            self.node_id,
            tuple(voters),
            self.storage,
            self.rng,
            learners=tuple(learners),
            election_timeout_ms=(ctl.election_timeout_ms, 2 * ctl.election_timeout_ms),
            heartbeat_interval_ms=ctl.quorum_heartbeat_interval_ms,
            snapshot_threshold_entries=ctl.snapshot_entries,
        )
        self.quorum = QuorumDriver(self.raft, self.storage, self.links, self.plane)
        self.controller_service: ControllerService | None = None
        if self.config.is_controller:
            self.controller_service = ControllerService(
                self.node_id,
                self.quorum,
                self.plane,
                _controller_config(self.config),
                TopicDefaults(
                    self.config.log.num_partitions, self.config.log.default_replication_factor
                ),
                self.rng,
            )
            self.quorum.on_role_change = self.controller_service.on_role_change
        voter_links = {v: link for v, link in self.links.items() if v in voters}
        self.controller_client = ControllerClient(
            self.node_id, voter_links, self.controller_service, self.quorum
        )

    @property
    def metadata(self) -> MetadataPlane:
        return self.plane

    @property
    def live_brokers(self) -> list[int]:
        return self.plane.image.usable_brokers()

    def address_of(self, broker_id: int) -> tuple[str, int] | None:
        """Where broker_id serves clients (and its followers), from its registration."""
        reg = self.plane.image.brokers.get(broker_id)
        if reg is None or not reg.listeners:
            return None
        return reg.listeners[0].host, reg.listeners[0].port

    async def controller_request(self, request) -> ControllerReply:
        """Ask the active controller, then wait until its records are applied here, so
        this broker's answers (e.g. Metadata after CreateTopics) already reflect them."""
        reply = await self.controller_client.request(request)
        if reply.index >= 0:
            await self.quorum.wait_applied(reply.index)
        return reply

    def sync_with_metadata(self) -> None:
        """Bring partitions, fetchers and coordinators in line with the image.

        Partition roles wait until the image holds this process's own registration:
        until then it may still name this broker leader at an old epoch, from before
        a restart that (after a power loss) may have cost log it no longer has.
        """
        if not self.config.is_broker:
            return  # a dedicated controller hosts no partitions
        reg = self.plane.image.brokers.get(self.node_id)
        if reg is None or reg.incarnation_id != self.lifecycle.incarnation_id:
            return
        self.complete(self.replicas.sync_with(self.plane.image, now_ms()))
        if self.fetchers is not None:
            self.fetchers.update()
        self.groups.sync_leadership()
        for key in list(self.appended):
            self.notify_append(key)  # a role change may end a fetch's wait

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
        reg = self.plane.image.brokers.get(broker_id)
        return reg.rack if reg is not None else None

    def tick_replication(self, now: int, nursery: trio.Nursery) -> None:
        """Time-based replication work: acks timeouts, ISR changes to propose."""
        eligible = frozenset(self.plane.image.usable_brokers())
        for partition in self.replicas.partitions.values():
            leader = partition.leader
            if leader is None:
                continue
            if leader.waiters:
                self.complete(leader.completions(now))
            if len(leader.replicas) > 1:
                proposal = partition.isr_proposal(now, eligible)
                if proposal is not None:
                    nursery.start_soon(self._propose_isr, partition, proposal)

    async def _propose_isr(self, partition: Partition, proposal) -> None:
        log.info(
            "%s: proposing ISR %s (leader epoch %d, partition epoch %d)",
            partition.name,
            list(proposal.new_isr),
            proposal.leader_epoch,
            proposal.partition_epoch,
        )
        request = AlterPartition(
            self.node_id,
            self.lifecycle.broker_epoch,
            partition.topic,
            partition.index,
            proposal.leader_epoch,
            proposal.partition_epoch,
            proposal.new_isr,
        )
        with trio.move_on_after(ISR_PROPOSAL_TIMEOUT_S):
            reply = await self.controller_request(request)
            if reply.response.error == ErrorCode.NONE:
                return  # the committed change reaches us through the metadata log
            log.info(
                "%s: ISR change refused: %s %s",
                partition.name,
                ErrorCode(reply.response.error).name,
                reply.response.message,
            )
        leader = partition.leader
        if leader is not None and leader.leader_epoch == proposal.leader_epoch:
            leader.on_isr_rejected()

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
            **self.groups.handlers(),
            **api_ops.handlers(self),
        }
        return RequestDispatcher(handlers)

    async def on_peer_request(self, request):
        if self.controller_service is None:
            return ControllerReply(ErrorCode.NOT_CONTROLLER, self.quorum.leader_id)
        return await self.controller_service.handle(request)

    def close(self) -> None:
        self.replicas.close()
        self.storage.close()


def _group_config(config: BrokerConfig) -> GroupConfig:
    g = config.group
    return GroupConfig(
        session_timeout_min_ms=g.session_timeout_min_ms,
        session_timeout_max_ms=g.session_timeout_max_ms,
        initial_rebalance_delay_ms=g.initial_rebalance_delay_ms,
        group_members_max=g.group_members_max,
        offsets_topic_num_partitions=g.offsets_topic_num_partitions,
        offsets_topic_replication_factor=g.offsets_topic_replication_factor,
        offsets_commit_timeout_ms=g.offsets_commit_timeout_ms,
    )


def _controller_config(config: BrokerConfig) -> ControllerConfig:
    ctl = config.controller
    return ControllerConfig(
        broker_session_timeout_ms=ctl.broker_session_timeout_ms,
        broker_heartbeat_interval_ms=ctl.broker_heartbeat_interval_ms,
        # live brokers reach a new controller within a heartbeat or two: four
        # intervals of grace, not a whole session, before fencing the silent ones
        activation_grace_ms=min(
            ctl.broker_session_timeout_ms, 4 * ctl.broker_heartbeat_interval_ms
        ),
        unclean_leader_election_enable=ctl.unclean_leader_election_enable,
        auto_leader_rebalance_enable=ctl.auto_leader_rebalance_enable,
        leader_imbalance_per_broker_percentage=ctl.leader_imbalance_per_broker_percentage,
        leader_imbalance_check_interval_ms=ctl.leader_imbalance_check_interval_ms,
        default_replication_factor=config.log.default_replication_factor,
        num_partitions=config.log.num_partitions,
        min_insync_replicas=config.log.min_insync_replicas,
    )


async def _follow_metadata(broker: Broker) -> None:
    """React to every change of the image, once per batch of changes."""
    seen = None
    while True:
        current = broker.plane.version
        if current == seen:
            await broker.plane.changed.wait()
            continue
        seen = current
        broker.sync_with_metadata()


async def _tick_replication(broker: Broker) -> None:
    async with trio.open_nursery() as proposals:
        while True:
            await trio.sleep(REPLICATION_TICK_S)
            broker.tick_replication(now_ms(), proposals)


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
    """Bind, join the quorum, register, serve clients until the first signal, then shut
    down in order: controlled shutdown, stop accepting, drain connections."""
    net = broker.config.network
    tracker = ConnectionTracker(net.connections_max, net.connections_per_ip_max)
    if not broker.config.is_broker:
        await _serve_controller_only(broker, signals, task_status)
        return
    sockets = await _bind_client_listeners(broker)
    bound = [s.socket.getsockname()[:2] for s in sockets]
    async with trio.open_nursery() as connections, trio.open_nursery() as services:
        await _start_control_plane(broker, services)
        accepting = trio.CancelScope()
        await services.start(_accept_in_scope, accepting, broker, sockets, tracker, connections)
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
        ctl = broker.config.controller
        timeout_ms = min(net.shutdown_timeout_ms, ctl.broker_session_timeout_ms)
        await broker.lifecycle.controlled_shutdown(timeout_ms / 1000)
        accepting.cancel()
        tracker.stop_reading_all()
        with trio.move_on_after(net.shutdown_timeout_ms / 1000):
            await tracker.idle.wait()
        connections.cancel_scope.cancel()
        services.cancel_scope.cancel()


async def _serve_controller_only(broker: Broker, signals, task_status: trio.TaskStatus) -> None:
    """A dedicated controller: quorum voter and controller service, no client listener."""
    async with trio.open_nursery() as services:
        await _start_peer_listener(broker, services)
        await services.start(broker.quorum.run)
        if len(broker.config.voters) == 1:
            await broker.quorum.campaign()
        await services.start(broker.controller_service.run)
        host, port = broker.config.voters[broker.node_id]
        log.info(
            "controller %d serving the quorum on %s:%d, data %s, cluster %s",
            broker.node_id,
            host,
            port,
            broker.data_dir,
            broker.cluster_id,
        )
        task_status.started([])
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            break
        services.cancel_scope.cancel()


async def _start_peer_listener(broker: Broker, services: trio.Nursery) -> None:
    if not broker.config.controller.quorum_voters:
        return  # a standalone node needs no peer listener
    host, port = (broker.config.voters | broker.config.learners)[broker.node_id]
    peer_sockets = await trio.open_tcp_listeners(port, host=host)
    services.start_soon(
        trio.serve_listeners,
        lambda stream: serve_peer_connection(stream, broker.quorum.deliver, broker.on_peer_request),
        peer_sockets,
    )


async def _bind_client_listeners(broker: Broker) -> list[trio.SocketListener]:
    """Bind before registering, so the registration carries the real port."""
    sockets: list[trio.SocketListener] = []
    for listener in broker.config.listeners:
        sockets += await trio.open_tcp_listeners(listener.port, host=listener.host)
    if not broker.config.network.advertised_listeners and broker.advertised[1] == 0:
        broker.advertised = sockets[0].socket.getsockname()[:2]  # port 0: the one we got
    return sockets


async def _start_control_plane(broker: Broker, services: trio.Nursery) -> None:
    """Controller listener, quorum, controller service, registration; wait until the
    controller unfences us (Kafka's brokers do the same before serving clients)."""
    await _start_peer_listener(broker, services)
    await services.start(broker.quorum.run)
    if len(broker.config.voters) == 1:
        await broker.quorum.campaign()  # a lone voter need not wait out a timeout
    if broker.controller_service is not None:
        await services.start(broker.controller_service.run)
    broker.fetchers = FetcherManager(broker, services)
    services.start_soon(_follow_metadata, broker)
    await services.start(broker.groups.run)
    await services.start(broker.lifecycle.run)
    await broker.lifecycle.unfenced.wait()
    services.start_soon(_maintain, broker)
    services.start_soon(_tick_replication, broker)


async def _accept_in_scope(
    scope: trio.CancelScope,
    broker: Broker,
    sockets,
    tracker,
    connections,
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    net = broker.config.network
    limits = ConnectionLimits(
        request_bytes_max=net.request_bytes_max,
        inflight_requests_max=net.inflight_requests_per_connection_max,
        idle_timeout_s=net.connections_max_idle_ms / 1000,
    )
    with scope:
        await serve_listener(
            sockets, broker.dispatcher, limits, tracker, connections, task_status=task_status
        )
