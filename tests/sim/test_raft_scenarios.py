"""Scripted interleavings of the controller quorum's Raft (etcd's interaction
tests, in spirit): each test reads as a script, one action per line, with the
expected cluster state asserted beneath it. No random faults: the network only
delays messages (1-10 ms) and everything else happens because a line says so.
"""

from __future__ import annotations

import random
from typing import TypeVar

from broker.effects import Persist, Send
from broker.raft import (
    AppendEntries,
    AppendOps,
    AppendResponse,
    Entry,
    HardState,
    InstallSnapshot,
    MemoryStorage,
    RaftNode,
    Role,
    VoteRequest,
    VoteResponse,
)
from tests.sim.faults import FaultOptions
from tests.sim.raft_cluster import RaftCluster

T = TypeVar("T")


def roles(cluster: RaftCluster) -> dict[int, str]:
    return {
        node_id: "down" if node is None else node.raft.role.value
        for node_id, node in cluster.nodes.items()
    }


def log_data(cluster: RaftCluster, node_id: int) -> list[bytes]:
    """The node's log records after its snapshot, no-ops left out."""
    node = cluster.nodes[node_id]
    assert node is not None
    log = node.raft.raft_log
    entries = log.entries(log.first_index(), log.last_index() + 1, 1 << 30)
    return [e.data for e in entries if e.data]


def spy_on(cluster: RaftCluster, kind: type[T]) -> list[tuple[int, int, T]]:
    """From now on, record every delivered message of `kind` as (src, dst, message)."""
    seen: list[tuple[int, int, T]] = []
    deliver = cluster.network._deliver

    def spy(src: int, dst: int, message: object) -> None:
        if isinstance(message, kind):
            seen.append((src, dst, message))
        deliver(src, dst, message)

    cluster.network._deliver = spy
    return seen


def elect(cluster: RaftCluster, node_id: int) -> None:
    cluster.campaign(node_id)
    cluster.run_for(100)
    leader = cluster.leader()
    assert leader is not None and leader.node_id == node_id, cluster.describe()


def commit(cluster: RaftCluster, node_id: int, *data: bytes) -> None:
    """Propose each record on node_id; every node it can reach applies them."""
    for item in data:
        assert cluster.propose(node_id, item) is not None, f"{node_id} refused {item!r}"
    cluster.run_for(100)
    last = cluster.proposed[data[-1]]
    for node in cluster.running():
        if cluster.network.connected(node_id, node.node_id):
            assert node.machine.applied_index >= last, cluster.describe()


def test_partitioned_leader_truncates_its_uncommitted_suffix() -> None:
    cluster = RaftCluster(seed=1)
    elect(cluster, 1)
    commit(cluster, 1, b"a", b"b")

    cluster.network.partition([1], [2, 3])
    assert cluster.propose(1, b"c") is not None  # accepted, can never commit
    cluster.run_for(3000)
    assert roles(cluster)[1] == "follower"  # check-quorum: no majority heard from
    new_leader = cluster.leader()
    assert new_leader is not None and new_leader.node_id in (2, 3), cluster.describe()
    commit(cluster, new_leader.node_id, b"d")
    assert log_data(cluster, 1) == [b"a", b"b", b"c"]

    cluster.network.heal()
    cluster.run_for(500)
    assert log_data(cluster, 1) == [b"a", b"b", b"d"]  # c is gone, d replicated
    assert cluster.converged(), cluster.describe()
    cluster.assert_converged_state()


def test_pre_vote_stops_a_rejoining_node_from_deposing_a_stable_leader() -> None:
    cluster = RaftCluster(seed=2)
    elect(cluster, 1)
    commit(cluster, 1, b"a")
    term = cluster.nodes[1].raft.term  # type: ignore[union-attr]

    cluster.network.partition([1, 2], [3])
    cluster.run_for(10_000)  # node 3 times out again and again
    isolated = cluster.nodes[3]
    assert isolated is not None and isolated.raft.role is Role.PRE_CANDIDATE
    assert isolated.raft.term == term  # pre-votes never raised its term

    cluster.network.heal()
    cluster.run_for(3000)
    assert cluster.leader() is cluster.nodes[1]
    assert cluster.nodes[1].raft.term == term  # type: ignore[union-attr]
    assert set(cluster.invariants.leader_of_term) == {term}
    assert cluster.converged(), cluster.describe()


