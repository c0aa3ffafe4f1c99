"""Consumer-group administration: list, describe (with lag), and reset offsets.

``GroupAdmin`` is what `trilog group ...` runs on: ListGroups at every broker,
DescribeGroups and OffsetFetch at the group's coordinator, ListOffsets at the
partition leaders (through a manually assigned Consumer), and an OffsetCommit
outside any generation (generation -1, no member id) to reset the offsets of a
group without members, which Kafka's coordinator accepts only for such groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from consumer.assignors import PROTOCOL_TYPE, decode_assignment
from consumer.consumer import Consumer, TopicPartition
from consumer.group import (
    commit_body,
    find_coordinator,
    first_partition_error,
    offset_fetch_body,
    parse_committed,
)
from producer.client import KafkaClientError, as_error_code, pooled_request
from protocol.api import ApiKey
from protocol.errors import ErrorCode, MalformedMessageError

REQUEST_TIMEOUT_MS = 30000


@dataclass(frozen=True, slots=True)
class MemberInfo:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_end: int | None
    member_id: str | None

    @property
    def lag(self) -> int | None:
        if self.log_end is None or self.committed is None:
            return None
        return max(0, self.log_end - self.committed)


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator: tuple[str, int]
    members: list[MemberInfo] = field(default_factory=list)
    partitions: list[PartitionLag] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "state": self.state,
            "protocol_type": self.protocol_type,
            "protocol": self.protocol,
            "coordinator": "{}:{}".format(*self.coordinator),
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "assignment": m.assignment,
                }
                for m in self.members
            ],
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed_offset": p.committed,
                    "log_end_offset": p.log_end,
                    "lag": p.lag,
                    "member_id": p.member_id,
                }
                for p in self.partitions
            ],
        }


class GroupAdmin:
    """``async with GroupAdmin(bootstrap) as admin:`` then the group operations."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(bootstrap, auto_offset_reset="none")

    async def __aenter__(self) -> GroupAdmin:
        await self._consumer.__aenter__()
        self._cluster = self._consumer._cluster
        self._pool = self._consumer._pool
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._consumer.close()

    async def list_groups(self) -> list[tuple[str, str]]:
        """(group id, protocol type) of every group, asked of every broker."""
        await self._cluster.refresh()
        found: dict[str, str] = {}
        for address in sorted(self._cluster.brokers.values()):
            response = await pooled_request(
                self._pool, address, ApiKey.LIST_GROUPS, {}, timeout_ms=REQUEST_TIMEOUT_MS
            )
            code = as_error_code(response.error_code)
            if code != ErrorCode.NONE:
                raise KafkaClientError(
                    f"ListGroups at {address[0]}:{address[1]}: {code.name}", code
                )
            found.update((g.group_id, g.protocol_type) for g in response.groups)
        return sorted(found.items())

    async def describe(self, group_id: str) -> GroupDescription:
        """Members, their assignments, and every committed partition's lag."""
        coordinator = await find_coordinator(
            self._cluster, self._pool, group_id, REQUEST_TIMEOUT_MS
        )
        response = await self._at(coordinator, ApiKey.DESCRIBE_GROUPS, {"groups": [group_id]})
        (group,) = response.groups
        code = as_error_code(group.error_code)
        if code != ErrorCode.NONE:
            raise KafkaClientError(f"group {group_id}: DescribeGroups: {code.name}", code)
        members = [_member(m, group.protocol_type) for m in group.members]
        committed = await self.committed(group_id, coordinator=coordinator)
        owner = {
            (t, p): m.member_id for m in members for t, parts in m.assignment.items() for p in parts
        }
        tps = sorted(set(committed) | set(owner))
        ends = await self._end_offsets(tps)
        lags = [
            PartitionLag(t, p, committed.get((t, p)), ends.get((t, p)), owner.get((t, p)))
            for t, p in tps
        ]
        return GroupDescription(
            group_id,
            group.group_state,
            group.protocol_type,
            group.protocol_data,
            coordinator,
            members,
            lags,
        )

    async def committed(
        self, group_id: str, *, coordinator: tuple[str, int] | None = None
    ) -> dict[TopicPartition, int]:
        """Every offset the group has committed."""
        if coordinator is None:
            coordinator = await find_coordinator(
                self._cluster, self._pool, group_id, REQUEST_TIMEOUT_MS
            )
        response = await self._at(
            coordinator, ApiKey.OFFSET_FETCH, offset_fetch_body(group_id, None)
        )
        code = as_error_code(response.get("error_code", 0))
        if code != ErrorCode.NONE:
            raise KafkaClientError(f"group {group_id}: OffsetFetch: {code.name}", code)
        return {tp: o for tp, o in parse_committed(response).items() if o is not None}

    async def partitions(self, topic: str) -> list[TopicPartition]:
        return [(topic, p) for p in range(await self._consumer.partitions_for(topic))]

    async def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._consumer.beginning_offsets(tps)

    async def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._consumer.end_offsets(tps)

    async def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit as an administrator (no generation): only a group without members accepts it."""
        coordinator = await find_coordinator(
            self._cluster, self._pool, group_id, REQUEST_TIMEOUT_MS
        )
        body = commit_body(None, offsets, -1, "", group_id=group_id)
        code = first_partition_error(await self._at(coordinator, ApiKey.OFFSET_COMMIT, body))
        if code != ErrorCode.NONE:
            raise KafkaClientError(f"group {group_id}: OffsetCommit: {code.name}", code)

    async def _end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Log end offsets of the partitions that exist (a deleted topic shows no lag)."""
        ends: dict[TopicPartition, int] = {}
        for topic in sorted({t for t, _ in tps}):
            try:
                count = await self._consumer.partitions_for(topic)
            except KafkaClientError:
                continue
            ends.update(
                await self.end_offsets([tp for tp in tps if tp[0] == topic and tp[1] < count])
            )
        return ends

    async def _at(self, address: tuple[str, int], api_key: int, body: Mapping[str, Any]) -> Any:
        return await pooled_request(
            self._pool, address, api_key, body, timeout_ms=REQUEST_TIMEOUT_MS
        )


def _member(m: Any, protocol_type: str) -> MemberInfo:
    assignment: dict[str, list[int]] = {}
    if protocol_type == PROTOCOL_TYPE and m.member_assignment:
        try:
            assignment = decode_assignment(m.member_assignment)
        except MalformedMessageError:
            assignment = {}
    return MemberInfo(
        m.member_id, m.get("group_instance_id"), m.client_id, m.client_host, assignment
    )
