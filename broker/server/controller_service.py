"""The active controller in the trio shell, and how brokers reach it.

`ControllerService` runs on every controller voter; it is *active* while this
node leads the Raft quorum (and has applied everything before its term).
Requests from brokers (registration, heartbeats, ISR changes, forwarded admin
commands) become QuorumController commands; a command's records are proposed
as one Raft entry and the answer goes back once that entry is committed. One
command at a time: the next command sees the previous one's records.

`ControllerClient` is how a broker sends such a request: to the known leader
(locally when that is us), following NOT_CONTROLLER hints, trying the other
voters otherwise, each attempt bounded in time.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import trio

from broker.controller.controller import (
    AlterPartitionResponse,
    ControllerConfig,
    ControllerResult,
    ElectionResult,
    ElectionType,
    HeartbeatResponse,
    QuorumController,
    RegisterBrokerResponse,
    ToBroker,
)
from broker.controller.reassignment import Reassignment, ReassignmentResult
from broker.controller.records import Endpoint, MetadataRecord, encode_record
from broker.controller.topics import (
    NewTopic,
    TopicDefaults,
    TopicResult,
    create_topic,
)
from broker.controller.topics import create_partitions as plan_partitions
from broker.raft.core import NotLeader, ProposalDropped
from broker.server import peer_codec
from broker.server.clock import now_ms
from broker.server.peer import PeerError, PeerLink
from broker.server.quorum import ProposalLost, QuorumDriver
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 0.1
COMMAND_TIMEOUT_S = 30
ATTEMPT_TIMEOUT_S = 3.0
PRODUCER_ID_BLOCK = 1000


# -- requests (peer messages) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterBroker:
    broker_id: int
    incarnation_id: str
    listeners: tuple[Endpoint, ...]
    rack: str | None


@dataclass(frozen=True, slots=True)
class BrokerHeartbeat:
    broker_id: int
    broker_epoch: int
    metadata_offset: int
    want_fence: bool = False
    want_shutdown: bool = False


@dataclass(frozen=True, slots=True)
class AlterPartition:
    broker_id: int
    broker_epoch: int
    topic: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CreateTopics:
    topics: tuple[NewTopic, ...]
    validate_only: bool = False


@dataclass(frozen=True, slots=True)
class DeleteTopics:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CreatePartitions:
    name: str
    count: int
    assignments: tuple[tuple[int, ...], ...] | None = None
    validate_only: bool = False


@dataclass(frozen=True, slots=True)
class ElectLeaders:
    targets: tuple[tuple[str, int], ...] | None
    election: ElectionType | ToBroker


@dataclass(frozen=True, slots=True)
class AlterReassignment:
    topic: str
    partition: int
    target: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ListReassignments:
    pass


@dataclass(frozen=True, slots=True)
class AllocateProducerIds:
    broker_id: int


@dataclass(frozen=True, slots=True)
class ControllerReply:
    """The envelope of every answer: NOT_CONTROLLER with a hint, or the response
    and the metadata log index that holds its records (-1: none)."""

    error: ErrorCode
    leader_hint: int | None = None
    response: Any = None
    index: int = -1


peer_codec.register(
    RegisterBroker,
    BrokerHeartbeat,
    AlterPartition,
    CreateTopics,
    DeleteTopics,
    CreatePartitions,
    ElectLeaders,
    AlterReassignment,
    ListReassignments,
    AllocateProducerIds,
    ControllerReply,
    NewTopic,
    TopicResult,
    Endpoint,
    RegisterBrokerResponse,
    HeartbeatResponse,
    AlterPartitionResponse,
    ElectionResult,
    ElectionType,
    ToBroker,
    Reassignment,
    ReassignmentResult,
    ErrorCode,
)


def encode_entry(records: tuple[MetadataRecord, ...]) -> bytes:
    """One command's records as one Raft entry: a JSON array of records."""
    return b"[" + b",".join(encode_record(r) for r in records) + b"]"


