"""A trio Kafka consumer for manually assigned partitions.

The application assigns partitions and optionally seeks; iterating the
consumer fetches from each partition's leader (one Fetch per leader broker,
long-polling ``fetch_max_wait_ms``) and yields records in offset order per
partition. Fetched bytes are decoded lazily, so what is buffered is bounded by
``fetch_max_bytes`` per broker. A partition without a position, or whose
position fell outside the log, is reset by ``auto_offset_reset`` (Kafka's
``SubscriptionState`` and ``Fetcher`` roles, in miniature).

With ``group_id`` and ``topics`` the consumer is a member of a classic
consumer group (consumer/group.py): the group assigns its partitions, which
start at the group's committed offsets; ``commit()`` commits positions, and
auto commit (on by default, as in Kafka) commits what was handed out before
each rebalance, every ``auto_commit_interval_ms`` and on close. A rebalance
happens inside ``getone()``: the heartbeat task only flags it (and interrupts
a long-polling fetch), so records are never revoked while the application
holds one it has not finished with.

With ``client_rack`` set, Fetch carries the rack (v11) and the consumer follows
the leader's ``preferred_read_replica`` answer (KIP-392): it fetches that
partition from the named replica until that replica answers with an error, then
goes back to the leader.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import trio

from consumer.group import CommitFailedError, GroupCoordinatorClient, GroupSettings
from producer.client import (
    CLIENT_ID,
    Cluster,
    ConnectionPool,
    KafkaClientError,
    as_error_code,
    parse_bootstrap,
    pooled_request,
    single_exception,
)
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.records import Header, Record, iter_records

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

EARLIEST = -2
LATEST = -1
RESETS = {"earliest": EARLIEST, "latest": LATEST, "none": None}
REFRESH_ERRORS = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
    }
)
LIST_OFFSETS_ATTEMPTS_MAX = 10
CLOSE_TIMEOUT_S = 5.0
"""How long close() may spend on the final commit and LeaveGroup."""


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """One record as the application sees it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class OffsetAndTimestamp:
    """The first offset whose timestamp is at or after the one asked for."""

    offset: int
    timestamp: int


class OffsetOutOfRangeError(KafkaClientError):
    """A position fell outside the log and auto_offset_reset is "none"."""


class NoOffsetForPartitionError(KafkaClientError):
    """A partition has no position and auto_offset_reset is "none"."""


class _Completed:
    """Records fetched for one partition, decoded as they are consumed."""

    __slots__ = ("tp", "records")

    def __init__(self, tp: TopicPartition, records: Iterator[Record]) -> None:
        self.tp = tp
        self.records = records


