"""QuorumController: the active controller's commands, as a sans-IO core.

Every command returns a ControllerResult (records, response) and changes no
state directly. The controller applies its own records to a *working image*
as soon as it issues them, because later commands must see them before they
commit (KRaft does the same). The shell appends each non-empty result as one
entry of the metadata log at `result.offset` (the controller's next write
offset), and every node replays committed entries in order. When this node
loses leadership, or gains it, the shell calls reset_to(committed image, next
offset, now): uncommitted records are forgotten, and heartbeat soft state
restarts with a full session of grace for every broker.

Time comes in as now_ms; randomness (topic ids, assignment starts) from the
injected rng.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from broker.controller import reassignment
from broker.controller.brokers import (
    BrokerState,
    HeartbeatFacts,
    Sessions,
    current_state,
    next_state,
)
from broker.controller.elections import (
    Election,
    Target,
    UncleanElection,
    build_change,
    elect_offline,
    log_change,
    partitions,
    remove_from_isrs,
    unclean_allowed,
)
from broker.controller.image import MetadataImage, PartitionState, TopicImage
from broker.controller.reassignment import Reassignment, ReassignmentResult
from broker.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    Endpoint,
    MetadataRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    UnregisterBrokerRecord,
)
from broker.controller.topics import (
    NewTopic,
    RandomBits,
    TopicDefaults,
    TopicResult,
    create_partitions,
    create_topic,
    delete_topic,
)
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """Kafka's controller settings, by their Kafka names (dots as underscores)."""

    broker_session_timeout_ms: int = 9000
    broker_heartbeat_interval_ms: int = 2000
    unclean_leader_election_enable: bool = False
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_per_broker_percentage: int = 10
    leader_imbalance_check_interval_ms: int = 300_000
    default_replication_factor: int = 1
    num_partitions: int = 1
    min_insync_replicas: int = 1
    activation_grace_ms: int | None = None
    """How long a new active controller waits to hear from each broker before fencing
    it (None: a full session, as KRaft). Brokers find a new controller within a
    heartbeat or two, so a shorter grace halves failover when the controller dies."""
    elections_per_call_max: int = 1000
    """Leader elections one call may make (Kafka's max elections per imbalance check)."""

    def __post_init__(self) -> None:
        if not 0 < self.broker_heartbeat_interval_ms < self.broker_session_timeout_ms:
            raise ValueError("need 0 < broker_heartbeat_interval_ms < broker_session_timeout_ms")
        if not 0 <= self.leader_imbalance_per_broker_percentage <= 100:
            raise ValueError("leader_imbalance_per_broker_percentage must be in 0..100")
        positive = (
            self.leader_imbalance_check_interval_ms,
            self.default_replication_factor,
            self.num_partitions,
            self.min_insync_replicas,
            self.elections_per_call_max,
        )
        if min(positive) <= 0:
            raise ValueError("intervals, defaults and limits must be positive")


@dataclass(frozen=True, slots=True)
class ControllerResult(Generic[R]):
    """Records to append (as one metadata-log entry at `offset`) and the command's answer."""

    records: tuple[MetadataRecord, ...]
    response: R
    offset: int | None = None
    """Where the records must land in the metadata log; None when there are none."""


# -- responses ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterBrokerResponse:
    error: ErrorCode
    broker_epoch: int = -1
    message: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    error: ErrorCode
    is_caught_up: bool = False
    is_fenced: bool = True
    in_controlled_shutdown: bool = False
    should_shut_down: bool = False


@dataclass(frozen=True, slots=True)
class AlterPartitionResponse:
    error: ErrorCode
    message: str | None = None
    leader: int = -1
    leader_epoch: int = -1
    partition_epoch: int = -1
    isr: tuple[int, ...] = ()


class ElectionType(enum.Enum):
    """ElectLeaders' election types (Kafka's wire values)."""

    PREFERRED = 0
    UNCLEAN = 1


@dataclass(frozen=True, slots=True)
class ToBroker:
    """Ours: move leadership to a named broker, which must be a live ISR member."""

    broker_id: int


@dataclass(frozen=True, slots=True)
class ElectionResult:
    topic: str
    partition: int
    error: ErrorCode = ErrorCode.NONE
    message: str | None = None
    leader: int = -1
    data_may_be_lost: bool = False
    """An unclean election: the shell works out (and logs) which offsets are gone."""


