"""One seed drives a whole combined-mode cluster: every node a Raft voter of the
metadata quorum, the controller while it leads, and a broker hosting partition
replicas; producers send acks=all and acks=1 batches to the leader they believe
in; faults from tests/sim/faults.py strike the network, processes and machines.

A run has three phases: setup (no faults: brokers register and are unfenced, a
topic is created through the controller), faults (message loss, delay,
reordering, duplication, partitions, process and machine crashes, restarts,
and producers at work), then healing (network whole, every node up, producers
stopped) after which the cluster must converge within a bound: every partition
has a leader, ISR = all replicas, every replica's log byte-identical to the
leader's with high watermark = log end, every acknowledged record present.
Invariants (cluster_invariants.py, raft_invariants.py) run after every step.

    run_seed(seed)                   the randomized run
    ClusterSim(seed, ...)            scripted scenarios drive it by hand
"""

from __future__ import annotations

import dataclasses
import logging
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from broker.controller.records import NO_LEADER
from broker.controller.topics import NewTopic
from broker.raft import MemoryStorage, Role
from broker.raft.messages import (
    AppendEntries,
    AppendResponse,
    InstallSnapshot,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from broker.replication.partition import Partition
from broker.server.controller_service import CreateTopics
from protocol.errors import ErrorCode
from protocol.records import build_batch
from tests.sim.clock import VirtualClock
from tests.sim.cluster_invariants import ClusterInvariants, holds
from tests.sim.cluster_node import (
    ControllerAnswer,
    ControllerCall,
    EpochRequest,
    EpochResponse,
    FetchRequest,
    FetchResponse,
    NodeSettings,
    ProduceRequest,
    ProduceResponse,
    SimNode,
)
from tests.sim.disk import SimDisk
from tests.sim.faults import NO_FAULTS, FaultOptions
from tests.sim.memlog import LogFile, PartitionDisk
from tests.sim.network import SimNetwork
from tests.sim.raft_cluster import SIM_RAFT_OPTIONS, new_raft_disk
from tests.sim.raft_invariants import InvariantViolation, RaftInvariants

log = logging.getLogger(__name__)

TOPIC = "events"
ADMIN_ID = 99
CLIENT_BASE_ID = 100
RAFT_MESSAGES = (
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    InstallSnapshot,
    SnapshotResponse,
)
RETRIABLE = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
    }
)


@dataclass(slots=True)
class InFlight:
    key: tuple[str, int]
    acks: int
    records: bytes
    attempts: int
    deadline_ms: int


@dataclass(slots=True)
class SimClient:
    """A producer: one batch in flight, sent to the leader some node's image names."""

    client_id: int
    acks_all_probability: float
    inflight: dict[int, InFlight] = field(default_factory=dict)
    sent: int = 0
    acked: int = 0
    next_call: int = 0