class Consumer:
    """Read assigned partitions; use as ``async with Consumer(...) as c: c.assign(...)``."""

    def __init__(
        self,
        bootstrap: str,
        *,
        group_id: str | None = None,
        topics: Iterable[str] = (),
        group_instance_id: str | None = None,
        session_timeout_ms: int = 45000,
        heartbeat_interval_ms: int = 3000,
        max_poll_interval_ms: int = 300000,
        partition_assignment_strategy: Iterable[str] = ("range", "roundrobin"),
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        client_rack: str | None = None,
        auto_offset_reset: str = "latest",
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 8 * 1024 * 1024,
        partition_max_bytes: int = 1024 * 1024,
        request_timeout_ms: int = 30000,
        retry_backoff_ms: int = 100,
        client_id: str = CLIENT_ID,
    ) -> None:
        self._topics = tuple(sorted(set(topics)))
        self._group_settings: GroupSettings | None = None
        if group_id is not None:
            if not self._topics:
                raise ValueError("a group member needs topics=[...] to subscribe to")
            self._group_settings = GroupSettings(
                group_id,
                group_instance_id,
                session_timeout_ms,
                heartbeat_interval_ms,
                max_poll_interval_ms,
                tuple(partition_assignment_strategy),
                retry_backoff_ms,
                request_timeout_ms,
            )
        elif self._topics:
            raise ValueError("topics=[...] needs a group_id; without one, use assign()")
        if auto_offset_reset not in RESETS:
            raise ValueError(
                f"auto_offset_reset must be earliest, latest or none, not {auto_offset_reset!r}"
            )
        self._bootstrap = parse_bootstrap(bootstrap)
        self.auto_offset_reset = auto_offset_reset
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.partition_max_bytes = partition_max_bytes
        self.request_timeout_ms = request_timeout_ms
        self.retry_backoff_s = retry_backoff_ms / 1000
        self._client_id = client_id
        self.enable_auto_commit = enable_auto_commit
        self.auto_commit_interval_s = auto_commit_interval_ms / 1000
        self.client_rack = client_rack
        self._group: GroupCoordinatorClient | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._next_auto_commit_s = 0.0
        self._paused: set[TopicPartition] = set()
        self._preferred: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int | None] = {}
        self._completed: deque[_Completed] = deque()
        self._stack = AsyncExitStack()
        self._nursery: trio.Nursery | None = None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Consumer:
        if self._nursery is not None:
            raise RuntimeError("a Consumer can be entered only once")
        await self._stack.__aenter__()
        try:
            self._nursery = await self._stack.enter_async_context(trio.open_nursery())
            self._pool = ConnectionPool(self._nursery, client_id=self._client_id)
            self._cluster = Cluster(
                self._bootstrap,
                self._pool,
                allow_auto_topic_creation=False,
                request_timeout_ms=self.request_timeout_ms,
            )
            await self._cluster.refresh()
            if self._group_settings is not None:
                await self._start_group(self._group_settings)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start_group(self, settings: GroupSettings) -> None:
        """A separate pool for the coordinator, and the heartbeat task in our nursery."""
        assert self._nursery is not None
        pool = ConnectionPool(self._nursery, client_id=self._client_id)
        self._group = GroupCoordinatorClient(settings, self._cluster, pool)
        await self._nursery.start(self._group.heartbeat_loop)

    async def close(self) -> None:
        """Commit (with auto commit) and leave the group, then close every connection.

        The consumer cannot be used afterwards. The commit and LeaveGroup are
        shielded from cancellation and bounded by CLOSE_TIMEOUT_S."""
        group, self._group = self._group, None
        if group is not None and group.generation is not None:
            with trio.CancelScope(deadline=trio.current_time() + CLOSE_TIMEOUT_S, shield=True):
                if self.enable_auto_commit:
                    await self._commit_quietly(group)
                await group.leave()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        await self._stack.aclose()

    # -- assignment and positions --------------------------------------------

    async def partitions_for(self, topic: str) -> int:
        """The topic's number of partitions; KafkaClientError if it does not exist."""
        meta = await self._cluster.topic(topic)
        if meta.error:
            await self._cluster.refresh([topic])
            meta = self._cluster.topics[topic]
        if meta.error:
            raise KafkaClientError(f"topic {topic}: {meta.error.name}", meta.error)
        return len(meta.leaders)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions; positions of partitions kept are kept."""
        if self._group_settings is not None:
            raise RuntimeError("a group member's partitions are assigned by its group")
        self._set_assignment(partitions)

    def _set_assignment(self, partitions: Iterable[TopicPartition]) -> None:
        wanted = [(str(t), int(p)) for t, p in partitions]
        self._positions = {tp: self._positions.get(tp) for tp in wanted}
        self._completed = deque(c for c in self._completed if c.tp in self._positions)
        self._paused &= set(self._positions)
        self._preferred = {tp: n for tp, n in self._preferred.items() if tp in self._positions}

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching these partitions (their positions stay) until resume()."""
        for tp in partitions:
            self._check_assigned(tp)
            self._paused.add(tp)
        self._completed = deque(c for c in self._completed if c.tp not in self._paused)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch these paused partitions again, from their positions."""
        for tp in partitions:
            self._paused.discard(tp)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the next record to be returned for tp (None: not set yet)."""
        self._check_assigned(tp)
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make offset the next record returned for tp."""
        self._check_assigned(tp)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self._positions[tp] = offset
        self._completed = deque(c for c in self._completed if c.tp != tp)

    async def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Move to each partition's log start offset (all assigned ones by default)."""
        await self._seek_to(EARLIEST, partitions)

    async def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Move to each partition's log end offset: only records produced later are read."""
        await self._seek_to(LATEST, partitions)

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the earliest offset with timestamp >= the one given (or None)."""
        found = await self._list_offsets(timestamps)
        return {
            tp: None if offset < 0 else OffsetAndTimestamp(offset, timestamp)
            for tp, (offset, timestamp) in found.items()
        }

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Each partition's log start offset (assigned or not)."""
        found = await self._list_offsets(dict.fromkeys(partitions, EARLIEST))
        return {tp: offset for tp, (offset, _) in found.items()}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's log end offset (its high watermark), assigned or not."""
        found = await self._list_offsets(dict.fromkeys(partitions, LATEST))
        return {tp: offset for tp, (offset, _) in found.items()}

    async def _seek_to(self, which: int, partitions: Iterable[TopicPartition] | None) -> None:
        tps = list(self._positions) if partitions is None else list(partitions)
        for tp in tps:
            self._check_assigned(tp)
        found = await self._list_offsets(dict.fromkeys(tps, which))
        for tp, (offset, _) in found.items():
            self.seek(tp, offset)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._positions:
            raise ValueError(f"{tp[0]}-{tp[1]} is not assigned to this consumer")

    # -- reading -------------------------------------------------------------

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> ConsumerRecord:
        return await self.getone()

    async def getone(self) -> ConsumerRecord:
        """The next record of any assigned partition, fetching (and waiting) as needed.

        A group member first rejoins if its group is rebalancing, and auto-commits
        the records handed out before this call when the interval has passed."""
        if self._group is not None:
            return await self._getone_in_group(self._group)
        if not self._positions:
            raise RuntimeError("no partitions assigned; call assign() first")
        while True:
            record = self._next_buffered()
            if record is not None:
                return record
            await self._fetch_round()

    def has_buffered(self) -> bool:
        """True if getone() can answer without fetching (the CLI commits when it is not)."""
        return any(c.tp in self._positions and c.tp not in self._paused for c in self._completed)

    async def _getone_in_group(self, group: GroupCoordinatorClient) -> ConsumerRecord:
        while True:
            if group.generation is None or group.rejoin_needed.is_set():
                await self._rebalance(group)
                continue
            if self.enable_auto_commit and trio.current_time() >= self._next_auto_commit_s:
                self._next_auto_commit_s = trio.current_time() + self.auto_commit_interval_s
                await self._commit_quietly(group)
            record = self._next_buffered()
            if record is not None:
                return record
            rejoin = group.rejoin_needed
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_cancel_when_set, rejoin, scope)
                    if any(tp not in self._paused for tp in self._positions):
                        await self._fetch_round()
                    else:  # nothing to fetch: wait for a rebalance or a resume()
                        await trio.sleep(self.fetch_max_wait_ms / 1000)
                    nursery.cancel_scope.cancel()

    async def _rebalance(self, group: GroupCoordinatorClient) -> None:
        """Commit what was handed out (auto commit), give everything up, join, and start
        each newly assigned partition at its committed offset."""
        if group.generation is not None and self.enable_auto_commit:
            await self._commit_quietly(group)
        owned: dict[str, list[int]] = {}
        for topic, partition in self._positions:
            owned.setdefault(topic, []).append(partition)
        self._set_assignment([])
        generation = await group.join(self._topics, owned)
        tps = [(t, p) for t, parts in generation.assignment.items() for p in parts]
        self._set_assignment(tps)
        committed = await group.committed(tps) if tps else {}
        self._committed = {tp: offset for tp, offset in committed.items() if offset is not None}
        for tp, offset in self._committed.items():
            self.seek(tp, offset)
        self._next_auto_commit_s = trio.current_time() + self.auto_commit_interval_s

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit offsets (default: the position of every assigned partition, i.e. all
        records handed out so far); CommitFailedError if the group rebalanced."""
        group = self._require_group()
        if offsets is None:
            offsets = self._uncommitted_positions()
        if offsets:
            await group.commit(offsets)
            self._committed.update(offsets)

    async def committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offset of each partition (None: nothing committed)."""
        return await self._require_group().committed(list(partitions))

    def member_id(self) -> str | None:
        """This member's id in its group (None outside a group or before joining)."""
        return self._group.member_id or None if self._group is not None else None

    def _require_group(self) -> GroupCoordinatorClient:
        if self._group is None:
            raise RuntimeError("commit needs a consumer with a group_id, inside 'async with'")
        return self._group

    def _uncommitted_positions(self) -> dict[TopicPartition, int]:
        return {
            tp: position
            for tp, position in self._positions.items()
            if position is not None and self._committed.get(tp) != position
        }

    async def _commit_quietly(self, group: GroupCoordinatorClient) -> None:
        """Auto commit: a failure is logged (the records may be delivered again)."""
        offsets = self._uncommitted_positions()
        if not offsets or group.generation is None:
            return
        try:
            await group.commit(offsets)
        except CommitFailedError as exc:
            log.info("auto commit failed: %s", exc)
            return
        except KafkaClientError as exc:
            log.warning("auto commit failed: %s", exc)
            return
        self._committed.update(offsets)

    def _next_buffered(self) -> ConsumerRecord | None:
        while self._completed:
            completed = self._completed[0]
            topic, partition = tp = completed.tp
            for record in completed.records:
                position = self._positions.get(tp)
                if position is None or record.offset < position:
                    continue  # a batch starts before the offset asked for
                self._positions[tp] = record.offset + 1
                return ConsumerRecord(
                    topic,
                    partition,
                    record.offset,
                    record.timestamp,
                    record.key,
                    record.value,
                    record.headers,
                )
            self._completed.popleft()
        return None

    async def _fetch_round(self) -> None:
        """Reset missing positions, then one Fetch per broker, concurrently: each
        partition's leader, or the replica the leader told us to read from."""
        await self._reset_missing_positions()
        wanted = [tp for tp in self._positions if tp not in self._paused]
        by_node = self._to_preferred(await self._group_by_leader(wanted))
        if not by_node:
            await trio.sleep(self.retry_backoff_s)
            return
        try:
            async with trio.open_nursery() as nursery:
                for node, (address, tps) in by_node.items():
                    nursery.start_soon(self._fetch_from, node, address, tps)
        except BaseExceptionGroup as group:
            inner = single_exception(group)
            if isinstance(inner, KafkaClientError):
                raise inner from None
            raise

    def _to_preferred(
        self, by_leader: dict[int, tuple[tuple[str, int], list[TopicPartition]]]
    ) -> dict[int, tuple[tuple[str, int], list[TopicPartition]]]:
        """Move partitions with a known preferred read replica to that replica's group."""
        if not self._preferred:
            return by_leader
        out: dict[int, tuple[tuple[str, int], list[TopicPartition]]] = {}
        for leader, (address, tps) in by_leader.items():
            for tp in tps:
                node = self._preferred.get(tp, leader)
                where = self._cluster.brokers.get(node)
                if where is None:
                    self._preferred.pop(tp, None)
                    node, where = leader, address
                out.setdefault(node, (where, []))[1].append(tp)
        return out

    async def _fetch_from(
        self, node: int, address: tuple[str, int], tps: list[TopicPartition]
    ) -> None:
        topics: dict[str, list[dict[str, Any]]] = {}
        for topic, partition in tps:
            topics.setdefault(topic, []).append(
                {
                    "partition": partition,
                    "fetch_offset": self._positions[(topic, partition)],
                    "partition_max_bytes": self.partition_max_bytes,
                }
            )
        body = {
            "replica_id": -1,
            "max_wait_ms": self.fetch_max_wait_ms,
            "min_bytes": self.fetch_min_bytes,
            "max_bytes": self.fetch_max_bytes,
            "topics": [{"topic": t, "partitions": parts} for t, parts in topics.items()],
            "rack_id": self.client_rack or "",
        }
        try:
            response = await pooled_request(
                self._pool,
                address,
                ApiKey.FETCH,
                body,
                timeout_ms=self.request_timeout_ms + self.fetch_max_wait_ms,
            )
        except KafkaClientError as exc:
            log.info("fetch from %s:%d failed: %s", *address, exc)
            self._forget_preferred(tps, node)
            await self._refresh_after_error()
            return
        if response.error_code:
            log.info("fetch from %s:%d: %s", *address, as_error_code(response.error_code).name)
            self._forget_preferred(tps, node)
            await self._refresh_after_error()
            return
        for topic in response.responses:
            for part in topic.partitions:
                await self._take_partition((topic.topic, part.partition_index), part, node)

    def _forget_preferred(self, tps: Iterable[TopicPartition], node: int) -> None:
        for tp in tps:
            if self._preferred.get(tp) == node:
                del self._preferred[tp]

    async def _take_partition(self, tp: TopicPartition, part: Any, node: int) -> None:
        """Buffer a partition's fetched records, or deal with its error."""
        if tp not in self._positions:
            return
        code = as_error_code(part.error_code)
        from_follower = self._preferred.get(tp) == node
        if code != ErrorCode.NONE and from_follower:
            log.info("fetch %s-%d from replica %d: %s; back to the leader", *tp, node, code.name)
            del self._preferred[tp]
            return
        preferred = part.get("preferred_read_replica", -1)
        if code == ErrorCode.NONE and preferred >= 0 and preferred != node:
            self._preferred[tp] = preferred  # the answer carries no records: fetch there next
            return
        if code == ErrorCode.NONE:
            if part.records:
                self._completed.append(_Completed(tp, iter(iter_records(part.records))))
        elif code == ErrorCode.OFFSET_OUT_OF_RANGE:
            await self._reset_position(tp, OffsetOutOfRangeError)
        elif code.retriable:
            log.info("fetch %s-%d: %s", *tp, code.name)
            await self._refresh_after_error(code in REFRESH_ERRORS)
        else:
            raise KafkaClientError(f"fetch {tp[0]}-{tp[1]}: {code.name}", code)

    async def _refresh_after_error(self, refresh: bool = True) -> None:
        if refresh:
            try:
                await self._cluster.refresh()
            except KafkaClientError as exc:
                log.info("metadata refresh failed: %s", exc)
        await trio.sleep(self.retry_backoff_s)

    async def _reset_missing_positions(self) -> None:
        missing = [tp for tp, position in self._positions.items() if position is None]
        for tp in missing:
            await self._reset_position(tp, NoOffsetForPartitionError)

    async def _reset_position(self, tp: TopicPartition, error: type[KafkaClientError]) -> None:
        which = RESETS[self.auto_offset_reset]
        if which is None:
            position = self._positions.get(tp)
            raise error(
                f"{tp[0]}-{tp[1]}: no valid position ({position}) and auto_offset_reset is none",
                ErrorCode.OFFSET_OUT_OF_RANGE,
            )
        ((offset, _),) = (await self._list_offsets({tp: which})).values()
        log.info("%s-%d: position reset to %d (%s)", *tp, offset, self.auto_offset_reset)
        self.seek(tp, offset)

    async def _group_by_leader(
        self, tps: list[TopicPartition]
    ) -> dict[int, tuple[tuple[str, int], list[TopicPartition]]]:
        """Partitions by leader node; unknown topics or partitions raise KafkaClientError."""
        for topic in {t for t, _ in tps}:
            count = await self.partitions_for(topic)
            bad = [p for t, p in tps if t == topic and p >= count]
            if bad:
                raise KafkaClientError(
                    f"topic {topic} has no partition {bad[0]} (it has {count})",
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                )
        by_leader: dict[int, tuple[tuple[str, int], list[TopicPartition]]] = {}
        leaderless = False
        for tp in tps:
            leader = self._cluster.leader(*tp)
            if leader is None:
                leaderless = True
                continue
            by_leader.setdefault(leader[0], (leader[1], []))[1].append(tp)
        if leaderless:
            await self._refresh_after_error()
        return by_leader

    async def _list_offsets(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """ListOffsets at each partition's leader: tp -> (offset, timestamp), -1 if none."""
        pending = dict(timestamps)
        found: dict[TopicPartition, tuple[int, int]] = {}
        for _ in range(LIST_OFFSETS_ATTEMPTS_MAX):
            by_leader = await self._group_by_leader(list(pending))
            for address, tps in by_leader.values():
                found.update(await self._list_offsets_at(address, {tp: pending[tp] for tp in tps}))
            for tp in found:
                pending.pop(tp, None)
            if not pending:
                return found
            await self._refresh_after_error()
        names = ", ".join(f"{t}-{p}" for t, p in pending)
        raise KafkaClientError(f"no offsets for {names} after {LIST_OFFSETS_ATTEMPTS_MAX} tries")

    async def _list_offsets_at(
        self, address: tuple[str, int], timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """The partitions one leader answered for; retriable failures are left out."""
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), timestamp in timestamps.items():
            topics.setdefault(topic, []).append(
                {"partition_index": partition, "timestamp": timestamp}
            )
        body = {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [{"name": t, "partitions": parts} for t, parts in topics.items()],
        }
        try:
            response = await pooled_request(
                self._pool, address, ApiKey.LIST_OFFSETS, body, timeout_ms=self.request_timeout_ms
            )
        except KafkaClientError as exc:
            log.info("ListOffsets at %s:%d failed: %s", *address, exc)
            return {}
        found = {}
        for topic in response.topics:
            for part in topic.partitions:
                code = as_error_code(part.error_code)
                if code == ErrorCode.NONE:
                    found[(topic.name, part.partition_index)] = (part.offset, part.timestamp)
                elif not code.retriable:
                    raise KafkaClientError(
                        f"ListOffsets {topic.name}-{part.partition_index}: {code.name}", code
                    )
        return found


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