@dataclass(frozen=True, slots=True)
class TickReport:
    fenced: tuple[int, ...] = ()
    elected: int = 0
    unclean: tuple[UncleanElection, ...] = ()
    """Unclean elections made: the shell logs each at WARNING."""
    rebalanced: int = 0


# -- the controller -----------------------------------------------------------------


class QuorumController:
    def __init__(
        self,
        config: ControllerConfig,
        rng: RandomBits,
        committed: MetadataImage | None = None,
        next_offset: int = 0,
        now_ms: int = 0,
    ) -> None:
        self.config = config
        self._rng = rng
        self._sessions = Sessions(config.broker_session_timeout_ms)
        self._pending: list[MetadataRecord] = []
        self._unclean: list[UncleanElection] = []
        self.reset_to(committed or MetadataImage(), next_offset, now_ms)

    @property
    def image(self) -> MetadataImage:
        """The working image: committed records plus every record issued since. Read only."""
        return self._image

    @property
    def next_offset(self) -> int:
        return self._next_offset

    def reset_to(self, committed: MetadataImage, next_offset: int, now_ms: int) -> None:
        """Start over from `committed` (becoming active, or losing uncommitted records).

        Call it on becoming the active controller only once `committed` includes every
        entry that precedes this leader's first entry of its term (Raft may still commit
        an old leader's entries), with `next_offset` the index this controller writes next.
        """
        assert next_offset > committed.metadata_offset, "next offset behind the committed image"
        assert not self._pending, "reset in the middle of a command"
        self._image = committed.copy()
        self._next_offset = next_offset
        self._sessions.grant_grace(self._image, now_ms, self.config.activation_grace_ms)
        self._next_rebalance_ms = now_ms + self.config.leader_imbalance_check_interval_ms

    # -- plumbing: every command ends in _finish ------------------------------------

    def _apply(self, records: Iterable[MetadataRecord]) -> None:
        """Issue records: into the working image now, into the result at the end."""
        for record in records:
            self._image.replay(record, self._next_offset)
            self._pending.append(record)

    def _finish(self, response: R) -> ControllerResult[R]:
        records, self._pending = tuple(self._pending), []
        self._unclean = []
        if not records:
            return ControllerResult((), response)
        offset = self._next_offset
        self._next_offset += 1
        return ControllerResult(records, response, offset)

    def _leave(self, brokers: frozenset[int], why: str) -> None:
        """Move leadership off `brokers` and take them out of every ISR."""
        changes = remove_from_isrs(
            self._image, brokers, self.config.unclean_leader_election_enable, why
        )
        self._apply(changes.records)
        self._unclean.extend(changes.unclean)

    def _fence(self, brokers: Iterable[int], why: str) -> None:
        """Fence brokers one at a time, in id order, as Kafka does: when a whole ISR goes,
        the ISR keeps only the member fenced last, the one that may lead again cleanly."""
        for broker_id in sorted(brokers):
            self._leave(frozenset([broker_id]), why)
            reg = self._image.brokers[broker_id]
            if not reg.fenced:
                log.info("broker %d (epoch %d) fenced: %s", broker_id, reg.epoch, why)
                self._apply([BrokerRegistrationChangeRecord(broker_id, reg.epoch, fenced=True)])

    def _elect_offline(self) -> int:
        changes = elect_offline(
            self._image,
            self.config.unclean_leader_election_enable,
            self.config.elections_per_call_max,
        )
        self._apply(changes.records)
        self._unclean.extend(changes.unclean)
        return len(changes.records)

    def _partition(self, topic: str, index: int) -> tuple[TopicImage, PartitionState] | None:
        image = self._image.topic(topic)
        if image is None or index not in image.partitions:
            return None
        return image, image.partitions[index]

    def _leads(self, broker_id: int) -> bool:
        return any(state.leader == broker_id for _, _, state in partitions(self._image))

    # -- brokers --------------------------------------------------------------------

    def register_broker(
        self,
        broker_id: int,
        incarnation_id: str,
        listeners: tuple[Endpoint, ...],
        rack: str | None,
        now_ms: int,
    ) -> ControllerResult[RegisterBrokerResponse]:
        """BrokerRegistration: a new incarnation gets a new epoch and starts fenced."""
        if broker_id < 0 or not listeners:
            return self._finish(
                RegisterBrokerResponse(
                    ErrorCode.INVALID_REQUEST, message="need a broker id >= 0 and a listener"
                )
            )
        self._sessions.touch(broker_id, now_ms, -1)
        existing = self._image.brokers.get(broker_id)
        if existing is not None and existing.incarnation_id == incarnation_id:
            if (existing.listeners, existing.rack) != (listeners, rack):
                log.info("broker %d amends its registration (epoch %d)", broker_id, existing.epoch)
                self._apply(
                    [
                        RegisterBrokerRecord(
                            broker_id,
                            incarnation_id,
                            existing.epoch,
                            listeners,
                            rack,
                            existing.fenced,
                            existing.in_controlled_shutdown,
                        )
                    ]
                )
            return self._finish(RegisterBrokerResponse(ErrorCode.NONE, existing.epoch))
        epoch = self._next_offset
        if existing is not None:
            self._leave(
                frozenset([broker_id]), f"broker {broker_id} restarted as a new incarnation"
            )
        log.info(
            "broker %d registers incarnation %s with epoch %d (was %s)",
            broker_id,
            incarnation_id,
            epoch,
            existing.epoch if existing else "unregistered",
        )
        self._apply([RegisterBrokerRecord(broker_id, incarnation_id, epoch, listeners, rack)])
        return self._finish(RegisterBrokerResponse(ErrorCode.NONE, epoch))

    def unregister_broker(self, broker_id: int) -> ControllerResult[ErrorCode]:
        reg = self._image.brokers.get(broker_id)
        if reg is None:
            return self._finish(ErrorCode.BROKER_ID_NOT_REGISTERED)
        self._leave(frozenset([broker_id]), f"broker {broker_id} unregistered")
        self._apply([UnregisterBrokerRecord(broker_id, reg.epoch)])
        self._sessions.forget(broker_id)
        log.info("broker %d (epoch %d) unregistered", broker_id, reg.epoch)
        return self._finish(ErrorCode.NONE)

    def heartbeat(
        self,
        broker_id: int,
        broker_epoch: int,
        current_metadata_offset: int,
        want_fence: bool,
        want_shutdown: bool,
        now_ms: int,
    ) -> ControllerResult[HeartbeatResponse]:
        reg = self._image.brokers.get(broker_id)
        if reg is None:
            return self._finish(HeartbeatResponse(ErrorCode.BROKER_ID_NOT_REGISTERED))
        if reg.epoch != broker_epoch:
            return self._finish(HeartbeatResponse(ErrorCode.STALE_BROKER_EPOCH))
        session = self._sessions.touch(broker_id, now_ms, current_metadata_offset)
        caught_up = current_metadata_offset >= reg.registered_at_offset
        lowest = self._sessions.lowest_active_offset(self._image)
        shutdown_offset = session.controlled_shutdown_offset
        facts = HeartbeatFacts(
            want_fence,
            want_shutdown,
            caught_up,
            leads=self._leads(broker_id),
            others_caught_up=shutdown_offset is None or lowest is None or lowest >= shutdown_offset,
        )
        state = current_state(reg)
        new_state = next_state(state, facts)
        if new_state != state:
            self._transition(broker_id, state, new_state)
        reg = self._image.brokers[broker_id]
        return self._finish(
            HeartbeatResponse(
                ErrorCode.NONE,
                is_caught_up=caught_up,
                is_fenced=reg.fenced,
                in_controlled_shutdown=reg.in_controlled_shutdown,
                should_shut_down=new_state is BrokerState.SHUTDOWN_NOW,
            )
        )

    def _transition(self, broker_id: int, state: BrokerState, new_state: BrokerState) -> None:
        epoch = self._image.brokers[broker_id].epoch
        log.info("broker %d (epoch %d): %s -> %s", broker_id, epoch, state.value, new_state.value)
        match new_state:
            case BrokerState.FENCED | BrokerState.SHUTDOWN_NOW:
                self._fence([broker_id], new_state.value)
            case BrokerState.UNFENCED:
                self._apply([BrokerRegistrationChangeRecord(broker_id, epoch, fenced=False)])
                self._elect_offline()
            case BrokerState.CONTROLLED_SHUTDOWN:
                change = BrokerRegistrationChangeRecord(
                    broker_id, epoch, in_controlled_shutdown=True
                )
                self._apply([change])
                self._leave(frozenset([broker_id]), "controlled shutdown")
                session = self._sessions.get(broker_id)
                assert session is not None
                session.controlled_shutdown_offset = self._next_offset

    # -- time -----------------------------------------------------------------------

    def tick(self, now_ms: int) -> ControllerResult[TickReport]:
        """Fence brokers whose session expired, elect offline partitions, rebalance leaders."""
        stale = self._sessions.expired(self._image, now_ms)
        if stale:
            self._fence(stale, f"no heartbeat for {self.config.broker_session_timeout_ms} ms")
        elected = self._elect_offline()
        rebalanced = 0
        if self.config.auto_leader_rebalance_enable and now_ms >= self._next_rebalance_ms:
            self._next_rebalance_ms = now_ms + self.config.leader_imbalance_check_interval_ms
            rebalanced = self._rebalance()
        report = TickReport(tuple(stale), elected, tuple(self._unclean), rebalanced)
        return self._finish(report)

    def _rebalance(self) -> int:
        """Preferred elections for brokers whose share of lost leaderships is over the limit."""
        preferred: Counter[int] = Counter()
        lost: Counter[int] = Counter()
        for _, _, state in partitions(self._image):
            preferred[state.replicas[0]] += 1
            if state.leader != state.replicas[0]:
                lost[state.replicas[0]] += 1
        limit = self.config.leader_imbalance_per_broker_percentage / 100
        over = {b for b in preferred if lost[b] / preferred[b] > limit}
        elections = 0
        for topic, index, state in partitions(self._image):
            if elections >= self.config.elections_per_call_max:
                break
            if state.replicas[0] not in over or state.leader == state.replicas[0]:
                continue
            if state.reassigning:
                continue
            if self._elect(topic, index, state, Target(election=Election.PREFERRED), "rebalance"):
                elections += 1
        return elections

    def _elect(
        self, topic: TopicImage, index: int, state: PartitionState, target: Target, why: str
    ) -> bool:
        change = build_change(topic.topic_id, index, state, self._image.is_usable, target)
        if change.record is None or change.leader == state.leader:
            return False
        log_change(topic.name, index, state, change, why)
        self._apply([change.record])
        return True

    # -- partitions -----------------------------------------------------------------

    def alter_partition(
        self,
        broker_id: int,
        broker_epoch: int,
        topic: str,
        partition: int,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: tuple[int, ...],
    ) -> ControllerResult[AlterPartitionResponse]:
        """AlterPartition: the leader asks to shrink or expand the ISR."""
        found = self._partition(topic, partition)
        problem = self._check_alter_partition(
            broker_id, broker_epoch, found, leader_epoch, partition_epoch, new_isr
        )
        if problem is not None:
            log.info(
                "AlterPartition from %d for %s-%d refused: %s",
                broker_id,
                topic,
                partition,
                problem[1],
            )
            return self._finish(AlterPartitionResponse(*problem))
        assert found is not None
        image, state = found
        election = (
            Election.UNCLEAN
            if unclean_allowed(image, self.config.unclean_leader_election_enable)
            else Election.ONLINE
        )
        target = Target(isr=new_isr, election=election)
        change = build_change(image.topic_id, partition, state, self._image.is_usable, target)
        if change.record is not None:
            log_change(topic, partition, state, change, f"AlterPartition from {broker_id}")
            self._apply([change.record])
        now = image.partitions[partition]
        if now.leader != broker_id:
            # Completing a reassignment moved leadership away from the requester.
            return self._finish(AlterPartitionResponse(ErrorCode.NEW_LEADER_ELECTED))
        return self._finish(
            AlterPartitionResponse(
                ErrorCode.NONE,
                leader=now.leader,
                leader_epoch=now.leader_epoch,
                partition_epoch=now.partition_epoch,
                isr=now.isr,
            )
        )

    def _check_alter_partition(
        self,
        broker_id: int,
        broker_epoch: int,
        found: tuple[TopicImage, PartitionState] | None,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: tuple[int, ...],
    ) -> tuple[ErrorCode, str] | None:
        """Kafka's checks, in Kafka's order; (code, reason) or None."""
        reg = self._image.brokers.get(broker_id)
        if reg is None or reg.epoch != broker_epoch:
            return ErrorCode.STALE_BROKER_EPOCH, f"broker epoch {broker_epoch} is not current"
        if found is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "no such partition"
        state = found[1]
        if leader_epoch > state.leader_epoch or partition_epoch > state.partition_epoch:
            return ErrorCode.NOT_CONTROLLER, "the request is ahead of this controller"
        if leader_epoch < state.leader_epoch:
            return ErrorCode.FENCED_LEADER_EPOCH, f"leader epoch is {state.leader_epoch}"
        if broker_id != state.leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER, f"the leader is {state.leader}"
        if partition_epoch < state.partition_epoch:
            return ErrorCode.INVALID_UPDATE_VERSION, f"partition epoch is {state.partition_epoch}"
        if len(set(new_isr)) != len(new_isr) or not set(new_isr) <= set(state.replicas):
            return ErrorCode.INVALID_REQUEST, f"ISR {list(new_isr)} is not a set of replicas"
        if broker_id not in new_isr:
            return ErrorCode.INVALID_REQUEST, "the ISR must include the leader"
        ineligible = [b for b in new_isr if not self._image.is_usable(b)]
        if ineligible:
            return ErrorCode.INELIGIBLE_REPLICA, f"fenced or shutting down: {ineligible}"
        return None

    def elect_leaders(
        self,
        targets: list[tuple[str, int]] | None,
        election: ElectionType | ToBroker,
        now_ms: int,
    ) -> ControllerResult[list[ElectionResult]]:
        """ElectLeaders; `targets` None means every partition (only attempted ones reported)."""
        every = targets is None
        wanted = [(t.name, i) for t, i, _ in partitions(self._image)] if every else targets
        results = []
        elections = 0
        for topic, index in wanted:
            if elections >= self.config.elections_per_call_max:
                results.append(
                    ElectionResult(
                        topic,
                        index,
                        ErrorCode.OPERATION_NOT_ATTEMPTED,
                        f"over {self.config.elections_per_call_max} elections in one call",
                    )
                )
                continue
            result = self._elect_one(topic, index, election)
            elections += result.error is ErrorCode.NONE
            if not (every and result.error is ErrorCode.ELECTION_NOT_NEEDED):
                results.append(result)
        return self._finish(results)

    def _elect_one(
        self, topic: str, index: int, election: ElectionType | ToBroker
    ) -> ElectionResult:
        found = self._partition(topic, index)
        if found is None:
            return ElectionResult(
                topic, index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "no such partition"
            )
        image, state = found
        refusal = _election_refusal(self._image, state, election)
        if refusal is not None:
            return ElectionResult(topic, index, refusal[0], refusal[1], state.leader)
        target = _election_target(election)
        change = build_change(image.topic_id, index, state, self._image.is_usable, target)
        if change.record is None or change.leader == state.leader:
            code = (
                ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
                if election is ElectionType.PREFERRED
                else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
            )
            return ElectionResult(topic, index, code, "no eligible leader is live", state.leader)
        log_change(topic, index, state, change, f"{_election_name(election)} election")
        self._apply([change.record])
        if change.unclean:
            self._unclean.append(
                UncleanElection(topic, index, change.leader, change.record.leader_epoch)
            )
        return ElectionResult(topic, index, leader=change.leader, data_may_be_lost=change.unclean)

    # -- reassignment ---------------------------------------------------------------

    def alter_partition_reassignments(
        self, topic: str, partition: int, target_replicas: tuple[int, ...] | None
    ) -> ControllerResult[ReassignmentResult]:
        """Start, redirect or (target None) cancel the reassignment of one partition."""
        found = self._partition(topic, partition)
        if found is None:
            return self._finish(
                ReassignmentResult(
                    topic, partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "no such partition"
                )
            )
        image, state = found
        unclean = unclean_allowed(image, self.config.unclean_leader_election_enable)
        if target_replicas is None:
            if not state.reassigning:
                return self._finish(
                    ReassignmentResult(
                        topic, partition, ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, "nothing to cancel"
                    )
                )
            target, needs_unclean = reassignment.revert(state, unclean)
            if needs_unclean and not unclean:
                return self._finish(
                    ReassignmentResult(
                        topic,
                        partition,
                        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        "cancelling would need an unclean leader election",
                    )
                )
            why = "reassignment cancelled"
        else:
            problem = reassignment.check_target(target_replicas, set(self._image.brokers))
            if problem is not None:
                return self._finish(
                    ReassignmentResult(
                        topic, partition, ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem
                    )
                )
            target = reassignment.start(state, target_replicas)
            why = f"reassignment to {list(target_replicas)}"
        if target is not None:
            change = build_change(image.topic_id, partition, state, self._image.is_usable, target)
            if change.record is not None:
                log_change(topic, partition, state, change, why)
                self._apply([change.record])
        return self._finish(ReassignmentResult(topic, partition))

    def list_partition_reassignments(self) -> list[Reassignment]:
        return reassignment.in_progress(self._image)

    # -- topics ---------------------------------------------------------------------

    def allocate_producer_ids(self, block_size: int) -> ControllerResult[int]:
        """Reserve the next block of producer ids durably; the response is its first id."""
        assert block_size > 0
        start = self._image.next_producer_id
        self._apply([ProducerIdsRecord(start + block_size)])
        return self._finish(start)

    def create_topics(self, topics: list[NewTopic]) -> ControllerResult[list[TopicResult]]:
        """CreateTopics: replicas go only on registered, unfenced, running brokers."""
        defaults = TopicDefaults(self.config.num_partitions, self.config.default_replication_factor)
        results = []
        for topic in topics:
            records, result = create_topic(
                self._image, topic, self._image.usable_brokers(), defaults, self._rng
            )
            self._apply(records)
            if records:
                log.info("topic %s created: %d partitions", topic.name, result.num_partitions)
            results.append(result)
        return self._finish(results)

    def delete_topics(self, names: list[str]) -> ControllerResult[list[TopicResult]]:
        results = []
        for name in names:
            records, result = delete_topic(self._image, name)
            self._apply(records)
            if records:
                log.info("topic %s deleted", name)
            results.append(result)
        return self._finish(results)

    def create_partitions(
        self, name: str, count: int, assignments: list[tuple[int, ...]] | None = None
    ) -> ControllerResult[TopicResult]:
        records, result = create_partitions(
            self._image, name, count, assignments, self._image.usable_brokers()
        )
        self._apply(records)
        if records:
            log.info("topic %s grown to %d partitions", name, count)
        return self._finish(result)


