"""The client side of the classic group protocol (Kafka's ConsumerCoordinator role).

``GroupCoordinatorClient`` finds the group's coordinator, joins (JoinGroup,
answering MEMBER_ID_REQUIRED with a second join, KIP-394), computes the
assignment when it is the leader, syncs, heartbeats, commits and fetches
offsets, and leaves. It owns no task: the consumer runs ``heartbeat_loop`` in
its nursery and calls ``join`` from the application's task, so a rebalance
happens where records are handed out, after the consumer has committed what
it handed out before (Kafka's eager protocol: everything is revoked on every
rebalance).

Group traffic uses its own ConnectionPool, as Kafka's consumer uses a separate
connection to the coordinator: a long-polling Fetch to the same broker never
delays a heartbeat.

Error handling, as Kafka's consumer does it:
* NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a network failure: forget the
  coordinator, find it again, retry;
* COORDINATOR_LOAD_IN_PROGRESS: retry after the backoff;
* REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION: rejoin, keeping the member id;
* UNKNOWN_MEMBER_ID: rejoin as a new member;
* anything else (FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL, ...) is fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from consumer.assignors import (
    ASSIGNORS,
    PROTOCOL_TYPE,
    Assignment,
    Member,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from producer.client import (
    Cluster,
    ConnectionPool,
    KafkaClientError,
    as_error_code,
    pooled_request,
)
from protocol.api import ApiKey
from protocol.errors import ErrorCode, MalformedMessageError
from protocol.schema import Data

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
Address = tuple[str, int]

COORDINATOR_LOST = frozenset(
    {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NETWORK_EXCEPTION}
)
REJOIN = frozenset({ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION})
JOIN_MARGIN_MS = 5000
"""Extra wait for a JoinGroup beyond the rebalance timeout (Kafka adds 5 s too)."""
JOIN_ATTEMPTS_MAX = 1000
"""A bound on join retries in one rebalance; each waits retry_backoff_ms or longer."""


class CommitFailedError(KafkaClientError):
    """The group rebalanced: this member's commit was refused; the records it covered
    may be delivered to another member."""


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """One member's group configuration, with Kafka's names and defaults."""

    group_id: str
    group_instance_id: str | None = None
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 3000
    rebalance_timeout_ms: int = 300000
    """Kafka's max.poll.interval.ms: how long the coordinator waits for us to rejoin."""
    assignors: tuple[str, ...] = ("range", "roundrobin")
    retry_backoff_ms: int = 100
    request_timeout_ms: int = 30000

    def __post_init__(self) -> None:
        if not self.group_id:
            raise ValueError("group_id must not be empty")
        if not 0 < self.heartbeat_interval_ms < self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be > 0 and < session_timeout_ms")
        unknown = [name for name in self.assignors if name not in ASSIGNORS]
        if unknown or not self.assignors:
            raise ValueError(f"assignors must be among {sorted(ASSIGNORS)}, not {unknown}")


@dataclass(frozen=True, slots=True)
class Generation:
    """What one completed join gave this member."""

    generation_id: int
    member_id: str
    protocol_name: str
    leader_id: str
    assignment: Assignment