class ClusterSim:
    def __init__(
        self,
        seed: int,
        *,
        nodes: int = 3,
        partitions: int = 1,
        clients: int = 2,
        options: FaultOptions = NO_FAULTS,
        settings: NodeSettings | None = None,
        raft_options: dict[str, Any] | None = None,
        produce_interval_ms: tuple[int, int] = (10, 120),
        acks_all_probability: float = 0.8,
        kip966: bool = False,
    ) -> None:
        self.seed = seed
        root = random.Random(seed)
        self.fault_rng = random.Random(root.getrandbits(64))
        self.node_rng = random.Random(root.getrandbits(64))
        self.client_rng = random.Random(root.getrandbits(64))
        self.options = options
        self.settings = settings or NodeSettings()
        self.raft_options = {**SIM_RAFT_OPTIONS, **(raft_options or {})}
        self.ids = tuple(range(1, nodes + 1))
        self.partition_count = partitions
        self.produce_interval_ms = produce_interval_ms
        self.produce_timeout_ms = 3000
        self.clock = VirtualClock()
        self.network = SimNetwork(
            self.clock, random.Random(root.getrandbits(64)), options, self._deliver
        )
        self.raft_disks: dict[int, SimDisk[MemoryStorage]] = {i: new_raft_disk() for i in self.ids}
        self.disks: dict[int, dict[tuple[str, int], PartitionDisk]] = {i: {} for i in self.ids}
        self.nodes: dict[int, SimNode | None] = dict.fromkeys(self.ids)
        self._incarnations = dict.fromkeys(self.ids, 0)
        self.raft_invariants = RaftInvariants(durable_terms=True)
        self.invariants = ClusterInvariants(
            fsync_each_append=self.settings.fsync_each_append, kip966=kip966
        )
        self.clients = [SimClient(CLIENT_BASE_ID + i, acks_all_probability) for i in range(clients)]
        self.producing = False
        self.produce_responses: list[ProduceResponse] = []
        self.next_scripted_call = 0
        self.crashes = 0
        self.digest = 0
        self.trace: list[str] | None = [] if log.isEnabledFor(logging.DEBUG) else None
        for node_id in self.ids:
            self.start(node_id)
        # skip the first election timeout: setup is not what the runs are for
        self.campaign(self.ids[0])

    # ------------------------------------------------------------------ plumbing

    def note(self, text: str) -> None:
        if self.trace is not None:
            log.debug("t=%d %s", self.clock.now_ms, text)

    def send(self, src: int, dst: int, message: Any) -> None:
        if src == dst:  # a node's own controller: a local call, no network
            self.clock.call_later(0, self._deliver, src, dst, message)
        else:
            self.network.send(src, dst, message)

    def _deliver(self, src: int, dst: int, message: Any) -> None:
        self.digest = zlib.crc32(
            f"{self.clock.now_ms}:{src}:{dst}:{type(message).__name__}".encode(), self.digest
        )
        if self.trace is not None:
            self.note(f"{src}->{dst} {message}")
        if dst == ADMIN_ID:
            return
        if dst >= CLIENT_BASE_ID:
            self.produce_responses.append(message)
            if dst - CLIENT_BASE_ID < len(self.clients):
                self._client_response(self.clients[dst - CLIENT_BASE_ID], message)
            return
        node = self.nodes[dst]
        if node is None:
            return
        match message:
            case _ if isinstance(message, RAFT_MESSAGES):
                node._execute(node.raft.step(message, self.clock.now_ms))
            case ControllerCall():
                node.on_controller_call(src, message)
            case ControllerAnswer():
                node.on_controller_answer(src, message)
            case FetchRequest():
                node.on_fetch(src, message)
            case FetchResponse():
                node.on_fetch_response(src, message)
            case EpochRequest():
                node.on_epoch_request(src, message)
            case EpochResponse():
                node.on_epoch_response(src, message)
            case ProduceRequest():
                node.on_produce(src, message)
            case _:
                raise AssertionError(f"unexpected message {message!r}")
        self.after_step(node)

    def on_raft_timer(self, node_id: int, incarnation: int, at_ms: int) -> None:
        node = self.nodes[node_id]
        if node is None or node.incarnation != incarnation or node.timer_at_ms != at_ms:
            return
        node.on_raft_timer()
        self.after_step(node)

    def on_node_tick(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node is None or node.incarnation != incarnation:
            return
        node.on_tick()
        self.after_step(node)
        self.clock.call_later(self.settings.node_tick_ms, self.on_node_tick, node_id, incarnation)

    def after_step(self, node: SimNode) -> None:
        """The per-replica invariants on every partition this node hosts."""
        if self.nodes[node.node_id] is not node:
            return
        for key, p in node.partitions.items():
            leader = self.acting_leader(key) or p
            self.invariants.after_partition_step(node.node_id, node.incarnation, key, p, leader)

    def acting_leader(self, key: tuple[str, int]) -> Partition | None:
        """The replica acting as leader with the highest leader epoch, if any."""
        leaders = [
            p
            for node in self.running()
            if (p := node.partitions.get(key)) is not None and p.leader is not None
        ]
        return max(leaders, key=lambda p: p.leader_epoch, default=None)

    # ------------------------------------------------------------------ controls

    def start(self, node_id: int) -> None:
        assert self.nodes[node_id] is None, f"node {node_id} is running"
        self._incarnations[node_id] += 1
        node = SimNode(self, node_id, self._incarnations[node_id])
        self.nodes[node_id] = node
        self.note(f"start node {node_id} (life {node.incarnation})")
        node.start()

    def crash(self, node_id: int, *, machine: bool = False) -> None:
        """Kill a node's process; a machine crash also loses unsynced partition data."""
        assert self.nodes[node_id] is not None, f"node {node_id} is already down"
        self.nodes[node_id] = None
        self.crashes += 1
        self.note(f"crash node {node_id} (machine={machine})")
        if not machine:
            return
        torn = self.options.torn_write_probability
        self.raft_disks[node_id].machine_crash(self.fault_rng, torn)
        for key in sorted(self.disks[node_id]):
            disk = self.disks[node_id][key]
            before = LogFile.copy_of(disk.file.current)
            disk.file.machine_crash(self.fault_rng, torn)
            self.invariants.on_power_loss(node_id, key, before, disk.file.current)

    def campaign(self, node_id: int) -> None:
        node = self.nodes[node_id]
        assert node is not None
        node._execute(node.raft.campaign(self.clock.now_ms))

    def running(self) -> list[SimNode]:
        return [node for node in self.nodes.values() if node is not None]

    def run_for(self, duration_ms: int) -> None:
        self.clock.run_until(self.clock.now_ms + duration_ms)

    def run_until(self, condition, bound_ms: int, what: str, step_ms: int = 50) -> int:
        start_ms = self.clock.now_ms
        while not condition():
            if self.clock.now_ms - start_ms > bound_ms:
                raise InvariantViolation(
                    "Liveness", f"no {what} within {bound_ms} ms: {self.describe()}"
                )
            self.run_for(step_ms)
        return self.clock.now_ms - start_ms

    def keys(self) -> list[tuple[str, int]]:
        return [(TOPIC, i) for i in range(self.partition_count)]

    # ------------------------------------------------------------------ setup

    def create_topic(
        self, bound_ms: int = 15_000, assignments: dict[int, tuple[int, ...]] | None = None
    ) -> int:
        """Register, unfence, then CreateTopics through the controller until it exists
        and every partition has a leader."""
        configs: dict[str, str | None] = {"min.insync.replicas": "2"}
        if assignments:
            topic = NewTopic(TOPIC, -1, -1, assignments, configs)
        else:
            topic = NewTopic(TOPIC, self.partition_count, 3, {}, configs)

        def ready() -> bool:
            if self.clock.now_ms % 200 == 0:
                self._send_create(topic)
            return self.topic_led()

        return self.run_until(ready, bound_ms, "topic with leaders")

    def _send_create(self, topic: NewTopic) -> None:
        leaders = [n for n in self.running() if n.raft.role is Role.LEADER]
        if leaders and any(n.controller is not None for n in leaders):
            target = max(leaders, key=lambda n: n.raft.term).node_id
            self.send(ADMIN_ID, target, ControllerCall(0, CreateTopics((topic,))))

    def topic_led(self) -> bool:
        for node in self.running():
            topic = node.image.topic(TOPIC)
            if topic is None or any(s.leader == NO_LEADER for s in topic.partitions.values()):
                return False
            if len(node.partitions) < sum(
                node.node_id in s.replicas for s in topic.partitions.values()
            ):
                return False
        return True

    # ------------------------------------------------------------------ producers

    def start_producers(self) -> None:
        self.producing = True
        for client in self.clients:
            self.clock.call_later(
                self.client_rng.randint(*self.produce_interval_ms), self._client_tick, client
            )

    def _client_tick(self, client: SimClient) -> None:
        if not self.producing:
            return
        now = self.clock.now_ms
        for call_id, flight in list(client.inflight.items()):
            if now >= flight.deadline_ms:
                del client.inflight[call_id]
                self._retry(client, flight)
        if len(client.inflight) < 2:
            rng = self.client_rng
            key = rng.choice(self.keys())
            client.sent += 1
            value = f"s{self.seed}-c{client.client_id}-{client.sent}".encode()
            records = build_batch([(None, value, (), now)])
            acks = -1 if rng.random() < client.acks_all_probability else 1
            self._send_produce(client, InFlight(key, acks, records, 0, 0))
        self.clock.call_later(
            self.client_rng.randint(*self.produce_interval_ms), self._client_tick, client
        )

    def _send_produce(self, client: SimClient, flight: InFlight) -> None:
        running = self.running()
        if not running:
            return
        node = self.client_rng.choice(running)
        topic = node.image.topic(flight.key[0])
        state = topic.partitions.get(flight.key[1]) if topic else None
        if state is None or state.leader == NO_LEADER:
            return
        client.next_call += 1
        flight.attempts += 1
        flight.deadline_ms = self.clock.now_ms + self.produce_timeout_ms + 500
        client.inflight[client.next_call] = flight
        request = ProduceRequest(client.next_call, flight.key, flight.acks, flight.records)
        self.network.send(client.client_id, state.leader, request)

    def _retry(self, client: SimClient, flight: InFlight) -> None:
        if flight.attempts < 3 and self.producing:
            self._send_produce(client, flight)

    def _client_response(self, client: SimClient, m: Any) -> None:
        if not isinstance(m, ProduceResponse):
            return
        flight = client.inflight.pop(m.call_id, None)
        if flight is None:
            return
        if m.error == ErrorCode.NONE:
            client.acked += 1
        elif m.error in RETRIABLE or m.error in (
            ErrorCode.FENCED_LEADER_EPOCH,
            ErrorCode.UNKNOWN_LEADER_EPOCH,
        ):
            self._retry(client, flight)

    # ------------------------------------------------------------------ faults

    def run_faults(self, duration_ms: int) -> None:
        end_ms = self.clock.now_ms + duration_ms
        self.clock.call_later(0, self._fault_round, end_ms)
        self.clock.run_until(end_ms)

    def _fault_round(self, end_ms: int) -> None:
        if self.clock.now_ms >= end_ms:
            return
        o, rng = self.options, self.fault_rng
        for node_id in self.ids:
            if self.nodes[node_id] is None:
                continue
            if rng.random() < o.process_crash_probability:
                self._crash_and_schedule_restart(node_id, machine=False)
            elif rng.random() < o.machine_crash_probability:
                self._crash_and_schedule_restart(node_id, machine=True)
        if rng.random() < o.partition_start_probability:
            self._random_partition()
        elif not self.network.whole and rng.random() < o.partition_heal_probability:
            self.note("network heals")
            self.network.heal()
        if not self.settings.fsync_each_append:
            for node_id in self.ids:
                if rng.random() < o.os_flush_probability:
                    for key in sorted(self.disks[node_id]):
                        self.disks[node_id][key].file.sync()
        self.clock.call_later(o.fault_check_interval_ms, self._fault_round, end_ms)

    def _crash_and_schedule_restart(self, node_id: int, *, machine: bool) -> None:
        self.crash(node_id, machine=machine)
        delay_ms = self.fault_rng.randint(*self.options.restart_delay_ms)
        self.clock.call_later(delay_ms, self._restart_if_down, node_id)

    def _restart_if_down(self, node_id: int) -> None:
        if self.nodes[node_id] is None:
            self.start(node_id)

    def _random_partition(self) -> None:
        rng = self.fault_rng
        if rng.random() < self.options.partition_one_way_probability:
            src, dst = rng.sample(self.ids, 2)
            self.network.cut(src, dst)
            self.note(f"cut {src}->{dst}")
            return
        shuffled = list(self.ids)
        rng.shuffle(shuffled)
        split = rng.randint(1, len(shuffled) - 1)
        self.network.partition(shuffled[:split], shuffled[split:])
        self.note(f"partition {shuffled[:split]} | {shuffled[split:]}")

    def heal(self) -> None:
        """End the fault phase: network whole and quiet, every node up, producers stop."""
        self.producing = False
        self.options = self.options.healed()
        self.network.options = self.options
        self.network.heal()
        for node_id in self.ids:
            if self.nodes[node_id] is None:
                self.start(node_id)

    def run_healing(self, bound_ms: int) -> int:
        self.heal()
        took = self.run_until(self.converged, bound_ms, "convergence after healing", 100)
        self.assert_converged_state()
        return took

    # ------------------------------------------------------------------ convergence

    def converged(self) -> bool:
        if len(self.running()) != len(self.ids):
            return False
        images = {n.node_id: n.image for n in self.running()}
        first = images[self.ids[0]]
        if any(image != first for image in images.values()):
            return False
        topic = first.topic(TOPIC)
        if topic is None:
            return False
        for index, state in topic.partitions.items():
            if state.leader == NO_LEADER or set(state.isr) != set(state.replicas):
                return False
            if not self._partition_converged((TOPIC, index), state):
                return False
        return all(first.is_usable(b) for b in self.ids)

    def _partition_converged(self, key, state) -> bool:
        leader_node = self.nodes[state.leader]
        assert leader_node is not None
        lp = leader_node.partitions.get(key)
        if lp is None or lp.leader is None or lp.leader_epoch != state.leader_epoch:
            return False
        end = lp.log.log_end_offset
        if lp.high_watermark != end or set(lp.leader.isr) != set(state.replicas):
            return False
        digest = lp.log.prefix_digest(end)
        for replica in state.replicas:
            node = self.nodes[replica]
            assert node is not None
            p = node.partitions.get(key)
            if p is None or p.leader_epoch != state.leader_epoch:
                return False
            if p.log.log_end_offset != end or p.high_watermark != end:
                return False
            if p.log.prefix_digest(end) != digest:
                if p.follower is not None and not p.needs_truncation:
                    raise InvariantViolation(
                        "ReplicasAgreeBelowHW",
                        f"{key}: after healing node {replica} and leader {state.leader} hold "
                        f"different bytes below the common high watermark {end}",
                    )
                return False
        return True

    def assert_converged_state(self) -> None:
        """Every acknowledged record (not excused by power loss) is on every replica."""
        for key, records in sorted(self.invariants.acked.items()):
            for node in self.running():
                p = node.partitions.get(key)
                if p is None:
                    continue
                for record in records:
                    if not record.excused and not holds(p.log, record):
                        raise InvariantViolation(
                            "AckedNeverLost",
                            f"after convergence node {node.node_id} lacks acked {record}",
                        )

    # ------------------------------------------------------------------ scripted use

    def node(self, node_id: int) -> SimNode:
        node = self.nodes[node_id]
        assert node is not None, f"node {node_id} is down"
        return node

    def state(self, index: int = 0):
        """The partition as the most advanced running node's image has it."""
        node = max(self.running(), key=lambda n: n.raft.applied_index)
        topic = node.image.topic(TOPIC)
        assert topic is not None
        return topic.partitions[index]

    def controller_node(self) -> SimNode | None:
        active = [n for n in self.running() if n.controller is not None]
        return max(active, key=lambda n: n.raft.term, default=None)

    def produce(
        self,
        value: bytes,
        *,
        acks: int = -1,
        index: int = 0,
        to: int | None = None,
        wait_ms: int = 500,
    ) -> ProduceResponse | None:
        """One batch from a scripted client to `to` (default: the image's leader);
        the response, if one came within wait_ms."""
        key = (TOPIC, index)
        target = self.state(index).leader if to is None else to
        self.next_scripted_call += 1
        call_id = -self.next_scripted_call
        records = build_batch([(None, value, (), self.clock.now_ms)])
        self.network.send(CLIENT_BASE_ID, target, ProduceRequest(call_id, key, acks, records))
        deadline_ms = self.clock.now_ms + wait_ms
        while self.clock.now_ms < deadline_ms:
            self.run_for(10)
            for response in self.produce_responses:
                if response.call_id == call_id:
                    return response
        return None

    def describe(self) -> str:
        parts = []
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node is None:
                parts.append(f"{node_id}: down")
                continue
            r = node.raft
            line = (
                f"{node_id}: {r.role.value} term={r.term} applied={r.applied_index} "
                f"ctl={'yes' if node.controller else 'no'} epoch={node.broker_epoch} "
                f"fenced={node.fenced}"
            )
            for key, p in sorted(node.partitions.items()):
                role = "L" if p.leader else "F"
                isr = sorted(p.leader.isr) if p.leader else "-"
                line += (
                    f" [{key[1]}:{role} e{p.leader_epoch} leo={p.log.log_end_offset} "
                    f"hw={p.high_watermark} isr={isr}]"
                )
            parts.append(line)
        image = self.running()[0].image if self.running() else None
        topic = image.topic(TOPIC) if image else None
        if topic is not None:
            parts.append(
                "image: "
                + " ".join(
                    f"{i}:leader={s.leader} e{s.leader_epoch} isr={list(s.isr)}"
                    for i, s in sorted(topic.partitions.items())
                )
            )
        return "; ".join(parts)


# ---------------------------------------------------------------------- randomized runs


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    nodes: int
    partitions: int
    fsync_each_append: bool
    events: int
    crashes: int
    acked: int
    heal_ms: int
    digest: int


def seed_cluster(seed: int, *, kip966: bool = False, **variant: Any) -> tuple[ClusterSim, int]:
    """The cluster a seed describes, and its fault-phase length."""
    rng = random.Random(seed)
    nodes = rng.choices((3, 4, 5), weights=(14, 3, 3))[0]
    partitions = rng.randint(1, 3)
    options = FaultOptions.random(rng)
    fsync_each_append = rng.random() < 0.5
    options = dataclasses.replace(
        options,
        os_flush_probability=rng.uniform(0.0, 0.3),
        persist_crash_probability=0.0,
        fault_check_interval_ms=200,
        partition_start_probability=options.partition_start_probability * 2,
        process_crash_probability=options.process_crash_probability * 3,
        machine_crash_probability=options.machine_crash_probability * 3,
        restart_delay_ms=(50, rng.choice((500, 1500, 3000))),
    )
    settings = dataclasses.replace(NodeSettings(), fsync_each_append=fsync_each_append, **variant)
    fault_ms = rng.choice((4000, 8000, 12000))
    sim = ClusterSim(
        seed,
        nodes=nodes,
        partitions=partitions,
        options=options,
        settings=settings,
        acks_all_probability=rng.uniform(0.6, 1.0),
        kip966=kip966,
    )
    return sim, fault_ms


def run_seed(
    seed: int, *, heal_bound_ms: int = 30_000, kip966: bool = False, **variant: Any
) -> SeedResult:
    """One randomized run: setup, faults drawn from the seed, then healing and convergence.

    `variant` overrides NodeSettings (the shell-faithful and deliberately broken
    variants); `kip966` checks the architecture's stronger default-flush claim."""
    sim, fault_ms = seed_cluster(seed, kip966=kip966, **variant)
    sim.create_topic()
    sim.start_producers()
    sim.run_faults(fault_ms)
    heal_ms = sim.run_healing(heal_bound_ms)
    return SeedResult(
        seed,
        len(sim.ids),
        sim.partition_count,
        sim.settings.fsync_each_append,
        sim.clock.events_run,
        sim.crashes,
        sum(len(r) for r in sim.invariants.acked.values()),
        heal_ms,
        sim.digest,
    )
