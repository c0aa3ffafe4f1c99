"""A simulated Raft cluster: RaftNodes (voters and learners), their disks, a
network and a clock, one seed.

The driver here is the one the trio shell will mirror: it executes each batch
of effects by writing every Persist to the node's disk *before* handing any
Send to the network (`send_before_persist=True` breaks that on purpose, to
prove the checkers notice). Invariants are checked after every step.

`run_seed(seed)` is the randomized run: a fault phase, then a healing phase
(network whole, every node up, no new faults) after which the cluster must
converge within a bound. Scenario tests drive the same class by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from broker.effects import Effect, Persist, Send, SetTimer
from broker.raft import (
    AppendOps,
    MemoryStorage,
    NotLeader,
    ProposalDropped,
    RaftNode,
    Role,
)
from tests.sim.clock import VirtualClock
from tests.sim.disk import SimDisk
from tests.sim.faults import NO_FAULTS, FaultOptions
from tests.sim.network import SimNetwork
from tests.sim.raft_invariants import InvariantViolation, RaftInvariants, StateMachine

log = logging.getLogger(__name__)

# Node settings for simulated runs: production defaults, but small snapshots so
# compaction and InstallSnapshot happen in short runs.
SIM_RAFT_OPTIONS: dict[str, Any] = {
    "election_timeout_ms": (1000, 2000),
    "heartbeat_interval_ms": 200,
    "max_entries_bytes": 256,
    "inflight_max": 4,
    "snapshot_threshold_entries": 16,
}


def tear_raft_write(operation: Any, rng: random.Random) -> Any | None:
    """A torn log append keeps a prefix of its entries; other writes are atomic
    (a hard state or a snapshot is written to a temporary file and renamed)."""
    if isinstance(operation, AppendOps) and len(operation.entries) > 1:
        return AppendOps(operation.entries[: rng.randrange(1, len(operation.entries))])
    return None


def new_raft_disk() -> SimDisk[MemoryStorage]:
    return SimDisk(MemoryStorage, MemoryStorage.copy_of, tear_raft_write)


@dataclass(slots=True)
class SimNode:
    node_id: int
    incarnation: int
    raft: RaftNode
    machine: StateMachine
    timer_at_ms: int | None = None
    unwritten: list[Any] = field(default_factory=list)  # send_before_persist only


class RaftCluster:
    """N voters and L learners under one seed. Voters are numbered 1..N,
    learners N+1..N+L; faults strike both alike."""

    def __init__(
        self,
        seed: int,
        *,
        voters: int = 3,
        learners: int = 0,
        options: FaultOptions = NO_FAULTS,
        send_before_persist: bool = False,
        raft_options: dict[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        root = random.Random(seed)
        self._fault_rng = random.Random(root.getrandbits(64))
        self._node_rng = random.Random(root.getrandbits(64))
        self.options = options
        self.send_before_persist = send_before_persist
        self.raft_options = {**SIM_RAFT_OPTIONS, **(raft_options or {})}
        self.voter_ids = tuple(range(1, voters + 1))
        self.learner_ids = tuple(range(voters + 1, voters + learners + 1))
        self.ids = self.voter_ids + self.learner_ids
        self.clock = VirtualClock()
        self.network = SimNetwork(
            self.clock, random.Random(root.getrandbits(64)), options, self._deliver
        )
        self.disks = {node_id: new_raft_disk() for node_id in self.ids}
        self.nodes: dict[int, SimNode | None] = dict.fromkeys(self.ids)
        self._incarnations = dict.fromkeys(self.ids, 0)
        self.invariants = RaftInvariants(
            durable_terms=options.fsync_each_persist, learners=self.learner_ids
        )
        self.proposed: dict[bytes, int] = {}  # data -> index the leader gave it
        self.crashes = 0
        self._trace = log.isEnabledFor(logging.DEBUG)
        for node_id in self.ids:
            self.start(node_id)

    # ------------------------------------------------------------- the driver

    def start(self, node_id: int) -> None:
        """(Re)start a node's process from what its disk holds."""
        assert self.nodes[node_id] is None, f"node {node_id} is running"
        self._incarnations[node_id] += 1
        raft = RaftNode(
            node_id,
            self.voter_ids,
            self.disks[node_id].current,
            random.Random(self._node_rng.getrandbits(64)),
            learners=self.learner_ids,
            **self.raft_options,
        )
        node = SimNode(node_id, self._incarnations[node_id], raft, StateMachine())
        self.nodes[node_id] = node
        self._execute(node, raft.tick(self.clock.now_ms))

    def _deliver(self, src: int, dst: int, message: Any) -> None:
        node = self.nodes[dst]
        if self._trace:
            log.debug("t=%d %d->%d %s", self.clock.now_ms, src, dst, message)
        if node is not None:
            self._write_unwritten(node)
            self._execute(node, node.raft.step(message, self.clock.now_ms))

    def _on_timer(self, node_id: int, incarnation: int, at_ms: int) -> None:
        node = self.nodes[node_id]
        if node is None or node.incarnation != incarnation or node.timer_at_ms != at_ms:
            return  # superseded
        node.timer_at_ms = None
        self._write_unwritten(node)
        self._execute(node, node.raft.tick(self.clock.now_ms))

    def _execute(self, node: SimNode, effects: list[Effect]) -> None:
        """Persist, then send, then apply what committed, then check invariants."""
        persists = [e.operation for e in effects if isinstance(e, Persist)]
        sends = [e for e in effects if isinstance(e, Send)]
        timers = [e.at_ms for e in effects if isinstance(e, SetTimer)]
        if self.send_before_persist:
            for send in sends:
                self.network.send(node.node_id, send.to, send.message)
            node.unwritten.extend(persists)  # written when the node next runs
        else:
            for operation in persists:
                if not self._write(node, operation):
                    return  # the machine died mid-write: nothing is sent
            for send in sends:
                self.network.send(node.node_id, send.to, send.message)
        self._apply_committed(node)
        self.invariants.after_step(node.node_id, node.incarnation, node.raft)
        if timers:
            self._set_timer(node, min(timers))

    def _write(self, node: SimNode, operation: Any) -> bool:
        """Write one Persist to disk; False if a machine crash struck during it."""
        disk = self.disks[node.node_id]
        if isinstance(operation, AppendOps):
            self.invariants.on_append(node.node_id, disk.current, operation)
        p = self.options.persist_crash_probability
        if p and self._fault_rng.random() < p:
            disk.write(operation, sync=False)
            self.crash(node.node_id, machine=True)
            return False
        disk.write(operation, sync=self.options.fsync_each_persist)
        return True

    def _write_unwritten(self, node: SimNode) -> None:
        for operation in node.unwritten:
            self._write(node, operation)
        node.unwritten = []

    def _apply_committed(self, node: SimNode) -> None:
        raft = node.raft
        snapshot = raft.restore()
        if snapshot is not None:
            node.machine = StateMachine.load(snapshot)
            self.invariants.on_restore(node.node_id, node.machine)
        for entry in raft.committed():
            node.machine.apply(entry)
            self.invariants.on_apply(node.node_id, entry, node.machine)
        if raft.wants_snapshot():
            for effect in raft.compact(node.machine.applied_index, node.machine.image()):
                assert isinstance(effect, Persist)
                self.disks[node.node_id].write(
                    effect.operation, sync=self.options.fsync_each_persist
                )

    def _set_timer(self, node: SimNode, at_ms: int) -> None:
        """Keep only the earliest timer: a tick that comes early is harmless
        (the node answers with its next deadline)."""
        at_ms = max(at_ms, self.clock.now_ms)
        if node.timer_at_ms is None or at_ms < node.timer_at_ms:
            node.timer_at_ms = at_ms
            self.clock.call_at(at_ms, self._on_timer, node.node_id, node.incarnation, at_ms)

    # ------------------------------------------------------- controls, faults

    def crash(self, node_id: int, *, machine: bool = False) -> None:
        """Kill a node's process; a machine crash also loses its unsynced writes."""
        node = self.nodes[node_id]
        assert node is not None, f"node {node_id} is already down"
        self.nodes[node_id] = None
        self.crashes += 1
        if machine:
            self.disks[node_id].machine_crash(self._fault_rng, self.options.torn_write_probability)
        log.debug("t=%d crash node %d (machine=%s)", self.clock.now_ms, node_id, machine)

    def campaign(self, node_id: int) -> None:
        """Make `node_id` start a (pre-vote) election now."""
        node = self.nodes[node_id]
        assert node is not None
        self._execute(node, node.raft.campaign(self.clock.now_ms))

    def propose(self, node_id: int, data: bytes) -> int | None:
        """Propose on `node_id`; the index it got, or None if it refused."""
        node = self.nodes[node_id]
        if node is None:
            return None
        self._write_unwritten(node)
        try:
            index, effects = node.raft.propose(data, self.clock.now_ms)
        except (NotLeader, ProposalDropped):
            return None
        self.proposed[data] = index
        self._execute(node, effects)
        return index

    def leader(self) -> SimNode | None:
        """The running leader with the highest term, if any."""
        leaders = [n for n in self.running() if n.raft.role is Role.LEADER]
        return max(leaders, key=lambda n: n.raft.term, default=None)

    def running(self) -> list[SimNode]:
        return [node for node in self.nodes.values() if node is not None]

    def run_for(self, duration_ms: int) -> None:
        self.clock.run_until(self.clock.now_ms + duration_ms)

    def heal(self) -> None:
        """End the fault phase: network whole and quiet, every node up."""
        self.options = self.options.healed()
        self.network.options = self.options
        self.network.heal()
        for node_id in self.ids:
            if self.nodes[node_id] is None:
                self.start(node_id)

    def converged(self) -> bool:
        """A leader everyone (learners too) follows, and every log and state
        machine equal up to the leader's last entry (which its own no-op makes
        committed)."""
        leader = self.leader()
        if leader is None or len(self.running()) != len(self.ids):
            return False
        last = leader.raft.raft_log.last_index()
        for node in self.running():
            raft = node.raft
            if (raft.term, raft.leader_id, raft.commit_index) != (
                leader.raft.term,
                leader.node_id,
                last,
            ) or node.machine.applied_index != last:
                return False
        return True

    def assert_converged_state(self) -> None:
        """After convergence: every entry ever committed is in every log and
        state machine (LogMatching makes equal last entries mean equal logs)."""
        leader = self.leader()
        assert leader is not None
        last = leader.raft.raft_log.last_index()
        digests = {node.machine.digest for node in self.running()}
        if len(digests) != 1:
            raise InvariantViolation("Convergence", f"state machines differ at {last}")
        for node in self.running():
            self.invariants.check_complete(node.node_id, node.raft.raft_log, "NoCommittedLost")
        acked = {data for _, data in self.invariants.committed.values()}
        lost = [d for d, i in self.proposed.items() if i > last and d in acked]
        if lost:
            raise InvariantViolation("NoCommittedLost", f"acked proposals beyond {last}: {lost}")

    # ------------------------------------------------------- randomized run

    def run_faults(self, duration_ms: int, propose_probability: float) -> None:
        """The fault phase: roll faults and proposals every check interval."""
        end_ms = self.clock.now_ms + duration_ms
        self.clock.call_later(0, self._fault_round, end_ms, propose_probability)
        self.clock.run_until(end_ms)

    def _fault_round(self, end_ms: int, propose_probability: float) -> None:
        if self.clock.now_ms >= end_ms:
            return
        o, rng = self.options, self._fault_rng
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
            log.debug("t=%d network heals", self.clock.now_ms)
            self.network.heal()
        if not o.fsync_each_persist:
            for node_id in self.ids:
                if rng.random() < o.os_flush_probability:
                    self.disks[node_id].sync()
        if rng.random() < propose_probability:
            self._random_proposal()
        self.clock.call_later(
            o.fault_check_interval_ms, self._fault_round, end_ms, propose_probability
        )

    def _crash_and_schedule_restart(self, node_id: int, *, machine: bool) -> None:
        self.crash(node_id, machine=machine)
        delay_ms = self._fault_rng.randint(*self.options.restart_delay_ms)
        self.clock.call_later(delay_ms, self._restart_if_down, node_id)

    def _restart_if_down(self, node_id: int) -> None:
        if self.nodes[node_id] is None:
            self.start(node_id)

    def _random_partition(self) -> None:
        rng = self._fault_rng
        if rng.random() < self.options.partition_one_way_probability:
            src, dst = rng.sample(self.ids, 2)
            self.network.cut(src, dst)
            log.debug("t=%d cut %d->%d", self.clock.now_ms, src, dst)
            return
        shuffled = list(self.ids)
        rng.shuffle(shuffled)
        split = rng.randint(1, len(shuffled) - 1)
        self.network.partition(shuffled[:split], shuffled[split:])
        log.debug("t=%d partition %s | %s", self.clock.now_ms, shuffled[:split], shuffled[split:])

    def _random_proposal(self) -> None:
        """A client picks a node, follows its leader hint, and proposes a burst
        (a stale leader cut off from its quorum takes them too: divergent tails)."""
        running = self.running()
        if not running:
            return
        node = self._fault_rng.choice(running)
        target = node.node_id
        if node.raft.role is not Role.LEADER and node.raft.leader_id is not None:
            target = node.raft.leader_id
        for _ in range(self._fault_rng.randint(1, 4)):
            self.propose(target, f"s{self.seed}-p{len(self.proposed)}".encode())

    def run_healing(self, bound_ms: int, check_interval_ms: int = 50) -> int:
        """Heal, then run until converged; the virtual ms it took. Fails past the bound."""
        self.heal()
        start_ms = self.clock.now_ms
        while not self.converged():
            if self.clock.now_ms - start_ms > bound_ms:
                raise InvariantViolation(
                    "Liveness", f"no convergence {bound_ms} ms after healing: {self.describe()}"
                )
            self.run_for(check_interval_ms)
        self.assert_converged_state()
        return self.clock.now_ms - start_ms

    def describe(self) -> str:
        parts = []
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node is None:
                parts.append(f"{node_id}: down")
                continue
            s = node.raft.status()
            parts.append(
                f"{node_id}: {s.role} term={s.term} leader={s.leader_id} "
                f"commit={s.commit_index} last={s.last_index} applied={node.machine.applied_index}"
            )
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    voters: int
    learners: int
    events: int
    crashes: int
    committed: int
    heal_ms: int


def run_seed(
    seed: int,
    *,
    fault_ms: int = 20_000,
    heal_bound_ms: int = 10_000,
    send_before_persist: bool = False,
) -> SeedResult:
    """One randomized run: faults drawn from the seed, then healing and convergence."""
    rng = random.Random(seed)
    voters = 5 if rng.random() < 0.2 else 3
    options = FaultOptions.random(rng)
    propose_probability = rng.uniform(0.1, 0.6)
    # drawn last, so that seeds without learners run as they did before learners existed
    learners = rng.choices((0, 1, 2), weights=(6, 3, 1))[0]
    if send_before_persist:
        # the bug only shows if a node dies between sending and writing
        options = dataclasses.replace(options, process_crash_probability=0.05)
    cluster = RaftCluster(
        seed,
        voters=voters,
        learners=learners,
        options=options,
        send_before_persist=send_before_persist,
    )
    cluster.run_faults(fault_ms, propose_probability=propose_probability)
    heal_ms = cluster.run_healing(heal_bound_ms)
    return SeedResult(
        seed,
        voters,
        learners,
        cluster.clock.events_run,
        cluster.crashes,
        len(cluster.invariants.committed),
        heal_ms,
    )
