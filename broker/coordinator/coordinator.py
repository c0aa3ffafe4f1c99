"""GroupCoordinator: the sans-IO core for the groups of one ``__consumer_offsets`` partition.

The broker that leads partition P of ``__consumer_offsets`` runs one
GroupCoordinator for it and sends it every request about a group whose id
hashes to P. Inputs and outputs:

* ``handle(request_id, api, request, now_ms)``: a group API request. The answer
  comes back as a ``Reply(request_id, body)`` effect, now or from a later call
  (a JoinGroup waits for the join phase, a SyncGroup for the leader).
* ``tick(now_ms)``: the time has come for a ``SetTimer`` the core returned.
* ``on_persisted(token, error, now_ms)``: a ``Persist(AppendRecords)`` is done.
  Offset commits, leader assignments and deletions are answered only after it.
* ``load(pairs)`` then ``finish_load(now_ms)``: replay the partition's records
  when this broker becomes its leader; until then every request gets
  COORDINATOR_LOAD_IN_PROGRESS (Heartbeat: NONE, SyncGroup: REBALANCE_IN_PROGRESS,
  as Kafka answers). ``unload(now_ms)``: leadership moved away.

Every call returns the effects to execute, in order, and always ends with a
``SetTimer`` for the earliest deadline when there is one (the latest SetTimer
replaces earlier ones). Committed offsets and deletions change state only by
``replay`` of the records that were written, the same path a reload takes;
live membership (joins, syncs, sessions) is held in memory and its metadata
record is what a reload restores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from broker.coordinator.config import GroupConfig
from broker.coordinator.group import ClassicGroup, CommittedOffset, GroupState, Member
from broker.coordinator.membership import Membership, RandomBits, validate_member, write_error
from broker.coordinator.outbox import Outbox, Timers
from broker.coordinator.records import (
    GroupMetadataRecord,
    GroupRecord,
    GroupSnapshot,
    OffsetCommitRecord,
    decode_all,
)
from broker.coordinator.responses import (
    AUTHORIZED_OPERATIONS_OMITTED,
    GroupRequest,
    commit_result,
    error_response,
)
from broker.effects import Effect, SetTimer
from protocol.api import ApiKey
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

S = GroupState

OFFSET_WRITE_ERRORS = {
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
    ErrorCode.INVALID_FETCH_SIZE: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
}


class GroupCoordinator:
    def __init__(self, partition: int, config: GroupConfig, rng: RandomBits) -> None:
        self.partition = partition
        self.config = config
        self.loading = True
        self.groups: dict[str, ClassicGroup] = {}
        self.out = Outbox(partition)
        self.timers = Timers()
        self.membership = Membership(
            self.groups, config, rng, self.out, self.timers, self._create_group, self._forget
        )
        self._handlers: dict[int, Callable[[int, GroupRequest, int], None]] = {
            ApiKey.JOIN_GROUP: self.membership.join,
            ApiKey.SYNC_GROUP: self.membership.sync,
            ApiKey.HEARTBEAT: self.membership.heartbeat,
            ApiKey.LEAVE_GROUP: self.membership.leave,
            ApiKey.OFFSET_COMMIT: self._offset_commit,
            ApiKey.OFFSET_FETCH: self._offset_fetch,
            ApiKey.LIST_GROUPS: self._list_groups,
            ApiKey.DESCRIBE_GROUPS: self._describe_groups,
            ApiKey.DELETE_GROUPS: self._delete_groups,
        }

    # -- inputs -------------------------------------------------------------------------

    def handle(self, request_id: int, api: int, request: GroupRequest, now_ms: int) -> list[Effect]:
        if self.loading:
            self.out.reply(request_id, _loading_response(api, request))
        else:
            self._handlers[api](request_id, request, now_ms)
        return self._flush()

    def tick(self, now_ms: int) -> list[Effect]:
        for key in self.timers.pop_due(now_ms):
            kind, group_id, *member = key
            group = self.groups.get(group_id)
            if group is None or group.is_in(S.DEAD):
                continue
            if kind == "join":
                self.membership.on_join_deadline(group, now_ms)
            elif kind == "sync":
                self.membership.on_sync_deadline(group, now_ms)
            elif kind == "session":
                self.membership.on_session_timer(group, member[0], now_ms)
            else:
                self.membership.on_pending_timer(group, member[0], now_ms)
        return self._flush()

    def on_persisted(self, token: int, error: ErrorCode, now_ms: int) -> list[Effect]:
        self.out.complete(token, error, now_ms)
        return self._flush()

    def load(self, pairs: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Replay records of this partition, oldest first (may be called per chunk)."""
        assert self.loading, "load() after finish_load()"
        for record in decode_all(pairs):
            self.replay(record, loading=True)

    def finish_load(self, now_ms: int) -> list[Effect]:
        """Start serving: loaded members get a full session to heartbeat again."""
        self.loading = False
        members = 0
        for group in self.groups.values():
            for member in group.members.values():
                self.membership.touch(group, member.member_id, now_ms)
                members += 1
        log.info(
            "coordinator for __consumer_offsets-%d loaded: %d groups, %d members, %d offsets",
            self.partition,
            len(self.groups),
            members,
            sum(len(g.offsets) for g in self.groups.values()),
        )
        return self._flush()

    def unload(self, now_ms: int) -> list[Effect]:
        """Answer everything that waits with NOT_COORDINATOR and drop all state."""
        self.out.fail_all(ErrorCode.NOT_LEADER_OR_FOLLOWER, now_ms)
        for group in self.groups.values():
            self.membership.unload(group, now_ms)
        self.groups.clear()
        self.timers.clear()
        self.loading = True
        log.info("coordinator for __consumer_offsets-%d unloaded", self.partition)
        return self._flush()

    def _flush(self) -> list[Effect]:
        effects = self.out.take()
        next_ms = self.timers.next_ms()
        if next_ms is not None:
            effects.append(SetTimer(next_ms))
        return effects

    # -- state changed by records -------------------------------------------------------

    def replay(self, record: GroupRecord, *, loading: bool = False) -> None:
        """Apply a written record. Group metadata with a value is applied only while
        loading: live membership is already in memory."""
        if isinstance(record, OffsetCommitRecord):
            group = self.groups.get(record.group_id)
            if group is None:
                if record.value is None:
                    return
                group = self.groups[record.group_id] = ClassicGroup(record.group_id)
            key = (record.topic, record.partition)
            if record.value is None:
                group.offsets.pop(key, None)
            else:
                group.offsets[key] = record.value
        elif record.value is None:
            self.groups.pop(record.group_id, None)
        elif loading:
            group = self.groups.setdefault(record.group_id, ClassicGroup(record.group_id))
            _restore(group, record.value)

    def _create_group(self, group_id: str, now_ms: int) -> ClassicGroup | None:
        if len(self.groups) >= self.config.groups_max:
            log.warning(
                "__consumer_offsets-%d holds %d groups (groups_max): not creating group %s",
                self.partition,
                len(self.groups),
                group_id,
            )
            return None
        group = self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=now_ms)
        return group

    def _forget(self, group: ClassicGroup, now_ms: int) -> None:
        """Drop an empty group that holds nothing; a tombstone hides any metadata record."""
        if group.members or group.pending_members or group.offsets or not group.is_in(S.EMPTY):
            return
        if self.groups.get(group.group_id) is not group:
            return
        del self.groups[group.group_id]
        if group.generation_id > 0:
            tombstone = GroupMetadataRecord(group.group_id, None)
            self.out.persist([tombstone], now_ms, lambda error, _: None)
        log.info("group %s generation %d: removed, empty", group.group_id, group.generation_id)

    # -- OffsetCommit / OffsetFetch -----------------------------------------------------

    def _offset_commit(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        body = request.body
        generation = body.get("generation_id_or_member_epoch", -1)
        member_id = body.get("member_id", "")
        group = self.groups.get(body["group_id"])
        if group is None and generation < 0:
            group = self._create_group(body["group_id"], now_ms)
            error = None if group is not None else ErrorCode.COORDINATOR_NOT_AVAILABLE
        elif group is None:
            error = ErrorCode.ILLEGAL_GENERATION
        else:
            error = _check_commit(group, generation, member_id, body.get("group_instance_id"))
        if error is not None:
            self.out.reply(request_id, error_response(ApiKey.OFFSET_COMMIT, request, error))
            return
        assert group is not None
        self.membership.touch(group, member_id, now_ms)
        errors: dict[tuple[str, int], ErrorCode] = {}
        records: list[GroupRecord] = []
        for topic in body["topics"]:
            for p in topic["partitions"]:
                key = (topic["name"], p["partition_index"])
                metadata = p.get("committed_metadata") or ""
                if len(metadata.encode()) > self.config.offset_metadata_bytes_max:
                    errors[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                    continue
                errors[key] = ErrorCode.NONE
                timestamp = p.get("commit_timestamp", -1)
                value = CommittedOffset(
                    p["committed_offset"],
                    p.get("committed_leader_epoch", -1),
                    metadata,
                    timestamp if timestamp >= 0 else now_ms,
                )
                records.append(OffsetCommitRecord(group.group_id, *key, value))
        if not records:
            self.out.reply(request_id, commit_result(body, errors))
            self._forget(group, now_ms)
            return

        def done(error: ErrorCode, _: int) -> None:
            if error:
                failed = OFFSET_WRITE_ERRORS.get(error, write_error(error))
                for key, value in errors.items():
                    errors[key] = failed if value == ErrorCode.NONE else value
            elif self.groups.get(group.group_id) is group:
                for record in records:
                    self.replay(record)
            self.out.reply(request_id, commit_result(body, errors))

        self.out.persist(records, now_ms, done)

    def _offset_fetch(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        body = request.body
        group = self.groups.get(body["group_id"])
        offsets = group.offsets if group is not None else {}
        requested = body.get("topics")
        if requested is None:
            wanted: dict[str, list[int]] = {}
            for topic, partition in sorted(offsets):
                wanted.setdefault(topic, []).append(partition)
        else:
            wanted = {}
            for t in requested:
                wanted.setdefault(t["name"], []).extend(t["partition_indexes"])
        topics = [
            {"name": name, "partitions": [_fetched(offsets.get((name, i)), i) for i in indexes]}
            for name, indexes in wanted.items()
        ]
        self.out.reply(request_id, {"error_code": ErrorCode.NONE, "topics": topics})

    # -- ListGroups / DescribeGroups / DeleteGroups -------------------------------------

    def _list_groups(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        groups = [
            {
                "group_id": g.group_id,
                "protocol_type": g.protocol_type or "",
                "group_state": g.state.value,
                "group_type": "classic",
            }
            for g in self.groups.values()
            if not g.is_in(S.DEAD)
        ]
        self.out.reply(request_id, {"error_code": ErrorCode.NONE, "groups": groups})

    def _describe_groups(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        described = [_describe(self.groups.get(g), g) for g in request.body["groups"]]
        self.out.reply(request_id, {"groups": described})

    def _delete_groups(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        results: dict[str, ErrorCode] = {}
        doomed: list[ClassicGroup] = []
        for group_id in request.body["groups_names"]:
            group = self.groups.get(group_id)
            if group is None or group.is_in(S.DEAD):
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_in(S.EMPTY):
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                group.transition(S.DEAD, now_ms)
                doomed.append(group)
                results[group_id] = ErrorCode.NONE
        owned = {g.group_id: _deletion_records(g) for g in doomed}

        def reply() -> None:
            answer = [{"group_id": g, "error_code": e} for g, e in results.items()]
            self.out.reply(request_id, {"results": answer})

        def done(error: ErrorCode, now: int) -> None:
            for group in doomed:
                if error:
                    results[group.group_id] = write_error(error)
                    self._revive(group, now)
                elif self.groups.get(group.group_id) is group:
                    log.info("group %s deleted with %d offsets", group.group_id, len(group.offsets))
                    for record in owned[group.group_id]:
                        self.replay(record)
            reply()

        if doomed:
            self.out.persist([r for records in owned.values() for r in records], now_ms, done)
        else:
            reply()

    def _revive(self, group: ClassicGroup, now_ms: int) -> None:
        """A deletion that could not be written: the group is back, empty, as it was."""
        if self.groups.get(group.group_id) is group:
            revived = ClassicGroup(
                group.group_id,
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                offsets=group.offsets,
                state_timestamp_ms=now_ms,
            )
            self.groups[group.group_id] = revived


def _deletion_records(group: ClassicGroup) -> list[GroupRecord]:
    """Tombstones for every offset of the group, then for the group itself."""
    records: list[GroupRecord] = [
        OffsetCommitRecord(group.group_id, topic, partition, None)
        for topic, partition in group.offsets
    ]
    records.append(GroupMetadataRecord(group.group_id, None))
    return records


def _check_commit(
    group: ClassicGroup, generation: int, member_id: str, instance_id: str | None
) -> ErrorCode | None:
    """Kafka's rules: a commit outside group management (generation -1, no member)
    is taken only while the group has no members; members commit in their generation."""
    if group.is_in(S.DEAD):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if generation < 0 and group.is_in(S.EMPTY):
        return None
    if generation >= 0 or member_id or instance_id is not None:
        error = validate_member(group, member_id, instance_id)
        if error is None and generation != group.generation_id:
            error = ErrorCode.ILLEGAL_GENERATION
    elif not group.is_in(S.EMPTY):
        error = ErrorCode.UNKNOWN_MEMBER_ID
    else:
        error = None
    if error is None and group.is_in(S.COMPLETING_REBALANCE):
        error = ErrorCode.REBALANCE_IN_PROGRESS
    return error


def _fetched(committed: CommittedOffset | None, index: int) -> dict[str, Any]:
    if committed is None:
        return {
            "partition_index": index,
            "committed_offset": -1,
            "committed_leader_epoch": -1,
            "metadata": "",
            "error_code": ErrorCode.NONE,
        }
    return {
        "partition_index": index,
        "committed_offset": committed.offset,
        "committed_leader_epoch": committed.leader_epoch,
        "metadata": committed.metadata,
        "error_code": ErrorCode.NONE,
    }


def _describe(group: ClassicGroup | None, group_id: str) -> dict[str, Any]:
    """Kafka's group summary: metadata and assignments are shown only when Stable;
    an unknown group reads as Dead with no error (DescribeGroups v0-5)."""
    if group is None:
        state, protocol_type, protocol, members = "Dead", "", "", []
    else:
        stable = group.is_in(S.STABLE)
        state, protocol_type = group.state.value, group.protocol_type or ""
        protocol = (group.protocol_name or "") if stable else ""
        members = [
            _describe_member(m, group.protocol_name if stable else None)
            for m in group.members.values()
        ]
    return {
        "error_code": ErrorCode.NONE,
        "group_id": group_id,
        "group_state": state,
        "protocol_type": protocol_type,
        "protocol_data": protocol,
        "members": members,
        "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _describe_member(member: Member, protocol: str | None) -> dict[str, Any]:
    return {
        "member_id": member.member_id,
        "group_instance_id": member.group_instance_id,
        "client_id": member.client_id,
        "client_host": member.client_host,
        "member_metadata": member.metadata_for(protocol) if protocol else b"",
        "member_assignment": member.assignment if protocol else b"",
    }


def _restore(group: ClassicGroup, value: GroupSnapshot) -> None:
    """A group as its last metadata record left it: Stable with members, else Empty."""
    group.generation_id = value.generation_id
    group.protocol_type = value.protocol_type or None
    group.protocol_name = value.protocol_name
    group.leader_id = value.leader_id
    group.state_timestamp_ms = value.state_timestamp_ms
    group.members.clear()
    group.static_members.clear()
    for m in value.members:
        member = Member(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            session_timeout_ms=m.session_timeout_ms,
            protocols=[(value.protocol_name or "", m.subscription)],
            assignment=m.assignment,
        )
        group.members[m.member_id] = member
        if m.group_instance_id is not None:
            group.static_members[m.group_instance_id] = m.member_id
    group.state = S.STABLE if group.members else S.EMPTY


def _loading_response(api: int, request: GroupRequest) -> dict[str, Any]:
    if api == ApiKey.HEARTBEAT:
        return {"error_code": ErrorCode.NONE}  # Kafka answers heartbeats blindly while loading
    if api == ApiKey.SYNC_GROUP:
        # The rebalance in progress was lost with the old coordinator: rejoin.
        return error_response(api, request, ErrorCode.REBALANCE_IN_PROGRESS)
    return error_response(api, request, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
