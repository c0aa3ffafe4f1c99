"""Scripted interleavings of the whole cluster (metadata quorum, controller,
partition replication): each test reads as a script, one action per line, with
the expected state asserted beneath it. No random faults: the network only
delays messages (1-10 ms); everything else happens because a line says so.
Invariants run after every step, as in the randomized runs.

The xfail(strict) tests at the end are bugs the simulator found in the cores
and the shell; each names the seed or script that shows it.
"""

from __future__ import annotations

import pytest

from broker.controller.records import NO_LEADER
from broker.replication.partition import Assignment, Partition
from broker.replication.producer_state import ProducerStateManager
from protocol.batch import parse_header
from protocol.errors import ErrorCode
from protocol.records import build_batch, iter_records
from tests.sim.cluster_invariants import AckedRecord, holds
from tests.sim.cluster_sim import TOPIC, ClusterSim, run_seed
from tests.sim.memlog import MemoryLog, PartitionDisk
from tests.sim.raft_invariants import InvariantViolation

KEY = (TOPIC, 0)


def cluster(nodes: int = 3, assignment: tuple[int, ...] = (1, 2, 3)) -> ClusterSim:
    """A quiet cluster (node 1 leads the metadata quorum) with one partition on `assignment`."""
    sim = ClusterSim(7, nodes=nodes, clients=0)
    sim.create_topic(assignments={0: assignment})
    sim.run_until(lambda: set(sim.state().isr) == set(assignment), 5000, "full ISR")
    return sim


def values(sim: ClusterSim, node_id: int) -> list[bytes]:
    """The record values in a replica's log, in offset order."""
    p = sim.node(node_id).partitions[KEY]
    return [r.value for r in iter_records(b"".join(p.log.batches))]


def converge(sim: ClusterSim, bound_ms: int = 20_000) -> None:
    sim.run_until(sim.converged, bound_ms, "convergence", 100)
    sim.assert_converged_state()


def test_kip101_divergence() -> None:
    sim = cluster(assignment=(2, 1, 3))  # node 1 leads the metadata quorum, 2 the partition
    leader, followers = 2, [1, 3]
    assert sim.produce(b"a").error == ErrorCode.NONE
    # the leader's fetch answers stop reaching its followers: b stays on the leader
    for f in followers:
        sim.network.cut(leader, f)
    assert sim.produce(b"b", acks=1).error == ErrorCode.NONE
    assert values(sim, leader) == [b"a", b"b"]
    assert all(values(sim, f) == [b"a"] for f in followers)
    sim.crash(leader)
    sim.network.heal()
    old_epoch = sim.state().leader_epoch
    sim.run_until(lambda: sim.state().leader in followers, 10_000, "a new leader")
    new_leader = sim.state().leader
    assert sim.state().leader_epoch == old_epoch + 1
    assert sim.produce(b"c").error == ErrorCode.NONE
    assert values(sim, new_leader) == [b"a", b"c"]
    sim.start(leader)  # the old leader returns as a follower: truncate b, fetch c
    converge(sim)
    assert values(sim, leader) == [b"a", b"c"]
    old, new = sim.node(leader).partitions[KEY], sim.node(new_leader).partitions[KEY]
    assert old.log.batches == new.log.batches  # byte-identical
    assert old.log.epoch_cache.entries == new.log.epoch_cache.entries


def test_controller_and_partition_leader_fail_together() -> None:
    sim = cluster()
    controller = sim.controller_node()
    assert controller is not None and controller.node_id == 1 == sim.state().leader
    term, epoch = controller.raft.term, sim.state().leader_epoch
    acked = [sim.produce(f"r{i}".encode()) for i in range(5)]
    assert all(r is not None and r.error == ErrorCode.NONE for r in acked)
    sim.crash(1, machine=True)  # controller and partition leader at once
    sim.run_until(lambda: sim.state().leader in (2, 3), 15_000, "a new partition leader")
    new_controller = sim.controller_node()
    assert new_controller is not None and new_controller.node_id != 1
    assert new_controller.raft.term > term
    assert sim.state().leader_epoch == epoch + 1 and 1 not in sim.state().isr
    new_leader = sim.state().leader
    assert values(sim, new_leader) == [f"r{i}".encode() for i in range(5)]
    assert sim.produce(b"after").error == ErrorCode.NONE
    sim.start(1)
    converge(sim)
    assert values(sim, 1) == [*(f"r{i}".encode() for i in range(5)), b"after"]