class GroupCoordinatorClient:
    """Membership of one consumer in one group; see the module docstring."""

    def __init__(self, settings: GroupSettings, cluster: Cluster, pool: ConnectionPool) -> None:
        self.settings = settings
        self.cluster = cluster
        self.pool = pool
        self.member_id = ""
        self.generation: Generation | None = None
        self.rejoin_needed = trio.Event()
        """Set when the coordinator says a rebalance started or our generation is stale."""
        self._coordinator: Address | None = None
        self._backoff_s = settings.retry_backoff_ms / 1000

    # -- coordinator -------------------------------------------------------------

    async def coordinator(self) -> Address:
        """The coordinator's address, found (and retried) until some broker names it."""
        while self._coordinator is None:
            try:
                self._coordinator = await find_coordinator(
                    self.cluster,
                    self.pool,
                    self.settings.group_id,
                    self.settings.request_timeout_ms,
                )
                log.info(
                    "group %s: coordinator at %s:%d", self.settings.group_id, *self._coordinator
                )
            except KafkaClientError as exc:
                if exc.code is not None and not exc.code.retriable:
                    raise
                log.info("group %s: no coordinator yet: %s", self.settings.group_id, exc)
                await self._refresh_metadata()
                await trio.sleep(self._backoff_s)
        return self._coordinator

    def coordinator_lost(self) -> None:
        self._coordinator = None

    async def _request(self, api_key: int, body: Mapping[str, Any], timeout_ms: int) -> Data:
        """One request to the coordinator; a network failure forgets it (NETWORK_EXCEPTION)."""
        address = await self.coordinator()
        try:
            return await pooled_request(self.pool, address, api_key, body, timeout_ms=timeout_ms)
        except KafkaClientError as exc:
            self.coordinator_lost()
            raise KafkaClientError(str(exc), ErrorCode.NETWORK_EXCEPTION) from None

    async def _retry_after(self, code: ErrorCode) -> None:
        """Handle a retriable coordinator error: forget the coordinator if it moved, back off."""
        if code in COORDINATOR_LOST:
            self.coordinator_lost()
        await trio.sleep(self._backoff_s)

    async def _refresh_metadata(self) -> None:
        try:
            await self.cluster.refresh()
        except KafkaClientError as exc:
            log.info("metadata refresh failed: %s", exc)

    # -- joining -------------------------------------------------------------------

    async def join(self, topics: Sequence[str], owned: Mapping[str, Iterable[int]]) -> Generation:
        """JoinGroup then SyncGroup until a generation is complete; return it."""
        self.generation = None
        subscription = Subscription(
            tuple(sorted(topics)), None, {t: tuple(p) for t, p in owned.items()}
        )
        metadata = encode_subscription(subscription)
        for _ in range(JOIN_ATTEMPTS_MAX):
            self.rejoin_needed = trio.Event()
            joined = await self._join_once(metadata)
            if joined is None:
                continue
            generation = await self._sync(joined)
            if generation is not None:
                self.generation = generation
                log.info(
                    "group %s: generation %d, member %s, assigned %s",
                    self.settings.group_id,
                    generation.generation_id,
                    generation.member_id,
                    generation.assignment,
                )
                return generation
        raise KafkaClientError(f"group {self.settings.group_id}: gave up joining")

    async def _join_once(self, metadata: bytes) -> Data | None:
        """One JoinGroup; None if it must be retried (after whatever the error asks)."""
        s = self.settings
        body = {
            "group_id": s.group_id,
            "session_timeout_ms": s.session_timeout_ms,
            "rebalance_timeout_ms": s.rebalance_timeout_ms,
            "member_id": self.member_id,
            "group_instance_id": s.group_instance_id,
            "protocol_type": PROTOCOL_TYPE,
            "protocols": [{"name": name, "metadata": metadata} for name in s.assignors],
        }
        timeout_ms = max(s.request_timeout_ms, s.rebalance_timeout_ms + JOIN_MARGIN_MS)
        try:
            response = await self._request(ApiKey.JOIN_GROUP, body, timeout_ms)
        except KafkaClientError as exc:
            log.info("group %s: JoinGroup failed: %s", s.group_id, exc)
            await self._retry_after(ErrorCode.NETWORK_EXCEPTION)
            return None
        code = as_error_code(response.error_code)
        if code == ErrorCode.NONE:
            self.member_id = response.member_id
            return response
        if code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            return None
        self._check_retriable("JoinGroup", code)
        await self._retry_after(code)
        return None

    def _check_retriable(self, api: str, code: ErrorCode) -> None:
        """Reset the member id where the coordinator forgot us; raise on a fatal error."""
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id = ""
        elif code not in REJOIN and not code.retriable:
            raise KafkaClientError(f"group {self.settings.group_id}: {api}: {code.name}", code)
        log.info("group %s: %s: %s", self.settings.group_id, api, code.name)

    async def _sync(self, joined: Data) -> Generation | None:
        """SyncGroup (with the assignment if we lead); None if the join must be redone."""
        s = self.settings
        assignments = []
        if joined.leader == joined.member_id:
            plan = await self._assign(joined.protocol_name, joined.members)
            assignments = [
                {"member_id": m, "assignment": encode_assignment(a)} for m, a in plan.items()
            ]
        body = {
            "group_id": s.group_id,
            "generation_id": joined.generation_id,
            "member_id": self.member_id,
            "group_instance_id": s.group_instance_id,
            "protocol_type": PROTOCOL_TYPE,
            "protocol_name": joined.protocol_name,
            "assignments": assignments,
        }
        timeout_ms = max(s.request_timeout_ms, s.rebalance_timeout_ms + JOIN_MARGIN_MS)
        try:
            response = await self._request(ApiKey.SYNC_GROUP, body, timeout_ms)
        except KafkaClientError as exc:
            log.info("group %s: SyncGroup failed: %s", s.group_id, exc)
            await self._retry_after(ErrorCode.NETWORK_EXCEPTION)
            return None
        code = as_error_code(response.error_code)
        if code != ErrorCode.NONE:
            self._check_retriable("SyncGroup", code)
            await self._retry_after(code)
            return None
        try:
            assignment = decode_assignment(response.assignment)
        except MalformedMessageError as exc:
            raise KafkaClientError(
                f"group {s.group_id}: bad assignment from leader: {exc}"
            ) from None
        return Generation(
            joined.generation_id, self.member_id, joined.protocol_name, joined.leader, assignment
        )

    async def _assign(self, protocol_name: str, members: Sequence[Data]) -> dict[str, Assignment]:
        """The leader's job: decode every subscription, learn partition counts, assign."""
        assignor = ASSIGNORS.get(protocol_name)
        if assignor is None:
            raise KafkaClientError(
                f"group {self.settings.group_id}: unknown assignor {protocol_name}"
            )
        decoded = []
        for m in members:
            try:
                subscription = decode_subscription(m.metadata)
            except MalformedMessageError as exc:
                raise KafkaClientError(f"member {m.member_id}: bad subscription: {exc}") from None
            decoded.append(Member(m.member_id, m.get("group_instance_id"), subscription))
        topics = sorted({t for m in decoded for t in m.subscription.topics})
        await self.cluster.refresh(topics)
        counts = {
            t: len(meta.leaders)
            for t in topics
            if (meta := self.cluster.topics.get(t)) is not None and not meta.error
        }
        return assignor.assign(decoded, counts)

    # -- staying in the group ----------------------------------------------------------

    async def heartbeat_loop(
        self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Heartbeat every heartbeat_interval_ms while a generation is complete; set
        rejoin_needed when the coordinator says so. Runs until cancelled."""
        task_status.started()
        interval_s = self.settings.heartbeat_interval_ms / 1000
        while True:
            await trio.sleep(interval_s)
            generation = self.generation
            if generation is None or self.rejoin_needed.is_set():
                continue
            code = await self._heartbeat(generation)
            if code == ErrorCode.NONE or self.generation is not generation:
                continue
            if code in COORDINATOR_LOST or code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                self.coordinator_lost()
                continue
            if code == ErrorCode.UNKNOWN_MEMBER_ID:
                self.member_id = ""
            log.info("group %s: heartbeat: %s; rejoining", self.settings.group_id, code.name)
            self.rejoin_needed.set()

    async def _heartbeat(self, generation: Generation) -> ErrorCode:
        s = self.settings
        body = {
            "group_id": s.group_id,
            "generation_id": generation.generation_id,
            "member_id": generation.member_id,
            "group_instance_id": s.group_instance_id,
        }
        try:
            response = await self._request(ApiKey.HEARTBEAT, body, s.request_timeout_ms)
        except KafkaClientError as exc:
            log.info("group %s: heartbeat failed: %s", s.group_id, exc)
            return ErrorCode.NETWORK_EXCEPTION
        return as_error_code(response.error_code)

    async def leave(self) -> None:
        """LeaveGroup (dynamic members only: a static member keeps its place until its
        session expires, as in Kafka); errors are logged, not raised."""
        s = self.settings
        if not self.member_id or s.group_instance_id is not None or self._coordinator is None:
            return
        body = {
            "group_id": s.group_id,
            "member_id": self.member_id,
            "members": [{"member_id": self.member_id, "group_instance_id": None}],
        }
        try:
            response = await self._request(ApiKey.LEAVE_GROUP, body, s.request_timeout_ms)
            log.info("group %s: left (%s)", s.group_id, as_error_code(response.error_code).name)
        except KafkaClientError as exc:
            log.info("group %s: LeaveGroup failed: %s", s.group_id, exc)
        self.generation = None
        self.member_id = ""

    # -- offsets ---------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """OffsetCommit in the current generation, retried while the coordinator moves.

        CommitFailedError when the group has rebalanced (the caller must rejoin)."""
        generation = self.generation
        if generation is None:
            raise CommitFailedError(
                "not a member of a complete generation", ErrorCode.REBALANCE_IN_PROGRESS
            )
        body = commit_body(self.settings, offsets, generation.generation_id, generation.member_id)
        for _ in range(JOIN_ATTEMPTS_MAX):
            try:
                response = await self._request(
                    ApiKey.OFFSET_COMMIT, body, self.settings.request_timeout_ms
                )
            except KafkaClientError:
                await self._retry_after(ErrorCode.NETWORK_EXCEPTION)
                continue
            code = first_partition_error(response)
            if code == ErrorCode.NONE:
                return
            if code in REJOIN or code in (
                ErrorCode.UNKNOWN_MEMBER_ID,
                ErrorCode.FENCED_INSTANCE_ID,
            ):
                if code == ErrorCode.UNKNOWN_MEMBER_ID:
                    self.member_id = ""
                self.rejoin_needed.set()
                raise CommitFailedError(
                    f"group {self.settings.group_id}: commit: {code.name}", code
                )
            if not code.retriable:
                raise KafkaClientError(f"group {self.settings.group_id}: commit: {code.name}", code)
            await self._retry_after(code)
        raise KafkaClientError(f"group {self.settings.group_id}: gave up committing")

    async def committed(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offsets (None where nothing is committed)."""
        for _ in range(JOIN_ATTEMPTS_MAX):
            try:
                response = await self._request(
                    ApiKey.OFFSET_FETCH,
                    offset_fetch_body(self.settings.group_id, tps),
                    self.settings.request_timeout_ms,
                )
            except KafkaClientError:
                await self._retry_after(ErrorCode.NETWORK_EXCEPTION)
                continue
            code = as_error_code(response.get("error_code", 0))
            if code == ErrorCode.NONE:
                return parse_committed(response)
            if not code.retriable:
                raise KafkaClientError(
                    f"group {self.settings.group_id}: OffsetFetch: {code.name}", code
                )
            await self._retry_after(code)
        raise KafkaClientError(f"group {self.settings.group_id}: gave up fetching offsets")


# -- requests shared with the admin commands ---------------------------------------------------


async def find_coordinator(
    cluster: Cluster, pool: ConnectionPool, group_id: str, timeout_ms: int
) -> Address:
    """Ask any reachable broker for the group's coordinator; KafkaClientError with its code."""
    body = {"key": group_id, "key_type": 0}
    problems = []
    for attempt in range(2):
        if attempt or not cluster.brokers:
            await cluster.refresh()  # tries the bootstrap addresses too
        for address in list(cluster.brokers.values()):
            try:
                response = await pooled_request(
                    pool, address, ApiKey.FIND_COORDINATOR, body, timeout_ms=timeout_ms
                )
            except KafkaClientError as exc:
                problems.append(str(exc))
                continue
            code = as_error_code(response.error_code)
            if code != ErrorCode.NONE:
                raise KafkaClientError(f"group {group_id}: FindCoordinator: {code.name}", code)
            return response.host, response.port
    raise KafkaClientError(
        f"no broker reachable: {'; '.join(problems)}", ErrorCode.COORDINATOR_NOT_AVAILABLE
    )


def commit_body(
    settings: GroupSettings | None,
    offsets: Mapping[TopicPartition, int],
    generation_id: int,
    member_id: str,
    group_id: str | None = None,
) -> dict[str, Any]:
    """An OffsetCommit body (any version 2-7); generation -1 and member "" for a group
    without members (the admin reset)."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        topics.setdefault(topic, []).append(
            {
                "partition_index": partition,
                "committed_offset": offset,
                "committed_leader_epoch": -1,
                "commit_timestamp": -1,
                "committed_metadata": "",
            }
        )
    return {
        "group_id": settings.group_id if settings else group_id,
        "generation_id_or_member_epoch": generation_id,
        "member_id": member_id,
        "group_instance_id": settings.group_instance_id if settings else None,
        "retention_time_ms": -1,
        "topics": [{"name": t, "partitions": parts} for t, parts in topics.items()],
    }


def first_partition_error(response: Data) -> ErrorCode:
    """The first non-zero partition error of an OffsetCommit response, or NONE."""
    for topic in response.topics:
        for part in topic.partitions:
            if part.error_code:
                return as_error_code(part.error_code)
    return ErrorCode.NONE


def offset_fetch_body(group_id: str, tps: Iterable[TopicPartition] | None) -> dict[str, Any]:
    """An OffsetFetch body; tps None asks for every partition the group committed (v2+)."""
    if tps is None:
        return {"group_id": group_id, "topics": None, "require_stable": False}
    topics: dict[str, list[int]] = {}
    for topic, partition in sorted(tps):
        topics.setdefault(topic, []).append(partition)
    return {
        "group_id": group_id,
        "topics": [{"name": t, "partition_indexes": p} for t, p in topics.items()],
        "require_stable": False,
    }


def parse_committed(response: Data) -> dict[TopicPartition, int | None]:
    """tp -> committed offset (None for -1) from an OffsetFetch response."""
    out: dict[TopicPartition, int | None] = {}
    for topic in response.topics:
        for part in topic.partitions:
            code = as_error_code(part.error_code)
            if code != ErrorCode.NONE:
                raise KafkaClientError(
                    f"OffsetFetch {topic.name}-{part.partition_index}: {code.name}", code
                )
            offset = part.committed_offset
            out[(topic.name, part.partition_index)] = None if offset < 0 else offset
    return out
