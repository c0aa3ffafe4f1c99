"""Scripted rebalance scenarios against the sans-IO coordinator on a virtual clock."""

from __future__ import annotations

import pytest

from broker.coordinator import TRANSITIONS, ClassicGroup, GroupConfig, GroupState
from protocol.errors import ErrorCode
from tests.coordinator.harness import REBALANCE_MS, SESSION_MS, Harness, stable_group

S = GroupState
E = ErrorCode


def test_transition_table_is_kafkas() -> None:
    assert {
        S.EMPTY: {S.PREPARING_REBALANCE, S.DEAD},
        S.PREPARING_REBALANCE: {S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD},
        S.COMPLETING_REBALANCE: {S.STABLE, S.PREPARING_REBALANCE, S.DEAD},
        S.STABLE: {S.PREPARING_REBALANCE, S.DEAD},
        S.DEAD: {S.DEAD},
    } == TRANSITIONS
    group = ClassicGroup("g")
    with pytest.raises(AssertionError, match="illegal transition Empty -> Stable"):
        group.transition(S.STABLE, 0)


def test_single_member_two_step_join_sync_heartbeat() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=0))
    first = h.join("g", client_id="app")
    assert h.error(first) == E.MEMBER_ID_REQUIRED
    member_id = h.replies[first]["member_id"]
    assert member_id.startswith("app-")
    rejoin = h.join("g", member_id)
    joined = h.replies[rejoin]  # no initial delay: the only member completes the join
    assert joined["error_code"] == E.NONE
    assert (joined["generation_id"], joined["leader"], joined["protocol_name"]) == (
        1,
        member_id,
        "range",
    )
    assert joined["members"] == [
        {"member_id": member_id, "group_instance_id": None, "metadata": b"sub-range"}
    ]
    sync = h.sync("g", 1, member_id, {member_id: b"a1"})
    assert h.replies[sync] == {
        "error_code": E.NONE,
        "protocol_type": "consumer",
        "protocol_name": "range",
        "assignment": b"a1",
    }
    assert h.heartbeat("g", 1, member_id) == E.NONE
    described = h.describe("g")
    assert described["group_state"] == "Stable"
    assert described["protocol_data"] == "range"
    assert described["members"][0]["member_assignment"] == b"a1"
    assert described["members"][0]["client_host"] == "/127.0.0.1"


def test_join_before_v4_gets_a_member_id_at_once() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=0))
    reply = h.replies[h.join("g", version=3)]
    assert reply["error_code"] == E.NONE and reply["member_id"]


def test_second_member_triggers_rebalance_and_followers_wait_for_the_leader() -> None:
    h = Harness()
    (a,), gen = stable_group(h, "g", 1)
    b, b_join = h.join_new("g")
    assert h.state("g") == "PreparingRebalance"
    assert h.reply(b_join) is None
    assert h.heartbeat("g", gen, a) == E.REBALANCE_IN_PROGRESS
    a_join = h.join("g", a)
    leader, follower = h.replies[a_join], h.replies[b_join]
    assert leader["generation_id"] == follower["generation_id"] == gen + 1
    assert leader["leader"] == follower["leader"] == a
    assert {m["member_id"] for m in leader["members"]} == {a, b}
    assert follower["members"] == []
    b_sync = h.sync("g", gen + 1, b)
    assert h.reply(b_sync) is None  # waits for the leader's assignment
    assert h.heartbeat("g", gen + 1, b) == E.NONE  # CompletingRebalance
    a_sync = h.sync("g", gen + 1, a, {a: b"for-a", b: b"for-b"})
    assert h.replies[a_sync]["assignment"] == b"for-a"
    assert h.replies[b_sync]["assignment"] == b"for-b"
    assert h.state("g") == "Stable"