def decode_entry(data: bytes) -> list[bytes]:
    """The encoded records in an entry (empty for a leader's no-op)."""
    if not data:
        return []
    return [json.dumps(item).encode() for item in json.loads(data)]


# -- the active controller --------------------------------------------------------------


@dataclass
class ControllerService:
    node_id: int
    quorum: QuorumDriver
    plane: Any  # the state machine: .image is the committed metadata image
    config: ControllerConfig
    defaults: TopicDefaults
    rng: random.Random = field(default_factory=random.Random)
    controller: QuorumController | None = None
    _lock: trio.Lock = field(default_factory=trio.Lock)
    _role_changed: trio.Event = field(default_factory=trio.Event)

    @property
    def active(self) -> bool:
        return self.controller is not None

    def on_role_change(self) -> None:
        """Called by the quorum driver: leadership came or went."""
        if not self.quorum.is_leader and self.controller is not None:
            log.info("controller %d is no longer active", self.node_id)
            self.controller = None
        self._role_changed.set()

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Activate when we lead and have applied our term's start; tick while active."""
        task_status.started()
        while True:
            if self.controller is None and self.quorum.is_leader:
                await self._activate()
            if self.controller is None:
                self._role_changed = trio.Event()
                if not self.quorum.is_leader:
                    await self._role_changed.wait()
                continue
            await trio.sleep(TICK_INTERVAL_S)
            await self._run_command(lambda c: c.tick(now_ms()))

    async def _activate(self) -> None:
        first_index = self.quorum.raft.raft_log.last_index()
        await self.quorum.wait_applied(first_index)
        async with self._lock:
            if not self.quorum.is_leader:
                return
            next_index = self.quorum.raft.raft_log.last_index() + 1
            self.controller = QuorumController(
                self.config, self.rng, self.plane.image.copy(), next_index, now_ms()
            )
        log.info(
            "controller %d active at term %d (next metadata index %d)",
            self.node_id,
            self.quorum.raft.term,
            next_index,
        )

    async def handle(self, request: Any) -> ControllerReply:
        """Answer one request from a broker (or from this node's own broker side)."""
        if self.controller is None:
            return ControllerReply(ErrorCode.NOT_CONTROLLER, self.quorum.leader_id)
        command = _COMMANDS.get(type(request))
        if command is None:
            return ControllerReply(ErrorCode.INVALID_REQUEST, response=f"unknown {request!r}")
        return await self._run_command(lambda c: command(self, c, request))

    async def _run_command(self, command) -> ControllerReply:
        """Run one command to the end even if the caller gives up: the working image
        already holds its records, so abandoning it half-way (before the proposal)
        would leave the image ahead of the log. A command that cannot commit within
        COMMAND_TIMEOUT_S deactivates the controller; it restarts from the log."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(COMMAND_TIMEOUT_S):
                return await self._run_command_unshielded(command)
            log.warning(
                "controller %d: a command did not commit in %ds; restarting from the log",
                self.node_id,
                COMMAND_TIMEOUT_S,
            )
            self.controller = None
            self._role_changed.set()
            return ControllerReply(ErrorCode.NOT_CONTROLLER, self.quorum.leader_id)

    async def _run_command_unshielded(self, command) -> ControllerReply:
        async with self._lock:
            controller = self.controller
            if controller is None:
                return ControllerReply(ErrorCode.NOT_CONTROLLER, self.quorum.leader_id)
            result: ControllerResult = command(controller)
            if not result.records:
                return ControllerReply(ErrorCode.NONE, response=result.response)
            try:
                index = await self.quorum.propose(encode_entry(result.records))
            except (NotLeader, ProposalDropped, ProposalLost) as exc:
                log.info("controller %d: proposal failed (%s); stepping down", self.node_id, exc)
                self.controller = None
                return ControllerReply(ErrorCode.NOT_CONTROLLER, self.quorum.leader_id)
            if index != result.offset:
                log.warning(
                    "controller %d: entry landed at %d, expected %d; resetting",
                    self.node_id,
                    index,
                    result.offset,
                )
                self.controller = None
            self._log_tick(result.response)
            return ControllerReply(ErrorCode.NONE, response=result.response, index=index)

    def _log_tick(self, response: Any) -> None:
        for unclean in getattr(response, "unclean", ()):
            log.warning("UNCLEAN leader election: %s (acknowledged data may be lost)", unclean)


def _create_topics(service: ControllerService, c: QuorumController, r: CreateTopics):
    if r.validate_only:
        results = []
        for topic in r.topics:
            _, result = create_topic(
                c.image, topic, c.image.usable_brokers(), service.defaults, service.rng
            )
            results.append(result)
        return ControllerResult((), results)
    return c.create_topics(list(r.topics))


def _create_partitions(service: ControllerService, c: QuorumController, r: CreatePartitions):
    assignments = list(r.assignments) if r.assignments is not None else None
    if r.validate_only:
        _, result = plan_partitions(c.image, r.name, r.count, assignments, c.image.usable_brokers())
        return ControllerResult((), result)
    return c.create_partitions(r.name, r.count, assignments)


_COMMANDS = {
    RegisterBroker: lambda s, c, r: c.register_broker(
        r.broker_id, r.incarnation_id, r.listeners, r.rack, now_ms()
    ),
    BrokerHeartbeat: lambda s, c, r: c.heartbeat(
        r.broker_id, r.broker_epoch, r.metadata_offset, r.want_fence, r.want_shutdown, now_ms()
    ),
    AlterPartition: lambda s, c, r: c.alter_partition(
        r.broker_id,
        r.broker_epoch,
        r.topic,
        r.partition,
        r.leader_epoch,
        r.partition_epoch,
        r.new_isr,
    ),
    CreateTopics: _create_topics,
    DeleteTopics: lambda s, c, r: c.delete_topics(list(r.names)),
    CreatePartitions: _create_partitions,
    ElectLeaders: lambda s, c, r: c.elect_leaders(
        list(r.targets) if r.targets is not None else None, r.election, now_ms()
    ),
    AlterReassignment: lambda s, c, r: c.alter_partition_reassignments(
        r.topic, r.partition, r.target
    ),
    ListReassignments: lambda s, c, r: ControllerResult((), c.list_partition_reassignments()),
    AllocateProducerIds: lambda s, c, r: c.allocate_producer_ids(PRODUCER_ID_BLOCK),
}


# -- the client side --------------------------------------------------------------------


class ControllerUnavailable(Exception):
    """No controller answered within the caller's deadline."""