def test_unclean_off_keeps_partition_offline() -> None:
    sim = cluster(nodes=5, assignment=(3, 4, 5))
    assert sim.produce(b"kept").error == ErrorCode.NONE
    sim.crash(4)
    sim.crash(5)
    sim.run_until(lambda: sim.state().isr == (3,), 10_000, "ISR shrunk to the leader")
    sim.crash(3)  # the whole ISR is gone (and, for now, the metadata quorum)
    sim.start(4)  # 4 and 5 return: the quorum (1, 2, 4, 5) stands again
    sim.start(5)
    sim.run_for(8000)
    state = sim.state()
    assert (state.leader, state.isr) == (NO_LEADER, (3,))  # offline: 4 and 5 are not clean
    assert sim.produce(b"refused", to=4).error == ErrorCode.NOT_LEADER_OR_FOLLOWER
    sim.start(3)  # the last ISR member returns and leads again
    converge(sim)
    assert sim.state().leader == 3
    assert values(sim, 4) == values(sim, 5) == [b"kept"]


# -- bugs found by the simulator ---------------------------------------------------------


def _partition(node_id: int) -> Partition:
    log = MemoryLog(PartitionDisk(), fsync_each_append=True)
    return Partition(
        TOPIC,
        0,
        log,
        ProducerStateManager(),
        node_id=node_id,
        max_message_bytes=1 << 20,
        min_insync_replicas=2,
        lag_time_max_ms=1000,
    )


def test_unrelated_metadata_update_keeps_pending_isr_expansion() -> None:
    """Regression: become() used to clear a pending ISR expansion on any metadata
    update, so the HW passed a replica the controller then added to the ISR."""
    leader = _partition(1)
    leader.become(Assignment(1, 0, 1, (1, 2, 3), (1, 2)), 0)
    leader.on_follower_fetch(2, 0, 10)
    leader.on_follower_fetch(3, 0, 10)  # 3 caught up: it may join
    proposal = leader.isr_proposal(20)
    assert proposal is not None and proposal.new_isr == (1, 2, 3)
    # the image changes elsewhere (another partition, a broker heartbeat record...);
    # the shell re-applies this partition's unchanged state
    leader.become(Assignment(1, 0, 1, (1, 2, 3), (1, 2)), 30)
    leader.append_as_leader(build_batch([(None, b"x", (), 30)]), 30, acks=-1)
    leader.on_follower_fetch(2, 1, 40)  # 2 has it; 3 does not
    # the controller commits the expansion that was still in flight
    leader.become(Assignment(1, 0, 2, (1, 2, 3), (1, 2, 3)), 50)
    assert leader.high_watermark <= 0, "HW passed offset 0 which ISR member 3 lacks"


def test_seed_1912_with_shell_become_on_every_image() -> None:
    """Regression, end to end: with become() on every image change (as the shell
    does) seed 1912 once elected a replica added to the ISR without an acked record."""
    run_seed(1912, become_on_every_image=True)


@pytest.mark.xfail(
    strict=True,
    reason="checker can fail: a broker taking partition roles before its new "
    "incarnation is registered resumes its old leader epoch (the shell waits for its "
    "registration since this was found)",
    raises=InvariantViolation,
)
def test_restarted_broker_resumes_old_leader_epoch() -> None:
    run_seed(0, roles_before_registration=True)


@pytest.mark.xfail(
    strict=True,
    reason="checker can fail: applying a fetch response from the previous leader "
    "corrupts the follower (the shell drops answers for an older leader, epoch or "
    "position since this was found)",
    raises=InvariantViolation,
)
def test_late_fetch_response_from_previous_leader() -> None:
    run_seed(264, fetch_epoch_check=False)


@pytest.mark.xfail(
    strict=True,
    reason="known gap, documented in docs/architecture.md: with the OS flush policy, "
    "acked data survives power loss of one replica only with KIP-966 (not built); a "
    "power-lost replica elected as the last ISR member loses it",
    raises=InvariantViolation,
)
def test_default_flush_claim_needs_kip966() -> None:
    run_seed(91, kip966=True)


def test_acked_record_helpers() -> None:
    """AckedRecord identity: the batch CRC and base offset the leader reported."""
    p = _partition(1)
    p.become(Assignment(1, 0, 0, (1,), (1,)), 0)
    batch = build_batch([(None, b"v", (), 0)])
    result = p.append_as_leader(batch, 0)
    record = AckedRecord(
        KEY, result.base_offset, result.last_offset, parse_header(batch).crc, (1,), 1, 0, 0
    )
    assert holds(p.log, record)
