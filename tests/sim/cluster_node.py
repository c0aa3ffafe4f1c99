"""One simulated node of a combined-mode cluster: a Raft voter of the metadata
quorum, the controller while it leads, and a broker hosting partition replicas.

The node drives the sans-IO cores (RaftNode, QuorumController, MetadataImage,
Partition) the way the trio shell in broker/server does, as deterministic
message handlers: quorum.py (persist, send, apply), controller_service.py
(activate after applying the term's start, one Raft entry per command, answer on
commit), lifecycle.py (register, heartbeat), fetchers.py (OffsetForLeaderEpoch
then Fetch at the log end), api_data.py (produce with acks waits, follower reads
to the log end, long-polled), broker.py (tick_replication, AlterPartition).
Messages are the dataclasses below, carried by the simulated network.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.controller.controller import ControllerConfig, ControllerResult, QuorumController
from broker.controller.image import MetadataImage
from broker.controller.records import Endpoint, decode_record
from broker.controller.snapshot import image_from_snapshot, image_to_snapshot
from broker.effects import Effect, Persist, Send, SetTimer
from broker.log.log import UnexpectedAppendOffset
from broker.raft import AppendOps, NotLeader, ProposalDropped, RaftNode, Role
from broker.raft.messages import Entry
from broker.replication.follower import Phase
from broker.replication.leader import Completion
from broker.replication.partition import Assignment, Partition
from broker.replication.producer_state import ProducerStateManager
from broker.server.controller_service import (
    AlterPartition,
    BrokerHeartbeat,
    ControllerReply,
    CreateTopics,
    RegisterBroker,
    decode_entry,
    encode_entry,
)
from protocol.batch import CorruptBatchError, InvalidBatchError, iter_batches
from protocol.errors import ErrorCode
from tests.sim.cluster_invariants import AckedRecord
from tests.sim.memlog import MemoryLog, PartitionDisk
from tests.sim.raft_invariants import InvariantViolation, StateMachine

if TYPE_CHECKING:
    from tests.sim.cluster_sim import ClusterSim

log = logging.getLogger(__name__)

PartitionKey = tuple[str, int]


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControllerCall:
    call_id: int
    request: Any


@dataclass(frozen=True, slots=True)
class ControllerAnswer:
    call_id: int
    reply: ControllerReply


@dataclass(frozen=True, slots=True)
class FetchRequest:
    call_id: int
    key: PartitionKey
    current_leader_epoch: int
    fetch_offset: int


@dataclass(frozen=True, slots=True)
class FetchResponse:
    call_id: int
    key: PartitionKey
    error: ErrorCode
    high_watermark: int
    records: bytes = b""


@dataclass(frozen=True, slots=True)
class EpochRequest:
    """OffsetForLeaderEpoch from a follower."""

    call_id: int
    key: PartitionKey
    current_leader_epoch: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EpochResponse:
    call_id: int
    key: PartitionKey
    error: ErrorCode
    leader_epoch: int = -1
    end_offset: int = -1


@dataclass(frozen=True, slots=True)
class ProduceRequest:
    call_id: int
    key: PartitionKey
    acks: int
    records: bytes


@dataclass(frozen=True, slots=True)
class ProduceResponse:
    call_id: int
    key: PartitionKey
    error: ErrorCode
    base_offset: int = -1


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Shell timings (scaled down from production so runs are short) and variants."""

    broker_heartbeat_interval_ms: int = 500
    broker_session_timeout_ms: int = 3000
    replica_lag_time_max_ms: int = 1500
    fetch_wait_max_ms: int = 500
    fetch_timeout_ms: int = 1500
    node_tick_ms: int = 100
    controller_tick_ms: int = 300
    controller_retry_ms: int = 500
    isr_proposal_timeout_ms: int = 3000
    leader_imbalance_check_interval_ms: int = 3000
    min_insync_replicas: int = 2
    max_message_bytes: int = 1 << 20
    fetch_max_bytes: int = 4096
    fsync_each_append: bool = True
    unclean_leader_election_enable: bool = False
    # fetchers.py applies a response if the partition is still a follower, of any epoch;
    # True also requires the epoch and leader the request was sent for (Kafka does)
    fetch_epoch_check: bool = True
    # the shell (broker.py _follow_metadata) applies partition roles from the image as
    # soon as it has one, before this process's registration; Kafka's broker waits until
    # its new incarnation is registered (which takes its old leaderships away)
    roles_before_registration: bool = False
    # replica_manager.sync_with calls Partition.become for every partition on every
    # image change; False calls it only for partitions whose state changed (Kafka's
    # delta), which keeps clear of the pending-ISR bug (test_cluster_scenarios.py)
    become_on_every_image: bool = False
    # deliberately broken variants (the checkers must catch them)
    ack_on_local_append: bool = False
    skip_truncation: bool = False

    def controller_config(self) -> ControllerConfig:
        return ControllerConfig(
            broker_session_timeout_ms=self.broker_session_timeout_ms,
            broker_heartbeat_interval_ms=self.broker_heartbeat_interval_ms,
            unclean_leader_election_enable=self.unclean_leader_election_enable,
            leader_imbalance_check_interval_ms=self.leader_imbalance_check_interval_ms,
            default_replication_factor=3,
            min_insync_replicas=self.min_insync_replicas,
        )