class ControllerClient:
    def __init__(
        self,
        node_id: int,
        links: dict[int, PeerLink],
        local: ControllerService | None,
        quorum: QuorumDriver | None,
    ) -> None:
        self.node_id = node_id
        self.links = links
        self.local = local
        self.quorum = quorum
        self._hint: int | None = None

    def _candidates(self) -> list[int]:
        voters = sorted(set(self.links) | ({self.node_id} if self.local else set()))
        first = [
            h
            for h in (self._hint, self.quorum.leader_id if self.quorum else None)
            if h is not None and h in voters
        ]
        return first + [v for v in voters if v not in first]

    async def request(
        self, message: Any, *, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S
    ) -> ControllerReply:
        """Ask the active controller; keeps trying until the caller's deadline. Each
        voter gets attempt_timeout_s: a stopped process still accepts connections."""
        backoff_s = 0.05
        while True:
            for voter in self._candidates():
                reply = await self._attempt(voter, message, attempt_timeout_s)
                if reply is None:
                    continue
                if reply.error == ErrorCode.NOT_CONTROLLER:
                    self._hint = reply.leader_hint
                    continue
                self._hint = voter
                return reply
            await trio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 0.5)

    async def _attempt(self, voter: int, message: Any, timeout_s: float) -> ControllerReply | None:
        with trio.move_on_after(timeout_s):
            try:
                if voter == self.node_id and self.local is not None:
                    return await self.local.handle(message)
                return await self.links[voter].request(message)
            except PeerError:
                return None
        return None