def test_initial_rebalance_delay_waits_for_more_members() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=3000))
    _, a_join = h.join_new("g")
    h.advance(2000)
    _, b_join = h.join_new("g")
    h.advance(1000)  # the first delay ends, but a member arrived: wait another delay
    assert h.reply(a_join) is None and h.reply(b_join) is None
    h.advance(2999)
    assert h.reply(a_join) is None
    h.advance(1)
    assert h.replies[a_join]["generation_id"] == h.replies[b_join]["generation_id"] == 1


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2)
    _, c_join = h.join_new("g")
    a_join = h.join("g", a)
    for _ in range(REBALANCE_MS // 5000 - 1):  # b heartbeats but never rejoins (stuck in poll)
        h.advance(5000)
        assert h.heartbeat("g", gen, b) == E.REBALANCE_IN_PROGRESS
    h.advance(4999)
    assert h.reply(a_join) is None
    h.advance(1)
    assert {m["member_id"] for m in h.replies[a_join]["members"]} == {
        a,
        h.replies[c_join]["member_id"],
    }
    assert h.heartbeat("g", gen, b) == E.UNKNOWN_MEMBER_ID


def test_session_expiry_removes_a_silent_member() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2)
    for _ in range(3):
        h.advance(SESSION_MS // 2)
        assert h.heartbeat("g", gen, a) in (E.NONE, E.REBALANCE_IN_PROGRESS)
    assert h.heartbeat("g", gen, a) == E.REBALANCE_IN_PROGRESS
    assert h.heartbeat("g", gen, b) == E.UNKNOWN_MEMBER_ID
    reply = h.replies[h.join("g", a)]
    assert reply["generation_id"] == gen + 1
    assert [m["member_id"] for m in reply["members"]] == [a]


def test_generation_and_member_checks() -> None:
    h = Harness()
    (a, _), gen = stable_group(h, "g", 2)
    assert h.heartbeat("g", gen - 1, a) == E.ILLEGAL_GENERATION
    assert h.heartbeat("g", gen, "stranger") == E.UNKNOWN_MEMBER_ID
    assert h.heartbeat("nope", gen, a) == E.UNKNOWN_MEMBER_ID
    assert h.heartbeat("", gen, a) == E.INVALID_GROUP_ID
    assert h.error(h.sync("g", gen + 1, a)) == E.ILLEGAL_GENERATION
    assert h.error(h.sync("g", gen, "stranger")) == E.UNKNOWN_MEMBER_ID
    assert h.error(h.join("g", "stranger")) == E.UNKNOWN_MEMBER_ID
    assert h.error(h.join("nope", "stranger")) == E.UNKNOWN_MEMBER_ID


def test_join_validation() -> None:
    h = Harness()
    assert h.error(h.join("g", session_ms=5999)) == E.INVALID_SESSION_TIMEOUT
    assert h.error(h.join("g", session_ms=1_800_001)) == E.INVALID_SESSION_TIMEOUT
    assert h.error(h.join("")) == E.INVALID_GROUP_ID
    assert h.error(h.join("g", protocols=[])) == E.INCONSISTENT_GROUP_PROTOCOL
    big = [{"name": "range", "metadata": b"x" * 70_000}]
    assert h.error(h.join("g", protocols=big)) == E.INVALID_REQUEST
    assert h.core.groups == {}  # refused joins leave nothing behind
    stable_group(h, "g", 1)
    assert h.error(h.join("g", protocol_type="connect")) == E.INCONSISTENT_GROUP_PROTOCOL
    other = [{"name": "sticky", "metadata": b""}]
    assert h.error(h.join("g", protocols=other)) == E.INCONSISTENT_GROUP_PROTOCOL


def test_protocol_selection_by_votes() -> None:
    h = Harness()
    both = [{"name": "range", "metadata": b"r"}, {"name": "roundrobin", "metadata": b"rr"}]
    rr_first = list(reversed(both))
    _, a = h.join_new("g", protocols=both)
    _, b = h.join_new("g", protocols=rr_first)
    _, c = h.join_new("g", protocols=rr_first)
    h.advance(1000)
    assert h.replies[a]["protocol_name"] == "roundrobin"
    assert {m["metadata"] for m in h.replies[a]["members"]} == {b"rr"}


def test_group_max_size() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=100, group_members_max=2))
    stable_group(h, "g", 2)
    reply = h.replies[h.join("g")]
    assert reply["error_code"] == E.GROUP_MAX_SIZE_REACHED


def test_static_member_restart_keeps_its_assignment_without_rebalance() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2, instances=["i-a", "i-b"])
    rejoin = h.join("g", instance="i-a")  # a restarted: no member id, same instance
    reply = h.replies[rejoin]
    new_a = reply["member_id"]
    assert new_a != a and new_a.startswith("i-a-")
    assert reply["generation_id"] == gen and reply["error_code"] == E.NONE
    assert reply["leader"] == a  # the old id: the restarted leader acts as a follower
    assert h.state("g") == "Stable"
    assert h.heartbeat("g", gen, a, "i-a") == E.FENCED_INSTANCE_ID
    assert h.heartbeat("g", gen, new_a, "i-a") == E.NONE
    assert (
        h.replies[h.sync("g", gen, new_a, instance="i-a")]["assignment"]
        == b"assignment-" + a.encode()
    )
    assert h.heartbeat("g", gen, b, "i-b") == E.NONE