def _election_name(election: ElectionType | ToBroker) -> str:
    if isinstance(election, ToBroker):
        return f"to-broker-{election.broker_id}"
    return election.name.lower()


def _election_target(election: ElectionType | ToBroker) -> Target:
    if isinstance(election, ToBroker):
        return Target(election=Election.PREFERRED, preferred=election.broker_id)
    if election is ElectionType.UNCLEAN:
        return Target(election=Election.UNCLEAN)
    return Target(election=Election.PREFERRED)


def _election_refusal(
    image: MetadataImage, state: PartitionState, election: ElectionType | ToBroker
) -> tuple[ErrorCode, str] | None:
    """Why an election is not needed or not possible, before trying it."""
    if isinstance(election, ToBroker):
        broker = election.broker_id
        if broker == state.leader:
            return ErrorCode.ELECTION_NOT_NEEDED, f"broker {broker} already leads"
        if broker not in state.replicas:
            return ErrorCode.INVALID_REQUEST, f"broker {broker} is not a replica"
        if broker not in state.isr:
            return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, f"broker {broker} is not in the ISR"
        if not image.is_usable(broker):
            return (
                ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                f"broker {broker} is fenced or shutting down",
            )
        return None
    if election is ElectionType.PREFERRED and state.leader == state.replicas[0]:
        return ErrorCode.ELECTION_NOT_NEEDED, "the preferred replica already leads"
    if election is ElectionType.UNCLEAN and state.leader != NO_LEADER:
        return ErrorCode.ELECTION_NOT_NEEDED, "the partition has a leader"
    return None
