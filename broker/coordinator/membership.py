"""The classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the
timers that end join phases, expire sessions and drop members that never sync.

The rules are Kafka's (ClassicGroup in the group coordinator): a rebalance starts
when membership or metadata changes; the join phase ends when every known member
has rejoined or the rebalance timeout passes; the leader's SyncGroup carries the
assignment, which is made durable before anyone receives it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from broker.coordinator.config import GroupConfig
from broker.coordinator.group import ClassicGroup, GroupState, Member
from broker.coordinator.outbox import Outbox, Timers
from broker.coordinator.records import GroupMetadataRecord, snapshot
from broker.coordinator.responses import GroupRequest, join_error, sync_result
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

S = GroupState
JOIN_MEMBER_ID_REQUIRED_VERSION = 4
"""JoinGroup v4+: a member joining without an id gets one with MEMBER_ID_REQUIRED (KIP-394)."""


class RandomBits(Protocol):
    def getrandbits(self, k: int) -> int: ...


GROUP_WRITE_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.INVALID_FETCH_SIZE: ErrorCode.UNKNOWN_SERVER_ERROR,
}
"""How a failed __consumer_offsets append reads to a client (Kafka's mapping)."""


def write_error(error: ErrorCode) -> ErrorCode:
    return GROUP_WRITE_ERRORS.get(error, error)


def validate_member(
    group: ClassicGroup, member_id: str, instance_id: str | None
) -> ErrorCode | None:
    """FENCED_INSTANCE_ID / UNKNOWN_MEMBER_ID, or None if ``member_id`` may act."""
    if instance_id is not None:
        current = group.static_members.get(instance_id)
        if current is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if current != member_id:
            log.info(
                "group %s: member %s fenced by %s for instance %s",
                group.group_id,
                member_id,
                current,
                instance_id,
            )
            return ErrorCode.FENCED_INSTANCE_ID
        return None
    return None if member_id in group.members else ErrorCode.UNKNOWN_MEMBER_ID


class Membership:
    """Membership and rebalances of the groups of one coordinator."""

    def __init__(
        self,
        groups: dict[str, ClassicGroup],
        config: GroupConfig,
        rng: RandomBits,
        out: Outbox,
        timers: Timers,
        create_group: Callable[[str, int], ClassicGroup | None],
        forget_group: Callable[[ClassicGroup, int], None],
    ) -> None:
        self.groups = groups
        self.config = config
        self.rng = rng
        self.out = out
        self.timers = timers
        self.create_group = create_group
        self.forget_group = forget_group

    # -- JoinGroup ------------------------------------------------------------------

    def join(self, request_id: int, request: GroupRequest, now_ms: int) -> None:
        body = request.body
        member_id = body["member_id"]
        error = self._check_join(body)
        if error is not None:
            self.out.reply(request_id, join_error(member_id, error))
            return
        group = self.groups.get(body["group_id"])
        if group is None:
            if member_id:
                self.out.reply(request_id, join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID))
                return
            group = self.create_group(body["group_id"], now_ms)
            if group is None:
                error = ErrorCode.COORDINATOR_NOT_AVAILABLE
                self.out.reply(request_id, join_error(member_id, error))
                return
        if not self._accepts(group, member_id):
            log.info("group %s: refusing a member, group is full", group.group_id)
            self.out.reply(request_id, join_error("", ErrorCode.GROUP_MAX_SIZE_REACHED))
        elif group.is_in(S.DEAD):
            self.out.reply(request_id, join_error(member_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
        elif not group.supports_protocols(body["protocol_type"], _names(body)):
            error = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            self.out.reply(request_id, join_error(member_id, error))
        elif not member_id:
            self._join_new(group, request_id, request, now_ms)
        else:
            self._join_current(group, request_id, request, now_ms)
        self._maybe_complete_join(group, now_ms)
        if group.is_in(S.EMPTY):
            self.forget_group(group, now_ms)

    def _check_join(self, body: Any) -> ErrorCode | None:
        if not body["group_id"]:
            return ErrorCode.INVALID_GROUP_ID
        session_ms = body["session_timeout_ms"]
        if (
            not self.config.session_timeout_min_ms
            <= session_ms
            <= self.config.session_timeout_max_ms
        ):
            return ErrorCode.INVALID_SESSION_TIMEOUT
        metadata_bytes = sum(len(p["metadata"] or b"") for p in body["protocols"])
        if metadata_bytes > self.config.member_metadata_bytes_max:
            return ErrorCode.INVALID_REQUEST
        return None

    def _accepts(self, group: ClassicGroup, member_id: str) -> bool:
        if member_id in group.members or member_id in group.pending_members:
            return True
        return len(group.members) + len(group.pending_members) < self.config.group_members_max

    def _join_new(self, group: ClassicGroup, request_id: int, request: GroupRequest, now: int):
        body = request.body
        instance_id = body.get("group_instance_id")
        prefix = instance_id if instance_id is not None else request.client_id
        new_id = f"{prefix}-{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        if instance_id is not None and instance_id in group.static_members:
            self._replace_static(
                group, group.static_members[instance_id], new_id, request_id, body, now
            )
        elif instance_id is None and request.version >= JOIN_MEMBER_ID_REQUIRED_VERSION:
            expires_ms = now + body["session_timeout_ms"]
            group.pending_members[new_id] = expires_ms
            self.timers.schedule(("pending", group.group_id, new_id), expires_ms)
            log.info("group %s: new member %s must rejoin with its id", group.group_id, new_id)
            self.out.reply(request_id, join_error(new_id, ErrorCode.MEMBER_ID_REQUIRED))
        else:
            self._add_member(group, new_id, request_id, request, now)

    def _join_current(self, group: ClassicGroup, request_id: int, request: GroupRequest, now: int):
        body = request.body
        member_id = body["member_id"]
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            self._add_member(group, member_id, request_id, request, now)
            return
        error = validate_member(group, member_id, body.get("group_instance_id"))
        if error is None and group.is_in(S.EMPTY):
            error = ErrorCode.UNKNOWN_MEMBER_ID
        if error is not None:
            self.out.reply(request_id, join_error(member_id, error))
            return
        member = group.members[member_id]
        protocols = _protocols(body)
        unchanged = member.matches(protocols)
        if group.is_in(S.COMPLETING_REBALANCE) and unchanged:
            # A retry of a join whose answer was lost: answer it again.
            self.out.reply(request_id, self._join_result(group, member))
        elif group.is_in(S.STABLE) and unchanged and member_id != group.leader_id:
            self.out.reply(request_id, self._join_result(group, member, members=False))
        else:
            # The leader rejoining a stable group forces a rebalance: it is how a
            # consumer asks for a new assignment after topic metadata changes.
            self._update_member(group, member, request_id, body, now)
            self._maybe_prepare_rebalance(group, f"member {member_id} rejoined", now)

    def _add_member(
        self, group: ClassicGroup, member_id: str, request_id: int, request: GroupRequest, now: int
    ) -> None:
        body = request.body
        member = Member(
            member_id=member_id,
            group_instance_id=body.get("group_instance_id"),
            client_id=request.client_id,
            client_host=request.client_host,
            rebalance_timeout_ms=_rebalance_timeout_ms(body),
            session_timeout_ms=body["session_timeout_ms"],
            protocols=_protocols(body),
            join_request=request_id,
            is_new=True,
            expires_ms=now + self.config.new_member_join_timeout_ms,
        )
        if group.is_in(S.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        group.add_member(member, body["protocol_type"])
        self.timers.schedule(("session", group.group_id, member_id), member.expires_ms)
        log.info(
            "group %s generation %d: member %s joins (instance %s, client %s)",
            group.group_id,
            group.generation_id,
            member_id,
            member.group_instance_id,
            member.client_id,
        )
        self._maybe_prepare_rebalance(group, f"member {member_id} joined", now)

    def _update_member(
        self, group: ClassicGroup, member: Member, request_id: int, body: Any, now: int
    ) -> None:
        if member.join_request is not None and member.join_request != request_id:
            # Kafka forgets a superseded join; answering it lets its client move on.
            error = ErrorCode.REBALANCE_IN_PROGRESS
            self.out.reply(member.join_request, join_error(member.member_id, error))
        member.protocols = _protocols(body)
        member.rebalance_timeout_ms = _rebalance_timeout_ms(body)
        member.session_timeout_ms = body["session_timeout_ms"]
        member.join_request = request_id

    def _replace_static(
        self, group: ClassicGroup, old_id: str, new_id: str, request_id: int, body: Any, now: int
    ) -> None:
        """A static member restarted: it keeps its place (and assignment) under a new id;
        whatever its old incarnation still waits for is answered FENCED_INSTANCE_ID."""
        instance_id = body["group_instance_id"]
        old = group.members[old_id]
        self._answer_waiting(old, ErrorCode.FENCED_INSTANCE_ID)
        previous_leader = group.leader_id
        saved = (list(old.protocols), old.rebalance_timeout_ms, old.session_timeout_ms)
        member = group.replace_static_member(instance_id, old_id, new_id)
        self._update_member(group, member, request_id, body, now)
        self._heartbeat(group, member, now)
        log.info(
            "group %s generation %d: static instance %s replaces member %s with %s",
            group.group_id,
            group.generation_id,
            instance_id,
            old_id,
            new_id,
        )
        if group.is_in(S.STABLE) and group.select_protocol() == group.protocol_name:
            self._store_static_rejoin(group, member, old_id, previous_leader, saved, now)
        elif group.is_in(S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"static member {instance_id} rejoined", now)

    def _store_static_rejoin(
        self,
        group: ClassicGroup,
        member: Member,
        old_id: str,
        previous_leader: str | None,
        saved: tuple[list[tuple[str, bytes]], int, int],
        now: int,
    ) -> None:
        """Persist the new member id, then give the member the current generation without
        a rebalance. The answer names the previous leader id, so a restarted leader acts
        as a follower and does not compute an assignment the stable group would ignore."""
        new_id, generation = member.member_id, group.generation_id

        def done(error: ErrorCode, now_ms: int) -> None:
            if (
                self.groups.get(group.group_id) is not group
                or group.members.get(new_id) is not member
            ):
                return
            request_id, member.join_request = member.join_request, None
            if error:
                log.warning(
                    "group %s: storing static member %s failed: %s",
                    group.group_id,
                    new_id,
                    error.name,
                )
                member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms = saved
                group.replace_static_member(member.group_instance_id or "", new_id, old_id)
                if request_id is not None:
                    self.out.reply(request_id, join_error("", write_error(error)))
                return
            if request_id is not None and group.generation_id == generation:
                result = self._join_result(group, member, members=False)
                result["leader"] = previous_leader or ""
                self.out.reply(request_id, result)

        record = GroupMetadataRecord(group.group_id, snapshot(group))
        self.out.persist([record], now, done)

    def _join_result(self, group: ClassicGroup, member: Member, *, members: bool = True) -> dict:
        listed = []
        if members and member.member_id == group.leader_id:
            listed = [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata_for(group.protocol_name),
                }
                for m in group.members.values()
            ]
        return {
            "error_code": ErrorCode.NONE,
            "generation_id": group.generation_id,
            "protocol_type": group.protocol_type,
            "protocol_name": group.protocol_name,
            "leader": group.leader_id or "",
            "member_id": member.member_id,
            "members": listed,
        }

    # -- rebalance --------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: ClassicGroup, reason: str, now: int) -> None:
        if group.is_in(S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY):
            self._prepare_rebalance(group, reason, now)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str, now: int) -> None:
        if group.is_in(S.COMPLETING_REBALANCE):
            for member in group.members.values():
                member.assignment = b""
            self._propagate_assignment(group, ErrorCode.REBALANCE_IN_PROGRESS, now)
        group.pending_sync.clear()
        group.sync_deadline_ms = None
        delay_ms = self.config.initial_rebalance_delay_ms
        if group.is_in(S.EMPTY) and delay_ms > 0:
            group.join_deadline_ms = now + delay_ms
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms - delay_ms, 0)
            group.new_member_added = False
        else:
            group.join_deadline_ms = now + group.rebalance_timeout_ms
            group.initial_delay_remaining_ms = None
        group.transition(S.PREPARING_REBALANCE, now)
        self.timers.schedule(("join", group.group_id), group.join_deadline_ms)
        log.info(
            "group %s generation %d: preparing rebalance (%s)",
            group.group_id,
            group.generation_id,
            reason,
        )
        self._maybe_complete_join(group, now)

    def _maybe_complete_join(self, group: ClassicGroup, now: int) -> None:
        if (
            group.is_in(S.PREPARING_REBALANCE)
            and group.initial_delay_remaining_ms is None
            and group.has_all_members_joined()
        ):
            self._complete_join(group, now)

    def on_join_deadline(self, group: ClassicGroup, now: int) -> None:
        deadline = group.join_deadline_ms
        if not group.is_in(S.PREPARING_REBALANCE) or deadline is None:
            return
        if deadline > now:
            self.timers.schedule(("join", group.group_id), deadline)
            return
        remaining = group.initial_delay_remaining_ms
        if remaining is not None and group.new_member_added and remaining > 0:
            # Members keep arriving: wait once more, within the rebalance timeout.
            delay_ms = min(self.config.initial_rebalance_delay_ms, remaining)
            group.new_member_added = False
            group.initial_delay_remaining_ms = remaining - delay_ms
            group.join_deadline_ms = now + delay_ms
            self.timers.schedule(("join", group.group_id), group.join_deadline_ms)
            return
        group.initial_delay_remaining_ms = None
        self._complete_join(group, now)

    def _complete_join(self, group: ClassicGroup, now: int) -> None:
        group.join_deadline_ms = None
        absent = [m for m in group.members.values() if m.join_request is None]
        for member in absent:
            if member.group_instance_id is None:  # static members wait for their session
                group.remove_member(member.member_id)
                log.info(
                    "group %s generation %d: member %s removed, did not rejoin in time",
                    group.group_id,
                    group.generation_id,
                    member.member_id,
                )
        if not group.members:
            self._become_empty(group, now)
            return
        if not group.elect_joined_leader():
            log.error(
                "group %s: no member rejoined; waiting another rebalance timeout", group.group_id
            )
            group.join_deadline_ms = now + group.rebalance_timeout_ms
            self.timers.schedule(("join", group.group_id), group.join_deadline_ms)
            return
        group.generation_id += 1
        group.protocol_name = group.select_protocol()
        group.transition(S.COMPLETING_REBALANCE, now)
        for member in group.members.values():
            if member.join_request is not None:
                self.out.reply(member.join_request, self._join_result(group, member))
                member.join_request = None
            member.is_new = False
            self._heartbeat(group, member, now)
            group.pending_sync.add(member.member_id)
        group.sync_deadline_ms = now + group.rebalance_timeout_ms
        self.timers.schedule(("sync", group.group_id), group.sync_deadline_ms)
        log.info(
            "group %s generation %d: join complete, protocol %s, leader %s, members %s",
            group.group_id,
            group.generation_id,
            group.protocol_name,
            group.leader_id,
            ", ".join(group.members),
        )

    def _become_empty(self, group: ClassicGroup, now: int) -> None:
        group.generation_id += 1
        group.protocol_name = None
        group.leader_id = None
        group.transition(S.EMPTY, now)
        log.info("group %s generation %d: empty", group.group_id, group.generation_id)
        if group.offsets:
            # Without this record a reload would bring back the last stable members.
            record = GroupMetadataRecord(group.group_id, snapshot(group))
            self.out.persist([record], now, lambda error, _: _warn_failed(group, error))
        else:
            self.forget_group(group, now)

    # -- SyncGroup ----------------------------------------------------------------------

    def sync(self, request_id: int, request: GroupRequest, now: int) -> None:
        body = request.body
        group = self.groups.get(body["group_id"])
        error = self._check_sync(group, body)
        if error is not None:
            self.out.reply(request_id, sync_result(error))
            return
        assert group is not None
        member = group.members[body["member_id"]]
        if group.is_in(S.STABLE):
            group.pending_sync.discard(member.member_id)
            self._heartbeat(group, member, now)
            self.out.reply(
                request_id,
                sync_result(
                    ErrorCode.NONE, member.assignment, group.protocol_type, group.protocol_name
                ),
            )
            return
        if member.sync_request is not None:
            self.out.reply(member.sync_request, sync_result(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_request = request_id
        group.pending_sync.discard(member.member_id)
        if member.member_id == group.leader_id:
            given = {a["member_id"]: a["assignment"] or b"" for a in body["assignments"]}
            assignments = {member_id: given.get(member_id, b"") for member_id in group.members}
            self._store_assignment(group, assignments, now)

    def _check_sync(self, group: ClassicGroup | None, body: Any) -> ErrorCode | None:
        if not body["group_id"]:
            return ErrorCode.INVALID_GROUP_ID
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = validate_member(group, body["member_id"], body.get("group_instance_id"))
        if error is not None:
            return error
        if body["generation_id"] != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        protocol_type, protocol_name = body.get("protocol_type"), body.get("protocol_name")
        if protocol_type is not None and protocol_type != group.protocol_type:
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if protocol_name is not None and protocol_name != group.protocol_name:
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if group.is_in(S.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(S.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return None

    def _store_assignment(self, group: ClassicGroup, assignments: dict[str, bytes], now: int):
        generation = group.generation_id
        log.info(
            "group %s generation %d: assignment from leader %s for %d members",
            group.group_id,
            generation,
            group.leader_id,
            len(assignments),
        )

        def done(error: ErrorCode, now_ms: int) -> None:
            # Members may have come or gone while the write was in flight.
            if (
                self.groups.get(group.group_id) is not group
                or not group.is_in(S.COMPLETING_REBALANCE)
                or group.generation_id != generation
            ):
                return
            if error:
                log.warning("group %s: storing assignment failed: %s", group.group_id, error.name)
                for member in group.members.values():
                    member.assignment = b""
                self._propagate_assignment(group, write_error(error), now_ms)
                self._prepare_rebalance(group, f"assignment write failed ({error.name})", now_ms)
                return
            for member in group.members.values():
                member.assignment = assignments.get(member.member_id, b"")
            self._propagate_assignment(group, ErrorCode.NONE, now_ms)
            group.transition(S.STABLE, now_ms)
            log.info("group %s generation %d: stable", group.group_id, generation)

        record = GroupMetadataRecord(group.group_id, snapshot(group, assignments))
        self.out.persist([record], now, done)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode, now: int) -> None:
        for member in group.members.values():
            if member.sync_request is None:
                continue
            if error:
                result = sync_result(error)
            else:
                result = sync_result(
                    error, member.assignment, group.protocol_type, group.protocol_name
                )
            self.out.reply(member.sync_request, result)
            member.sync_request = None
            self._heartbeat(group, member, now)

    def on_sync_deadline(self, group: ClassicGroup, now: int) -> None:
        """Members that got the join answer but never sent SyncGroup are removed."""
        deadline = group.sync_deadline_ms
        if deadline is None or not group.is_in(S.COMPLETING_REBALANCE, S.STABLE):
            return
        if deadline > now:
            self.timers.schedule(("sync", group.group_id), deadline)
            return
        group.sync_deadline_ms = None
        if not group.pending_sync:
            return
        missing = sorted(group.pending_sync)
        for member_id in missing:
            self._answer_waiting(group.members[member_id], ErrorCode.UNKNOWN_MEMBER_ID)
            group.remove_member(member_id)
        log.info(
            "group %s generation %d: members %s removed, no SyncGroup in time",
            group.group_id,
            group.generation_id,
            ", ".join(missing),
        )
        self._prepare_rebalance(group, "members did not sync", now)

    # -- Heartbeat, LeaveGroup, expiry ----------------------------------------------------

    def heartbeat(self, request_id: int, request: GroupRequest, now: int) -> None:
        body = request.body
        error = self._check_heartbeat(body)
        if error is None:
            group = self.groups[body["group_id"]]
            self._heartbeat(group, group.members[body["member_id"]], now)
            if group.is_in(S.PREPARING_REBALANCE):
                error = ErrorCode.REBALANCE_IN_PROGRESS
        self.out.reply(request_id, {"error_code": error or ErrorCode.NONE})

    def _check_heartbeat(self, body: Any) -> ErrorCode | None:
        if not body["group_id"]:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(body["group_id"])
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = validate_member(group, body["member_id"], body.get("group_instance_id"))
        if error is not None:
            return error
        if body["generation_id"] != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_in(S.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None

    def _heartbeat(self, group: ClassicGroup, member: Member, now: int) -> None:
        member.expires_ms = now + member.session_timeout_ms
        self.timers.schedule(("session", group.group_id, member.member_id), member.expires_ms)

    def touch(self, group: ClassicGroup, member_id: str, now: int) -> None:
        """A commit from a member counts as a heartbeat."""
        member = group.members.get(member_id)
        if member is not None:
            self._heartbeat(group, member, now)

    def leave(self, request_id: int, request: GroupRequest, now: int) -> None:
        body = request.body
        if request.version < 3:
            leaving = [{"member_id": body["member_id"], "group_instance_id": None}]
        else:
            leaving = body["members"]
        group = self.groups.get(body["group_id"])
        if not body["group_id"]:
            top, results = ErrorCode.INVALID_GROUP_ID, []
        elif group is not None and group.is_in(S.DEAD):
            top, results = ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        else:
            top = ErrorCode.NONE
            results = [self._leave_one(group, m, now) for m in leaving]
        if request.version < 3 and results:
            top = ErrorCode(results[0]["error_code"])
        self.out.reply(request_id, {"error_code": top, "members": results})
        if group is not None and group.is_in(S.EMPTY):
            self.forget_group(group, now)

    def _leave_one(self, group: ClassicGroup | None, leaving: Any, now: int) -> dict:
        member_id, instance_id = leaving["member_id"], leaving.get("group_instance_id")
        error = ErrorCode.UNKNOWN_MEMBER_ID
        if group is None:
            pass
        elif not member_id:
            current = group.static_members.get(instance_id) if instance_id is not None else None
            if current is not None:
                self.remove_member(group, current, "left (by instance id)", now)
                error = ErrorCode.NONE
        elif member_id in group.pending_members:
            del group.pending_members[member_id]
            self._maybe_complete_join(group, now)
            error = ErrorCode.NONE
        else:
            error = validate_member(group, member_id, instance_id) or ErrorCode.NONE
            if not error:
                self.remove_member(group, member_id, "left", now)
        return {"member_id": member_id, "group_instance_id": instance_id, "error_code": error}

    def remove_member(self, group: ClassicGroup, member_id: str, reason: str, now: int) -> None:
        member = group.members[member_id]
        self._answer_waiting(member, ErrorCode.UNKNOWN_MEMBER_ID)
        group.remove_member(member_id)
        log.info(
            "group %s generation %d: member %s %s",
            group.group_id,
            group.generation_id,
            member_id,
            reason,
        )
        if group.is_in(S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"member {member_id} {reason}", now)
        else:
            self._maybe_complete_join(group, now)

    def _answer_waiting(self, member: Member, error: ErrorCode) -> None:
        if member.join_request is not None:
            self.out.reply(member.join_request, join_error(member.member_id, error))
            member.join_request = None
        if member.sync_request is not None:
            self.out.reply(member.sync_request, sync_result(error))
            member.sync_request = None

    def on_session_timer(self, group: ClassicGroup, member_id: str, now: int) -> None:
        member = group.members.get(member_id)
        if member is None:
            return
        waiting = member.join_request is not None or member.sync_request is not None
        if waiting and not member.is_new:
            # A member parked in a join or sync cannot heartbeat; the rebalance
            # and sync deadlines bound how long it waits.
            self.timers.schedule(
                ("session", group.group_id, member_id), now + member.session_timeout_ms
            )
        elif member.expires_ms > now:
            self.timers.schedule(("session", group.group_id, member_id), member.expires_ms)
        else:
            self.remove_member(group, member_id, "session expired", now)
            if group.is_in(S.EMPTY):
                self.forget_group(group, now)

    def on_pending_timer(self, group: ClassicGroup, member_id: str, now: int) -> None:
        expires_ms = group.pending_members.get(member_id)
        if expires_ms is None:
            return
        if expires_ms > now:
            self.timers.schedule(("pending", group.group_id, member_id), expires_ms)
            return
        del group.pending_members[member_id]
        log.info("group %s: pending member %s never rejoined", group.group_id, member_id)
        self._maybe_complete_join(group, now)
        if group.is_in(S.EMPTY):
            self.forget_group(group, now)

    def unload(self, group: ClassicGroup, now: int) -> None:
        """The partition moved away: whoever waits is told to find the new coordinator."""
        for member in group.members.values():
            self._answer_waiting(member, ErrorCode.NOT_COORDINATOR)
        group.transition(S.DEAD, now)


def _names(body: Any) -> list[str]:
    return [p["name"] for p in body["protocols"]]


def _protocols(body: Any) -> list[tuple[str, bytes]]:
    return [(p["name"], p["metadata"] or b"") for p in body["protocols"]]


def _rebalance_timeout_ms(body: Any) -> int:
    """JoinGroup v0 has no rebalance timeout: the session timeout serves (as in Kafka)."""
    timeout = body.get("rebalance_timeout_ms", -1)
    return body["session_timeout_ms"] if timeout < 0 else timeout


def _warn_failed(group: ClassicGroup, error: ErrorCode) -> None:
    if error:
        log.warning("group %s: storing empty group metadata failed: %s", group.group_id, error.name)