@dataclass(slots=True)
class Outstanding:
    """A request in flight from this node, re-sent until answered or its deadline."""

    call_id: int
    to: int
    message: Any
    deadline_ms: int
    resend_at_ms: int
    context: Any = None
    redirected: bool = False


@dataclass(slots=True)
class FetchState:
    call_id: int | None = None
    sent_ms: int = 0
    sent_to: int = -1
    sent_epoch: int = -1


@dataclass(slots=True)
class Waiter:
    client: int
    call_id: int
    key: PartitionKey
    base_offset: int
    last_offset: int
    crc: int


@dataclass(slots=True)
class ParkedFetch:
    src: int
    request: FetchRequest
    deadline_ms: int


# -- the node ------------------------------------------------------------------------------


class SimNode:
    """One process life (incarnation) of a node; its disks outlive it."""

    def __init__(self, sim: ClusterSim, node_id: int, incarnation: int) -> None:
        self.sim = sim
        self.node_id = node_id
        self.incarnation = incarnation
        self.settings: NodeSettings = sim.settings
        self.incarnation_id = f"node{node_id}-life{incarnation}"
        self.raft = RaftNode(
            node_id,
            sim.ids,
            sim.raft_disks[node_id].current,
            random.Random(sim.node_rng.getrandbits(64)),
            **sim.raft_options,
        )
        self.machine = StateMachine()
        self.image = MetadataImage()
        self.timer_at_ms: int | None = None
        self.controller: QuorumController | None = None
        self._activate_at: int | None = None
        self._proposals: dict[int, tuple[bytes, tuple[int, int, Any] | None]] = {}
        self.partitions: dict[PartitionKey, Partition] = {}
        # one fetch loop per (partition, source broker), as fetchers.py has one per source
        self.fetch: dict[tuple[PartitionKey, int], FetchState] = {}
        self.parked: dict[PartitionKey, list[ParkedFetch]] = {}
        self.waiters: dict[int, Waiter] = {}
        self.outstanding: dict[int, Outstanding] = {}
        self.controller_hint: int | None = None
        self.broker_epoch = -1
        self.fenced = True
        self._register_inflight = False
        self._heartbeat_due_ms = 0
        self._controller_tick_due_ms = 0
        # request ids never repeat across process lives: an answer meant for an earlier
        # life (a closed connection, in the shell) must not match a new request
        self._next_id = incarnation << 32
        self._image_version = 0
        self._synced_version = 0

    @property
    def now(self) -> int:
        return self.sim.clock.now_ms

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def start(self) -> None:
        self._execute(self.raft.tick(self.now))
        self.sim.clock.call_later(0, self.sim.on_node_tick, self.node_id, self.incarnation)

    # -- Raft and the metadata image (quorum.py, metadata_plane.py) --------------------

    def on_raft_timer(self) -> None:
        self.timer_at_ms = None
        self._execute(self.raft.tick(self.now))

    def _execute(self, effects: list[Effect]) -> None:
        """Persist, then send, then apply what committed (the node's contract)."""
        disk = self.sim.raft_disks[self.node_id]
        for effect in effects:
            if isinstance(effect, Persist):
                if isinstance(effect.operation, AppendOps):
                    self.sim.raft_invariants.on_append(self.node_id, disk.current, effect.operation)
                disk.write(effect.operation, sync=True)
        timers = []
        for effect in effects:
            if isinstance(effect, Send):
                self.sim.send(self.node_id, effect.to, effect.message)
            elif isinstance(effect, SetTimer):
                timers.append(effect.at_ms)
        self._apply_committed()
        self.sim.raft_invariants.after_step(self.node_id, self.incarnation, self.raft)
        self._after_raft()
        if timers:
            self._set_timer(min(timers))

    def _set_timer(self, at_ms: int) -> None:
        at_ms = max(at_ms, self.now)
        if self.timer_at_ms is None or at_ms < self.timer_at_ms:
            self.timer_at_ms = at_ms
            self.sim.clock.call_at(
                at_ms, self.sim.on_raft_timer, self.node_id, self.incarnation, at_ms
            )

    def _apply_committed(self) -> None:
        raft, inv = self.raft, self.sim.raft_invariants
        snapshot = raft.restore()
        if snapshot is not None:
            head, _, image_bytes = snapshot.data.partition(b"\n")
            index, digest = head.decode().split(":")
            self.machine = StateMachine(applied_index=int(index), digest=int(digest))
            inv.on_restore(self.node_id, self.machine)
            self.image = image_from_snapshot(image_bytes)
            self.sim.invariants.on_image_applied(
                self.node_id, snapshot.index, image_to_snapshot(self.image)
            )
            self._image_version += 1
            for index_ in [i for i in self._proposals if i <= snapshot.index]:
                self._answer_proposal(index_, None)
        for entry in raft.committed():
            self.machine.apply(entry)
            inv.on_apply(self.node_id, entry, self.machine)
            self._apply_entry(entry)
        if raft.wants_snapshot():
            data = self.machine.image() + b"\n" + image_to_snapshot(self.image)
            for effect in raft.compact(self.machine.applied_index, data):
                assert isinstance(effect, Persist)
                self.sim.raft_disks[self.node_id].write(effect.operation, sync=True)

    def _apply_entry(self, entry: Entry) -> None:
        raws = decode_entry(entry.data)
        for raw in raws:
            self.image.replay(decode_record(raw), entry.index)
        if raws:
            self._image_version += 1
        self.sim.invariants.on_image_applied(
            self.node_id, entry.index, image_to_snapshot(self.image)
        )
        if entry.index in self._proposals:
            self._answer_proposal(entry.index, entry.data)

    def _after_raft(self) -> None:
        """Controller activation/deactivation, then partitions in line with the image."""
        if self.raft.role is not Role.LEADER:
            if self.controller is not None:
                log.debug("t=%d controller %d no longer active", self.now, self.node_id)
            self.controller = None
            self._activate_at = None
        elif self.controller is None:
            if self._activate_at is None:
                self._activate_at = self.raft.raft_log.last_index()
            if self.raft.applied_index >= self._activate_at:
                self._activate()
        if self._image_version != self._synced_version:
            self._synced_version = self._image_version
            self.sync_with_metadata()

    def _activate(self) -> None:
        next_index = self.raft.raft_log.last_index() + 1
        self.sim.invariants.on_controller_active(
            self.node_id, self.raft.term, self.raft.role is Role.LEADER
        )
        self.controller = QuorumController(
            self.settings.controller_config(),
            random.Random(self.sim.node_rng.getrandbits(64)),
            self.image.copy(),
            next_index,
            self.now,
        )
        self._controller_tick_due_ms = self.now
        log.debug("t=%d controller %d active in term %d", self.now, self.node_id, self.raft.term)

    # -- the active controller (controller_service.py) --------------------------------

    def on_controller_call(self, src: int, m: ControllerCall) -> None:
        if self.controller is None:
            reply = ControllerReply(ErrorCode.NOT_CONTROLLER, self.raft.leader_id)
            self.sim.send(self.node_id, src, ControllerAnswer(m.call_id, reply))
            return
        self._run_command(_command(m.request, self.now), (src, m.call_id))

    def _run_command(self, command, reply_to: tuple[int, int] | None) -> None:
        controller = self.controller
        assert controller is not None
        result: ControllerResult = command(controller)
        if not result.records:
            if reply_to is not None:
                answer = ControllerAnswer(
                    reply_to[1], ControllerReply(ErrorCode.NONE, None, result.response)
                )
                self.sim.send(self.node_id, reply_to[0], answer)
            return
        data = encode_entry(result.records)
        try:
            index, effects = self.raft.propose(data, self.now)
        except (NotLeader, ProposalDropped):
            self.controller = None
            if reply_to is not None:
                reply = ControllerReply(ErrorCode.NOT_CONTROLLER, self.raft.leader_id)
                self.sim.send(self.node_id, reply_to[0], ControllerAnswer(reply_to[1], reply))
            return
        if index != result.offset:
            log.debug(
                "t=%d controller %d: entry at %d, expected %d",
                self.now,
                self.node_id,
                index,
                result.offset,
            )
            self.controller = None
        target = None if reply_to is None else (*reply_to, result.response)
        self._proposals[index] = (data, target)
        self._execute(effects)

    def _answer_proposal(self, index: int, committed: bytes | None) -> None:
        data, target = self._proposals.pop(index)
        if committed != data and self.controller is not None:
            self.controller = None  # ProposalLost: a new leader replaced our entry
        settled = committed == data and self.controller is not None and not self._proposals
        if settled and self.controller.image != self.image:
            raise_controller_divergence(self.node_id, index)
        if target is None:
            return
        src, call_id, response = target
        if committed == data:
            reply = ControllerReply(ErrorCode.NONE, None, response, index)
        else:
            reply = ControllerReply(ErrorCode.NOT_CONTROLLER, self.raft.leader_id)
        self.sim.send(self.node_id, src, ControllerAnswer(call_id, reply))

    # -- calls to the controller (ControllerClient) ------------------------------------

    def call_controller(self, request: Any, context: Any, timeout_ms: int) -> None:
        call_id = self.new_id()
        target = self._controller_target()
        message = ControllerCall(call_id, request)
        self.outstanding[call_id] = Outstanding(
            call_id,
            target,
            message,
            self.now + timeout_ms,
            self.now + self.settings.controller_retry_ms,
            context,
        )
        self.sim.send(self.node_id, target, message)

    def _controller_target(self) -> int:
        for hint in (self.controller_hint, self.raft.leader_id):
            if hint is not None:
                return hint
        return self.sim.node_rng.choice(self.sim.ids)

    def on_controller_answer(self, src: int, m: ControllerAnswer) -> None:
        call = self.outstanding.get(m.call_id)
        if call is None:
            return  # answered already, or given up
        if m.reply.error == ErrorCode.NOT_CONTROLLER:
            # ControllerClient follows the hint (at the next tick: no busy loop)
            self.controller_hint = m.reply.leader_hint
            call.resend_at_ms = self.now
            call.redirected = True
            return
        del self.outstanding[m.call_id]
        self.controller_hint = src
        self._on_controller_reply(call, m.reply)

    def _retry_controller_calls(self) -> None:
        for call in list(self.outstanding.values()):
            if self.now >= call.deadline_ms:
                del self.outstanding[call.call_id]
                if self.controller_hint == call.to and not call.redirected:
                    self.controller_hint = None  # it did not answer: try the others
                self._on_controller_timeout(call)
            elif self.now >= call.resend_at_ms:
                # no answer: try the hint, else the next candidate (ControllerClient's loop)
                if not call.redirected:
                    self.controller_hint = None
                call.redirected = False
                call.resend_at_ms = self.now + self.settings.controller_retry_ms
                call.to = self._controller_target()
                self.sim.send(self.node_id, call.to, call.message)

    def _on_controller_reply(self, call: Outstanding, reply: ControllerReply) -> None:
        request = call.message.request
        if isinstance(request, RegisterBroker):
            self._register_inflight = False
            if reply.response.error == ErrorCode.NONE:
                self.broker_epoch = reply.response.broker_epoch
                self._heartbeat_due_ms = self.now
        elif isinstance(request, BrokerHeartbeat):
            response = reply.response
            if (
                response.error == ErrorCode.STALE_BROKER_EPOCH
                and request.broker_epoch == self.broker_epoch
            ):
                self.broker_epoch = -1
                self.fenced = True
            elif response.error == ErrorCode.NONE:
                self.fenced = response.is_fenced
        elif isinstance(request, AlterPartition) and reply.response.error != ErrorCode.NONE:
            self._isr_rejected(call.context, request.leader_epoch)

    def _on_controller_timeout(self, call: Outstanding) -> None:
        request = call.message.request
        if isinstance(request, RegisterBroker):
            self._register_inflight = False
        elif isinstance(request, AlterPartition):
            self._isr_rejected(call.context, request.leader_epoch)

    def _isr_rejected(self, key: PartitionKey, leader_epoch: int) -> None:
        p = self.partitions.get(key)
        if p is not None and p.leader is not None and p.leader.leader_epoch == leader_epoch:
            p.leader.on_isr_rejected()

    # -- lifecycle (lifecycle.py) --------------------------------------------------------

    def _lifecycle(self) -> None:
        s = self.settings
        if self.broker_epoch < 0:
            if not self._register_inflight:
                self._register_inflight = True
                listeners = (Endpoint("PLAINTEXT", f"node{self.node_id}", 9092),)
                request = RegisterBroker(self.node_id, self.incarnation_id, listeners, None)
                self.call_controller(request, None, s.broker_heartbeat_interval_ms * 2)
            return
        if self.now >= self._heartbeat_due_ms:
            self._heartbeat_due_ms = self.now + s.broker_heartbeat_interval_ms
            request = BrokerHeartbeat(self.node_id, self.broker_epoch, self.raft.applied_index)
            self.call_controller(request, None, s.broker_heartbeat_interval_ms)

    # -- periodic work -----------------------------------------------------------------

    def on_tick(self) -> None:
        """Every node_tick_ms: lifecycle, controller tick, replication tick, fetchers."""
        s = self.settings
        self._retry_controller_calls()
        self._lifecycle()
        if self.controller is not None and self.now >= self._controller_tick_due_ms:
            self._controller_tick_due_ms = self.now + s.controller_tick_ms
            self._run_command(lambda c: c.tick(self.now), None)
        self._tick_replication()
        self._expire_parked()
        for key, p in self.partitions.items():
            if p.follower is not None:
                state = self.fetch.setdefault((key, p.follower.leader_id), FetchState())
                if state.call_id is None or self.now - state.sent_ms >= s.fetch_timeout_ms:
                    self._send_fetch(key, p)
            self.sim.disks[self.node_id][key].high_watermark_checkpoint = p.high_watermark

    def _tick_replication(self) -> None:
        """broker.py tick_replication: acks timeouts and ISR changes to propose."""
        eligible = frozenset(self.image.usable_brokers())
        for key, p in self.partitions.items():
            leader = p.leader
            if leader is None:
                continue
            if leader.waiters:
                self.complete(leader.completions(self.now))
            if len(leader.replicas) > 1:
                proposal = p.isr_proposal(self.now, eligible)
                if proposal is not None:
                    request = AlterPartition(
                        self.node_id,
                        self.broker_epoch,
                        key[0],
                        key[1],
                        proposal.leader_epoch,
                        proposal.partition_epoch,
                        proposal.new_isr,
                    )
                    log.debug(
                        "t=%d node %d %s proposes ISR %s",
                        self.now,
                        self.node_id,
                        key,
                        proposal.new_isr,
                    )
                    self.call_controller(request, key, self.settings.isr_proposal_timeout_ms)

    # -- partitions (replica_manager.py) ----------------------------------------------

    def sync_with_metadata(self) -> None:
        registration = self.image.brokers.get(self.node_id)
        registered = registration is not None and (
            registration.incarnation_id == self.incarnation_id
        )
        if not registered and not self.settings.roles_before_registration:
            return
        failed: list[Completion] = []
        for topic in self.image.topics.values():
            for index, state in topic.partitions.items():
                if self.node_id not in state.replicas:
                    continue
                key = (topic.name, index)
                p = self.partitions.get(key) or self._open(key)
                p.min_insync_replicas = int(
                    topic.configs.get("min.insync.replicas", self.settings.min_insync_replicas)
                )
                assignment = Assignment(
                    state.leader,
                    state.leader_epoch,
                    state.partition_epoch,
                    tuple(state.replicas),
                    tuple(state.isr),
                )
                if p.assignment != assignment or self.settings.become_on_every_image:
                    failed += p.become(assignment, self.now)
        self.complete(failed)
        for key in self.partitions:
            self._answer_parked(key)  # a role change ends a fetch's wait

    def _open(self, key: PartitionKey) -> Partition:
        disks = self.sim.disks[self.node_id]
        disk = disks.setdefault(key, PartitionDisk())
        name = f"node{self.node_id}:{key[0]}-{key[1]}"
        log_ = MemoryLog(disk, fsync_each_append=self.settings.fsync_each_append, name=name)
        p = Partition(
            key[0],
            key[1],
            log_,
            ProducerStateManager(),
            node_id=self.node_id,
            max_message_bytes=self.settings.max_message_bytes,
            min_insync_replicas=self.settings.min_insync_replicas,
            lag_time_max_ms=self.settings.replica_lag_time_max_ms,
            high_watermark=disk.high_watermark_checkpoint,
        )
        self.partitions[key] = p
        return p

    def complete(self, completions: list[Completion]) -> None:
        """Release acks=all produces a partition decided about."""
        for completion in completions:
            waiter = self.waiters.pop(completion.request_id, None)
            if waiter is None:
                continue
            if completion.error == ErrorCode.NONE:
                self._acked(waiter)
            response = ProduceResponse(
                waiter.call_id,
                waiter.key,
                completion.error,
                waiter.base_offset if completion.error == ErrorCode.NONE else -1,
            )
            self.sim.send(self.node_id, waiter.client, response)

    def _acked(self, waiter: Waiter) -> None:
        p = self.partitions[waiter.key]
        assert p.leader is not None
        record = AckedRecord(
            waiter.key,
            waiter.base_offset,
            waiter.last_offset,
            waiter.crc,
            tuple(sorted(p.leader.isr)),
            self.node_id,
            p.leader_epoch,
            self.now,
        )
        self.sim.invariants.on_acked(record, p.min_insync_replicas)

    # -- leader side (api_data.py) ------------------------------------------------------

    def on_produce(self, src: int, m: ProduceRequest) -> None:
        p = self.partitions.get(m.key)
        if p is None:
            self.sim.send(
                self.node_id,
                src,
                ProduceResponse(m.call_id, m.key, ErrorCode.NOT_LEADER_OR_FOLLOWER),
            )
            return
        result = p.append_as_leader(m.records, self.now, m.acks)
        if result.error:
            self.sim.send(self.node_id, src, ProduceResponse(m.call_id, m.key, result.error))
            return
        self._answer_parked(m.key)
        [(_, header)] = list(iter_batches(m.records))
        waiter = Waiter(src, m.call_id, m.key, result.base_offset, result.last_offset, header.crc)
        immediate = m.acks != -1 or p.high_watermark > result.last_offset
        if immediate or self.settings.ack_on_local_append:
            if m.acks == -1:
                self._acked(waiter)
            response = ProduceResponse(m.call_id, m.key, ErrorCode.NONE, result.base_offset)
            self.sim.send(self.node_id, src, response)
            return
        request_id = self.new_id()
        self.waiters[request_id] = waiter
        assert p.leader is not None
        p.leader.add_waiter(request_id, result.last_offset, self.now + self.sim.produce_timeout_ms)

    def on_fetch(self, src: int, m: FetchRequest) -> None:
        p = self.partitions.get(m.key)
        if p is None or p.leader is None:
            self._fetch_error(src, m, ErrorCode.NOT_LEADER_OR_FOLLOWER, -1)
            return
        error = _epoch_error(p, m.current_leader_epoch)
        if error:
            self._fetch_error(src, m, error, p.high_watermark)
            return
        if p.on_follower_fetch(src, m.fetch_offset, self.now):
            self.complete(p.leader.completions(self.now))
        if m.fetch_offset == p.log.log_end_offset:
            deadline = self.now + self.settings.fetch_wait_max_ms
            self.parked.setdefault(m.key, []).append(ParkedFetch(src, m, deadline))
            return
        self._answer_fetch(src, m, p)

    def _fetch_error(self, src: int, m: FetchRequest, error: ErrorCode, hw: int) -> None:
        self.sim.send(self.node_id, src, FetchResponse(m.call_id, m.key, error, hw))

    def _answer_fetch(self, src: int, m: FetchRequest, p: Partition) -> None:
        """_read_for_follower: bytes from the fetch offset up to the log end."""
        if p.leader is None:
            self._fetch_error(src, m, ErrorCode.NOT_LEADER_OR_FOLLOWER, -1)
            return
        error = _epoch_error(p, m.current_leader_epoch)
        if error:
            self._fetch_error(src, m, error, p.high_watermark)
            return
        end = p.log.log_end_offset
        if m.fetch_offset > end or m.fetch_offset < p.log.log_start_offset:
            self._fetch_error(src, m, ErrorCode.OFFSET_OUT_OF_RANGE, p.high_watermark)
            return
        data = b""
        if m.fetch_offset < end:
            data = p.log.read(m.fetch_offset, self.settings.fetch_max_bytes, max_offset=end).data
        response = FetchResponse(m.call_id, m.key, ErrorCode.NONE, p.high_watermark, data)
        self.sim.send(self.node_id, src, response)

    def _answer_parked(self, key: PartitionKey) -> None:
        parked = self.parked.pop(key, None)
        if not parked:
            return
        p = self.partitions[key]
        for fetch in parked:
            self._answer_fetch(fetch.src, fetch.request, p)

    def _expire_parked(self) -> None:
        for key in list(self.parked):
            due = [f for f in self.parked[key] if f.deadline_ms <= self.now]
            if due:
                self.parked[key] = [f for f in self.parked[key] if f.deadline_ms > self.now]
                for fetch in due:
                    self._answer_fetch(fetch.src, fetch.request, self.partitions[key])

    def on_epoch_request(self, src: int, m: EpochRequest) -> None:
        """OffsetForLeaderEpoch (api_data.offset_for_leader_epoch)."""
        p = self.partitions.get(m.key)
        if p is None:
            response = EpochResponse(m.call_id, m.key, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        elif p.leader is None:
            response = EpochResponse(m.call_id, m.key, ErrorCode.NOT_LEADER_OR_FOLLOWER)
        elif error := _epoch_error(p, m.current_leader_epoch):
            response = EpochResponse(m.call_id, m.key, error)
        else:
            epoch, end = p.log.epoch_cache.end_offset_for(m.leader_epoch, p.log.log_end_offset)
            response = EpochResponse(m.call_id, m.key, ErrorCode.NONE, epoch, end)
        self.sim.send(self.node_id, src, response)

    # -- follower side (fetchers.py) ----------------------------------------------------

    def _send_fetch(self, key: PartitionKey, p: Partition) -> None:
        follower = p.follower
        assert follower is not None
        if follower.leader_id < 0:
            return
        state = self.fetch.setdefault((key, follower.leader_id), FetchState())
        call_id = self.new_id()
        state.call_id, state.sent_ms = call_id, self.now
        state.sent_to, state.sent_epoch = follower.leader_id, follower.leader_epoch
        if p.needs_truncation:
            message: Any = EpochRequest(call_id, key, follower.leader_epoch, p.log.latest_epoch)
        else:
            message = FetchRequest(call_id, key, follower.leader_epoch, p.log.log_end_offset)
        self.sim.send(self.node_id, follower.leader_id, message)

    def _take_response(
        self, key: PartitionKey, src: int, call_id: int
    ) -> tuple[Partition, bool] | None:
        """The partition to apply a response to (None: stale), and whether it still
        follows the leader and epoch the request went to (then it fetches on)."""
        state = self.fetch.get((key, src))
        p = self.partitions.get(key)
        if state is None or p is None or state.call_id != call_id:
            return None
        state.call_id = None
        if p.follower is None:
            return None  # our role changed while the request was in flight
        current = (p.follower.leader_id, p.follower.leader_epoch) == (
            state.sent_to,
            state.sent_epoch,
        )
        if self.settings.fetch_epoch_check and not current:
            return None
        return p, current

    def on_epoch_response(self, src: int, m: EpochResponse) -> None:
        taken = self._take_response(m.key, src, m.call_id)
        if taken is None:
            return
        p, current = taken
        if m.error == ErrorCode.NONE and p.needs_truncation:
            if self.settings.skip_truncation:
                p.follower.phase = Phase.FETCHING
            else:
                p.truncate_after_epoch_check(m.leader_epoch, m.end_offset, self.now)
        if m.error == ErrorCode.NONE and current:
            self._send_fetch(m.key, p)

    def on_fetch_response(self, src: int, m: FetchResponse) -> None:
        taken = self._take_response(m.key, src, m.call_id)
        if taken is None:
            return
        p, current = taken
        if m.error == ErrorCode.OFFSET_OUT_OF_RANGE:
            if p.log.log_end_offset > m.high_watermark >= 0:
                p.truncate_to(m.high_watermark, self.now)
            return
        if m.error:
            return  # retried at the next tick (replica_fetch_backoff_ms)
        try:
            p.append_as_follower(m.records, m.high_watermark, self.now)
        except (CorruptBatchError, InvalidBatchError):
            return
        except UnexpectedAppendOffset as exc:
            # fetchers._append catches only the two above: the fetcher task dies, and
            # with it the broker's nursery
            raise InvariantViolation("FetcherCrash", f"node {self.node_id}: {exc}") from exc
        if current:
            self._send_fetch(m.key, p)


def raise_controller_divergence(node_id: int, index: int) -> None:
    raise InvariantViolation(
        "ControllerSafety",
        f"controller {node_id}'s working image differs from its applied log at {index}",
    )


def _epoch_error(p: Partition, current_leader_epoch: int) -> ErrorCode:
    """KIP-320 (api_data._epoch_error)."""
    if current_leader_epoch == -1 or current_leader_epoch == p.leader_epoch:
        return ErrorCode.NONE
    if current_leader_epoch < p.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH
    return ErrorCode.UNKNOWN_LEADER_EPOCH


def _command(request: Any, now_ms: int):
    """controller_service._COMMANDS, for the requests the simulation sends."""
    match request:
        case RegisterBroker():
            return lambda c: c.register_broker(
                request.broker_id, request.incarnation_id, request.listeners, request.rack, now_ms
            )
        case BrokerHeartbeat():
            return lambda c: c.heartbeat(
                request.broker_id,
                request.broker_epoch,
                request.metadata_offset,
                request.want_fence,
                request.want_shutdown,
                now_ms,
            )
        case AlterPartition():
            return lambda c: c.alter_partition(
                request.broker_id,
                request.broker_epoch,
                request.topic,
                request.partition,
                request.leader_epoch,
                request.partition_epoch,
                request.new_isr,
            )
        case CreateTopics():
            return lambda c: c.create_topics(list(request.topics))
    raise AssertionError(f"unexpected controller request {request!r}")


__all__ = [
    "ControllerAnswer",
    "ControllerCall",
    "EpochRequest",
    "EpochResponse",
    "FetchRequest",
    "FetchResponse",
    "NodeSettings",
    "ProduceRequest",
    "ProduceResponse",
    "SimNode",
]