def test_check_quorum_and_stickiness_ignore_a_vote_from_a_node_in_lease() -> None:
    cluster = RaftCluster(seed=3)
    elect(cluster, 1)
    cluster.run_for(300)  # followers heard from the leader moments ago
    term = cluster.nodes[1].raft.term  # type: ignore[union-attr]
    cluster.campaign(3)  # a pre-vote: the leader and node 2 are in lease and ignore it
    assert roles(cluster)[3] == "pre-candidate"
    cluster.run_for(500)  # node 3 hears the leader's next heartbeat and follows again
    assert roles(cluster) == {1: "leader", 2: "follower", 3: "follower"}
    assert set(cluster.invariants.leader_of_term) == {term}


def test_follower_behind_compaction_gets_the_snapshot() -> None:
    cluster = RaftCluster(seed=4, raft_options={"snapshot_threshold_entries": 8})
    elect(cluster, 1)
    cluster.crash(3)
    commit(cluster, 1, *(f"r{i}".encode() for i in range(30)))
    leader_log = cluster.nodes[1].raft.raft_log  # type: ignore[union-attr]
    assert leader_log.snapshot().index > 8  # the entries node 3 needs are gone

    installs = spy_on(cluster, InstallSnapshot)
    cluster.start(3)
    cluster.run_for(1000)
    assert installs and installs[0][:2] == (1, 3)
    restored = cluster.nodes[3]
    snapshot_index = installs[0][2].snapshot.index
    assert restored is not None and restored.raft.raft_log.snapshot().index >= snapshot_index
    assert cluster.converged(), cluster.describe()
    cluster.assert_converged_state()


def test_fsynced_entries_survive_every_machine_crashing_at_once() -> None:
    cluster = RaftCluster(seed=5)  # fsync on every Persist (the default)
    elect(cluster, 1)
    commit(cluster, 1, b"a", b"b")
    for node_id in (1, 2, 3):
        cluster.crash(node_id, machine=True)
    for node_id in (1, 2, 3):
        cluster.start(node_id)
    cluster.run_for(5000)
    assert cluster.converged(), cluster.describe()
    leader = cluster.leader()
    assert leader is not None
    assert log_data(cluster, leader.node_id)[:2] == [b"a", b"b"]
    cluster.assert_converged_state()


def test_unsynced_follower_machine_crash_loses_no_committed_entry_while_leader_lives() -> None:
    """Kafka's default flush policy: an acked entry lives on while not every
    replica that held it lost power together."""
    cluster = RaftCluster(seed=6, options=FaultOptions(fsync_each_persist=False))
    elect(cluster, 1)
    for disk in cluster.disks.values():
        disk.sync()  # the election is on disk; what follows is only in the page cache
    cluster.network.partition([1, 2], [3])
    commit_index = cluster.propose(1, b"a")
    cluster.run_for(100)
    assert cluster.nodes[1].raft.commit_index >= commit_index  # type: ignore[union-attr,operator]

    cluster.crash(2, machine=True)  # node 2 acked "a" from its page cache: gone now
    assert cluster.disks[2].current.last_index() < commit_index  # type: ignore[operator]
    cluster.start(2)
    cluster.network.heal()
    cluster.run_for(3000)
    assert cluster.converged(), cluster.describe()
    for node_id in (1, 2, 3):
        assert b"a" in log_data(cluster, node_id)
    cluster.assert_converged_state()


def test_restarted_voter_remembers_its_vote() -> None:
    cluster = RaftCluster(seed=7)
    elect(cluster, 1)
    term = cluster.nodes[2].raft.term  # type: ignore[union-attr]
    assert cluster.nodes[2].raft.voted_for == 1  # type: ignore[union-attr]
    cluster.crash(2)
    cluster.start(2)
    restarted = cluster.nodes[2]
    assert restarted is not None
    assert (restarted.raft.term, restarted.raft.voted_for) == (term, 1)


def test_single_voter_commits_alone() -> None:
    cluster = RaftCluster(seed=8, voters=1)
    cluster.run_for(2500)
    commit(cluster, 1, b"a")
    assert cluster.converged()


def test_follower_with_a_newer_divergent_tail_hints_past_it_then_truncates() -> None:
    """Raft paper figure 7 style: the follower holds term-3 entries the new
    leader (term 4) never had; its reject hint skips them all in one round."""
    storage = MemoryStorage()
    storage.apply(HardState(term=3, voted_for=None))
    storage.apply(AppendOps(tuple(Entry(i, t, b"x") for i, t in [(1, 1), (2, 1), (3, 3), (4, 3)])))
    follower = RaftNode(2, (1, 2, 3), storage, random.Random(0))
    leader_log = [Entry(i, t, b"y") for i, t in [(3, 2), (4, 2), (5, 2), (6, 4)]]

    effects = follower.step(AppendEntries(4, 1, 5, 2, (), 0), now_ms=0)
    assert Send(1, AppendResponse(4, 2, False, match_index=5, hint_index=2)) in effects

    effects = follower.step(AppendEntries(4, 1, 2, 1, tuple(leader_log), 0), now_ms=10)
    assert Persist(AppendOps(tuple(leader_log))) in effects  # 3..4 of term 3 replaced
    assert Send(1, AppendResponse(4, 2, True, match_index=6, hint_index=0)) in effects
    assert [follower.raft_log.term_at(i) for i in range(1, 7)] == [1, 1, 2, 2, 2, 4]


