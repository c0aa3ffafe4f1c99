"""Offset commits, ListGroups/DescribeGroups/DeleteGroups, and reloading the partition."""

from __future__ import annotations

import random

from broker.coordinator import GroupConfig, GroupCoordinator
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from tests.coordinator.harness import SESSION_MS, Harness, stable_group

E = ErrorCode


def test_simple_commit_for_a_group_without_members() -> None:
    h = Harness()
    commit = h.commit("standalone", {("t", 0): 10, ("t", 1): 20, ("u", 0): 5})
    assert set(h.commit_errors(commit).values()) == {E.NONE}
    assert h.fetch("standalone", {"t": [0, 1, 2]}) == {("t", 0): 10, ("t", 1): 20, ("t", 2): -1}
    assert h.fetch("standalone") == {("t", 0): 10, ("t", 1): 20, ("u", 0): 5}
    assert h.fetch("unknown-group", {"t": [0]}) == {("t", 0): -1}
    assert h.state("standalone") == "Empty"


def test_commit_rules_for_a_managed_group() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2)
    assert set(h.commit_errors(h.commit("g", {("t", 0): 1})).values()) == {E.UNKNOWN_MEMBER_ID}
    stale = h.commit("g", {("t", 0): 1}, generation=gen - 1, member_id=a)
    assert set(h.commit_errors(stale).values()) == {E.ILLEGAL_GENERATION}
    stranger = h.commit("g", {("t", 0): 1}, generation=gen, member_id="x")
    assert set(h.commit_errors(stranger).values()) == {E.UNKNOWN_MEMBER_ID}
    ok = h.commit("g", {("t", 0): 7}, generation=gen, member_id=a)
    assert set(h.commit_errors(ok).values()) == {E.NONE}
    h.join_new("g")  # a rebalance starts: commits of the current generation still count
    during = h.commit("g", {("t", 1): 8}, generation=gen, member_id=b)
    assert set(h.commit_errors(during).values()) == {E.NONE}
    assert h.fetch("g") == {("t", 0): 7, ("t", 1): 8}
    missing = h.commit("nope", {("t", 0): 1}, generation=3, member_id=a)
    assert set(h.commit_errors(missing).values()) == {E.ILLEGAL_GENERATION}


def test_commit_while_completing_rebalance_is_refused() -> None:
    h = Harness()
    _, join = h.join_new("g")
    h.advance(200)
    a, gen = h.replies[join]["member_id"], h.replies[join]["generation_id"]
    commit = h.commit("g", {("t", 0): 1}, generation=gen, member_id=a)
    assert set(h.commit_errors(commit).values()) == {E.REBALANCE_IN_PROGRESS}


def test_commit_is_answered_after_the_write_and_visible_only_then() -> None:
    h = Harness()
    h.hold_writes = True
    commit = h.commit("g", {("t", 0): 42})
    assert h.reply(commit) is None
    assert h.fetch("g", {"t": [0]}) == {("t", 0): -1}
    h.complete_writes()
    assert h.commit_errors(commit) == {("t", 0): E.NONE}
    assert h.fetch("g", {"t": [0]}) == {("t", 0): 42}


def test_failed_commit_write() -> None:
    h = Harness()
    h.write_error = E.NOT_LEADER_OR_FOLLOWER
    assert h.commit_errors(h.commit("g", {("t", 0): 1})) == {("t", 0): E.NOT_COORDINATOR}
    h.write_error = E.MESSAGE_TOO_LARGE
    assert h.commit_errors(h.commit("g", {("t", 0): 1})) == {("t", 0): E.INVALID_COMMIT_OFFSET_SIZE}
    h.write_error = E.NONE
    assert h.fetch("g", {"t": [0]}) == {("t", 0): -1}


def test_commit_metadata_limit() -> None:
    h = Harness(GroupConfig(offset_metadata_bytes_max=10))
    assert h.commit_errors(h.commit("g", {("t", 0): 1}, metadata="x" * 11)) == {
        ("t", 0): E.OFFSET_METADATA_TOO_LARGE
    }
    assert h.commit_errors(h.commit("g", {("t", 0): 1}, metadata="x" * 10)) == {("t", 0): E.NONE}


