"""A GroupCoordinator on a virtual clock with an in-memory partition, for scripted scenarios.

The harness executes effects as the shell does: a Persist appends to ``disk``
and reports back at once (or is held, or fails, when a test says so), a Reply
is recorded (and must come exactly once per request), a SetTimer is honoured
by ``advance``. ``restart`` builds a fresh coordinator from ``disk``, as a new
leader of the partition would.
"""

from __future__ import annotations

import random
from typing import Any

from broker.coordinator import GroupConfig, GroupCoordinator, GroupRequest
from broker.effects import Effect, Persist, Reply, SetTimer
from protocol.api import ApiKey
from protocol.errors import ErrorCode

RANGE = [{"name": "range", "metadata": b"sub-range"}]
SESSION_MS = 10_000
REBALANCE_MS = 30_000


class Harness:
    def __init__(self, config: GroupConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or GroupConfig(initial_rebalance_delay_ms=100)
        self.seed = seed
        self.now_ms = 1_000_000
        self.disk: list[tuple[bytes, bytes | None]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self.held: list[Persist] = []
        self.hold_writes = False
        self.write_error = ErrorCode.NONE
        self.timer_ms: int | None = None
        self.next_request_id = 0
        self.core = self._open()

    def _open(self) -> GroupCoordinator:
        core = GroupCoordinator(0, self.config, random.Random(self.seed))
        self.timer_ms = None
        core.load(list(self.disk))
        self.core = core
        self.run(core.finish_load(self.now_ms))
        return core

    def restart(self) -> None:
        """A new leader loads the partition; waiting requests of the old one are dropped."""
        self.held.clear()
        self._open()

    # -- effects --------------------------------------------------------------------

    def run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Reply):
                assert effect.request_id not in self.replies, f"second reply to {effect}"
                self.replies[effect.request_id] = effect.response
            elif isinstance(effect, Persist):
                self.held.append(effect)
                if not self.hold_writes:
                    self.complete_writes(self.write_error)
            elif isinstance(effect, SetTimer):
                self.timer_ms = effect.at_ms
            else:
                raise AssertionError(effect)

    def complete_writes(self, error: ErrorCode = ErrorCode.NONE) -> None:
        held, self.held = self.held, []
        for persist in held:
            if not error:
                self.disk.extend(persist.operation.records)
            self.run(self.core.on_persisted(persist.operation.token, error, self.now_ms))

    def advance(self, ms: int) -> None:
        """Let ``ms`` pass, ticking whenever the coordinator asked to be."""
        target = self.now_ms + ms
        while self.timer_ms is not None and self.timer_ms <= target:
            self.now_ms = max(self.now_ms, self.timer_ms)
            self.timer_ms = None
            self.run(self.core.tick(self.now_ms))
        self.now_ms = target

    # -- requests -------------------------------------------------------------------

    def send(self, api: int, body: dict[str, Any], version: int, client_id: str = "client") -> int:
        request_id = self.next_request_id
        self.next_request_id += 1
        request = GroupRequest(version, body, client_id, "/127.0.0.1")
        self.run(self.core.handle(request_id, api, request, self.now_ms))
        return request_id

    def reply(self, request_id: int) -> dict[str, Any] | None:
        return self.replies.get(request_id)

    def error(self, request_id: int) -> ErrorCode:
        response = self.replies[request_id]
        return ErrorCode(response["error_code"])

    def join(
        self,
        group: str,
        member_id: str = "",
        *,
        version: int = 5,
        instance: str | None = None,
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        protocols: list[dict] | None = None,
        protocol_type: str = "consumer",
        client_id: str = "client",
    ) -> int:
        body = {
            "group_id": group,
            "session_timeout_ms": session_ms,
            "rebalance_timeout_ms": rebalance_ms,
            "member_id": member_id,
            "group_instance_id": instance,
            "protocol_type": protocol_type,
            "protocols": RANGE if protocols is None else protocols,
        }
        return self.send(ApiKey.JOIN_GROUP, body, version, client_id)

    def join_new(self, group: str, **kwargs: Any) -> tuple[str, int]:
        """The v4+ two-step join of a new dynamic member: (member id, request id of the rejoin)."""
        first = self.join(group, **kwargs)
        assert self.error(first) == ErrorCode.MEMBER_ID_REQUIRED
        member_id = self.replies[first]["member_id"]
        return member_id, self.join(group, member_id, **kwargs)

    def sync(
        self,
        group: str,
        generation: int,
        member_id: str,
        assignments: dict[str, bytes] | None = None,
        *,
        instance: str | None = None,
        version: int = 3,
    ) -> int:
        body = {
            "group_id": group,
            "generation_id": generation,
            "member_id": member_id,
            "group_instance_id": instance,
            "assignments": [
                {"member_id": m, "assignment": a} for m, a in (assignments or {}).items()
            ],
        }
        return self.send(ApiKey.SYNC_GROUP, body, version)

    def heartbeat(
        self, group: str, generation: int, member_id: str, instance: str | None = None
    ) -> ErrorCode:
        body = {
            "group_id": group,
            "generation_id": generation,
            "member_id": member_id,
            "group_instance_id": instance,
        }
        return self.error(self.send(ApiKey.HEARTBEAT, body, 3))

    def leave(self, group: str, members: list[tuple[str, str | None]]) -> dict[str, Any]:
        body = {
            "group_id": group,
            "members": [{"member_id": m, "group_instance_id": i} for m, i in members],
        }
        return self.replies[self.send(ApiKey.LEAVE_GROUP, body, 3)]

    def commit(
        self,
        group: str,
        offsets: dict[tuple[str, int], int],
        *,
        generation: int = -1,
        member_id: str = "",
        metadata: str = "",
        version: int = 7,
    ) -> int:
        topics: dict[str, list[dict]] = {}
        for (topic, partition), offset in offsets.items():
            topics.setdefault(topic, []).append(
                {
                    "partition_index": partition,
                    "committed_offset": offset,
                    "committed_leader_epoch": 3,
                    "committed_metadata": metadata,
                }
            )
        body = {
            "group_id": group,
            "generation_id_or_member_epoch": generation,
            "member_id": member_id,
            "group_instance_id": None,
            "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
        }
        return self.send(ApiKey.OFFSET_COMMIT, body, version)

    def commit_errors(self, request_id: int) -> dict[tuple[str, int], ErrorCode]:
        return {
            (t["name"], p["partition_index"]): ErrorCode(p["error_code"])
            for t in self.replies[request_id]["topics"]
            for p in t["partitions"]
        }

    def fetch(
        self, group: str, topics: dict[str, list[int]] | None = None, version: int = 5
    ) -> dict[tuple[str, int], int]:
        """OffsetFetch as {(topic, partition): committed offset}."""
        requested = (
            None
            if topics is None
            else [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]
        )
        body = {"group_id": group, "topics": requested}
        response = self.replies[self.send(ApiKey.OFFSET_FETCH, body, version)]
        assert response["error_code"] == ErrorCode.NONE
        return {
            (t["name"], p["partition_index"]): p["committed_offset"]
            for t in response["topics"]
            for p in t["partitions"]
        }

    def describe(self, group: str) -> dict[str, Any]:
        body = {"groups": [group], "include_authorized_operations": False}
        return self.replies[self.send(ApiKey.DESCRIBE_GROUPS, body, 4)]["groups"][0]

    def state(self, group: str) -> str:
        return self.describe(group)["group_state"]


def stable_group(
    h: Harness, group: str, count: int, *, instances: list[str | None] | None = None
) -> tuple[list[str], int]:
    """Bring ``count`` new members to a Stable group; (member ids, leader first), generation.

    They join inside the initial rebalance delay, so one generation takes them all.
    """
    joins = []
    for instance in instances or [None] * count:
        if instance is None:
            joins.append(h.join_new(group)[1])
        else:
            joins.append(h.join(group, instance=instance))
    h.advance(h.config.initial_rebalance_delay_ms * (len(joins) + 1))
    results = [h.replies[r] for r in joins]
    assert all(r["error_code"] == ErrorCode.NONE for r in results), results
    generation, leader = results[0]["generation_id"], results[0]["leader"]
    members = [r["member_id"] for r in results]
    assignments = {m: b"assignment-" + m.encode() for m in members}
    syncs = [h.sync(group, generation, m, assignments if m == leader else None) for m in members]
    assert all(h.error(s) == ErrorCode.NONE for s in syncs)
    assert h.state(group) == "Stable"
    members.sort(key=lambda m: m != leader)
    return members, generation