def test_empty_learner_catches_up_through_the_snapshot() -> None:
    cluster = RaftCluster(seed=9, learners=1, raft_options={"snapshot_threshold_entries": 8})
    cluster.crash(4)  # before it heard anything: a brand-new broker, nothing on disk
    assert cluster.disks[4].current.last_index() == cluster.disks[4].current.hard_state().term == 0
    elect(cluster, 1)
    commit(cluster, 1, *(f"r{i}".encode() for i in range(30)))
    leader_log = cluster.nodes[1].raft.raft_log  # type: ignore[union-attr]
    assert leader_log.snapshot().index > 8  # the entries the learner needs are gone

    installs = spy_on(cluster, InstallSnapshot)
    cluster.start(4)
    cluster.run_for(1000)
    assert [(src, dst) for src, dst, _ in installs] == [(1, 4)]
    learner = cluster.nodes[4]
    assert learner is not None and learner.raft.role is Role.LEARNER
    assert learner.raft.raft_log.snapshot().index == installs[0][2].snapshot.index
    assert learner.machine.applied_index == leader_log.last_index()
    assert cluster.converged(), cluster.describe()
    status = cluster.nodes[1].raft.status()  # type: ignore[union-attr]
    assert [(f.node_id, f.learner, f.lag) for f in status.followers] == [
        (2, False, 0),
        (3, False, 0),
        (4, True, 0),
    ]
    cluster.assert_converged_state()


def test_partitioned_learners_neither_block_nor_make_commits() -> None:
    cluster = RaftCluster(seed=10, learners=2)
    elect(cluster, 1)
    commit(cluster, 1, b"a")
    term = cluster.nodes[1].raft.term  # type: ignore[union-attr]

    cluster.network.partition([1, 2, 3], [4, 5])
    commit(cluster, 1, *(f"r{i}".encode() for i in range(20)))  # inflight_max is 4
    cluster.run_for(5000)  # several check-quorum rounds without a learner's answer
    assert cluster.leader() is cluster.nodes[1]
    assert cluster.nodes[1].raft.term == term  # type: ignore[union-attr]
    assert log_data(cluster, 4) == log_data(cluster, 5) == [b"a"]

    # The learners' acks alone are a "majority" of 5 nodes, but not of 3 voters.
    cluster.network.partition([1, 4, 5], [2, 3])
    index = cluster.propose(1, b"lonely")
    cluster.run_for(3000)
    assert index is not None and cluster.invariants.committed.get(index) != (term, b"lonely")
    assert b"lonely" in log_data(cluster, 4)  # replicated to the learner, never committed
    assert roles(cluster)[1] == "follower"  # check-quorum counted only voters
    for node_id in (1, 4, 5):
        assert cluster.nodes[node_id].machine.applied_index < index  # type: ignore[union-attr]

    cluster.network.heal()
    cluster.run_for(3000)
    assert cluster.converged(), cluster.describe()
    assert b"lonely" not in log_data(cluster, 4)  # truncated under the new leader
    cluster.assert_converged_state()


def test_learner_never_leads_even_with_every_voter_down() -> None:
    cluster = RaftCluster(seed=11, learners=1)
    elect(cluster, 1)
    commit(cluster, 1, b"a")
    term = cluster.nodes[1].raft.term  # type: ignore[union-attr]
    for node_id in (1, 2, 3):
        cluster.crash(node_id)
    sent = spy_on(cluster, object)
    cluster.campaign(4)  # a learner does not campaign, even when told to
    cluster.run_for(60_000)
    assert sent == []  # not a pre-vote, not a vote request: nothing at all
    learner = cluster.nodes[4]
    assert learner is not None and learner.raft.status().role == "learner"
    # same term, no vote cast, and it stopped naming the silent leader
    assert (learner.raft.term, learner.raft.voted_for, learner.raft.leader_id) == (term, None, None)
    assert learner.machine.applied_index == cluster.proposed[b"a"]

    for node_id in (1, 2, 3):
        cluster.start(node_id)
    cluster.run_for(5000)
    assert cluster.converged(), cluster.describe()
    elections = [(src, dst) for src, dst, m in sent if isinstance(m, VoteRequest | VoteResponse)]
    assert elections and all(4 not in pair for pair in elections)  # nobody asks the learner
    cluster.assert_converged_state()