def test_list_describe_delete() -> None:
    h = Harness()
    stable_group(h, "busy", 1)
    h.commit("idle", {("t", 0): 3, ("t", 1): 4})
    listed = h.replies[h.send(ApiKey.LIST_GROUPS, {}, 2)]
    assert sorted((g["group_id"], g["protocol_type"]) for g in listed["groups"]) == [
        ("busy", "consumer"),
        ("idle", ""),
    ]
    assert h.describe("missing")["group_state"] == "Dead"
    body = {"groups_names": ["busy", "idle", "missing"]}
    results = h.replies[h.send(ApiKey.DELETE_GROUPS, body, 1)]["results"]
    assert [(r["group_id"], r["error_code"]) for r in results] == [
        ("busy", E.NON_EMPTY_GROUP),
        ("idle", E.NONE),
        ("missing", E.GROUP_ID_NOT_FOUND),
    ]
    assert h.fetch("idle") == {}
    h.restart()
    assert h.fetch("idle") == {}
    assert h.describe("busy")["group_state"] == "Stable"


def test_groups_and_offsets_survive_a_restart() -> None:
    h = Harness()
    (a, b), gen = stable_group(h, "g", 2, instances=[None, "i-b"])
    h.commit("g", {("t", 0): 11, ("t", 1): 12}, generation=gen, member_id=a)
    h.commit("g", {("t", 0): 13}, generation=gen, member_id=b)
    h.commit("simple", {("u", 0): 99})
    h.restart()
    assert h.fetch("g") == {("t", 0): 13, ("t", 1): 12}
    assert h.fetch("simple") == {("u", 0): 99}
    described = h.describe("g")
    assert described["group_state"] == "Stable"
    assert {m["member_id"]: m["member_assignment"] for m in described["members"]} == {
        a: b"assignment-" + a.encode(),
        b: b"assignment-" + b.encode(),
    }
    # Members carry on where they were; one that stays silent expires.
    assert h.heartbeat("g", gen, a) == E.NONE
    assert h.heartbeat("g", gen, b, "i-b") == E.NONE
    h.advance(SESSION_MS // 2)
    assert h.heartbeat("g", gen, a) == E.NONE
    h.advance(SESSION_MS // 2)
    assert h.heartbeat("g", gen, a) == E.REBALANCE_IN_PROGRESS
    assert h.heartbeat("g", gen, b, "i-b") == E.UNKNOWN_MEMBER_ID


def test_an_emptied_group_reloads_empty() -> None:
    h = Harness()
    (a,), gen = stable_group(h, "g", 1)
    h.commit("g", {("t", 0): 1}, generation=gen, member_id=a)
    h.leave("g", [(a, None)])
    h.restart()
    described = h.describe("g")
    assert (described["group_state"], described["members"]) == ("Empty", [])
    assert h.fetch("g") == {("t", 0): 1}


def test_requests_while_loading() -> None:
    h = Harness()
    h.core = GroupCoordinator(0, h.config, random.Random(0))  # no finish_load() yet
    assert h.error(h.join("g")) == E.COORDINATOR_LOAD_IN_PROGRESS
    assert h.heartbeat("g", 1, "m") == E.NONE
    assert h.error(h.sync("g", 1, "m")) == E.REBALANCE_IN_PROGRESS
    fetch = h.send(ApiKey.OFFSET_FETCH, {"group_id": "g", "topics": None}, 5)
    assert h.error(fetch) == E.COORDINATOR_LOAD_IN_PROGRESS
    topics = [{"name": "t", "partition_indexes": [0]}]
    v1 = h.send(ApiKey.OFFSET_FETCH, {"group_id": "g", "topics": topics}, 1)
    (partition,) = h.replies[v1]["topics"][0]["partitions"]
    assert partition["error_code"] == E.COORDINATOR_LOAD_IN_PROGRESS


def test_unload_answers_waiting_requests() -> None:
    h = Harness()
    (a,), gen = stable_group(h, "g", 1)
    _, b_join = h.join_new("g")
    h.hold_writes = True
    commit = h.commit("g", {("t", 0): 1}, generation=gen, member_id=a)
    h.run(h.core.unload(h.now_ms))
    assert h.error(b_join) == E.NOT_COORDINATOR
    assert h.commit_errors(commit) == {("t", 0): E.NOT_COORDINATOR}
    assert h.core.loading and h.core.groups == {}