def test_static_member_fences_its_old_incarnation_waiting_in_a_join() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2, instances=["i-a", "i-b"])
    old_join = h.join("g", b, instance="i-b", protocols=[{"name": "range", "metadata": b"new"}])
    assert h.state("g") == "PreparingRebalance" and h.reply(old_join) is None
    new_join = h.join("g", instance="i-b")
    assert h.error(old_join) == E.FENCED_INSTANCE_ID
    h.join("g", a, instance="i-a")
    assert h.replies[new_join]["generation_id"] == gen + 1


def test_leave_group_batch_by_member_and_by_instance() -> None:
    h = Harness()
    (a, b, c), gen = stable_group(h, "g", 3, instances=[None, "i-b", None])
    result = h.leave("g", [(a, None), ("", "i-b"), ("stranger", None), (c, "i-wrong")])
    assert [m["error_code"] for m in result["members"]] == [
        E.NONE,
        E.NONE,
        E.UNKNOWN_MEMBER_ID,
        E.UNKNOWN_MEMBER_ID,
    ]
    assert h.state("g") == "PreparingRebalance"
    reply = h.replies[h.join("g", c)]
    assert [m["member_id"] for m in reply["members"]] == [c]


def test_last_member_leaving_empties_the_group() -> None:
    h = Harness()
    (a,), gen = stable_group(h, "g", 1)
    h.commit("g", {("t", 0): 5}, generation=gen, member_id=a)
    assert h.leave("g", [(a, None)])["members"][0]["error_code"] == E.NONE
    described = h.describe("g")
    assert described["group_state"] == "Empty" and described["members"] == []
    assert h.fetch("g", {"t": [0]}) == {("t", 0): 5}


def test_member_that_never_syncs_is_removed() -> None:
    h = Harness()
    (a,), gen = stable_group(h, "g", 1)
    b, b_join = h.join_new("g")
    a_join = h.join("g", a)
    gen = h.replies[a_join]["generation_id"]
    h.sync("g", gen, a, {a: b"x", b: b"y"})
    assert h.state("g") == "Stable"
    for _ in range(REBALANCE_MS // 5000 - 1):  # b heartbeats but never sends SyncGroup
        h.advance(5000)
        assert h.heartbeat("g", gen, a) == h.heartbeat("g", gen, b) == E.NONE
    h.advance(5000)
    assert h.state("g") == "PreparingRebalance"
    assert h.heartbeat("g", gen, b) == E.UNKNOWN_MEMBER_ID


def test_assignment_is_answered_only_after_it_is_written() -> None:
    h = Harness()
    _, join = h.join_new("g")
    h.advance(200)
    a, gen = h.replies[join]["member_id"], h.replies[join]["generation_id"]
    h.hold_writes = True
    sync = h.sync("g", gen, a, {a: b"x"})
    assert h.reply(sync) is None and len(h.held) == 1
    h.complete_writes()
    assert h.replies[sync]["assignment"] == b"x"


def test_failed_assignment_write_restarts_the_rebalance() -> None:
    h = Harness()
    _, join = h.join_new("g")
    h.advance(200)
    a, gen = h.replies[join]["member_id"], h.replies[join]["generation_id"]
    h.write_error = E.NOT_LEADER_OR_FOLLOWER
    assert h.error(h.sync("g", gen, a, {a: b"x"})) == E.NOT_COORDINATOR
    assert h.state("g") == "PreparingRebalance"


def test_pending_member_that_never_rejoins_lapses() -> None:
    h = Harness()
    first = h.join("g")
    assert h.error(first) == E.MEMBER_ID_REQUIRED
    assert h.state("g") == "Empty"
    h.advance(SESSION_MS)
    assert h.core.groups == {}


def test_duplicate_join_answers_the_superseded_request() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2)
    first = h.join("g", a)
    second = h.join("g", a)
    assert h.error(first) == E.REBALANCE_IN_PROGRESS
    h.join("g", b)
    assert h.replies[second]["generation_id"] == gen + 1
