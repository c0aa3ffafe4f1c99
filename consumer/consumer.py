"""A trio Kafka consumer for manually assigned partitions.

The application assigns partitions and optionally seeks; iterating the
consumer fetches from each partition's leader (one Fetch per leader broker,
long-polling ``fetch_max_wait_ms``) and yields records in offset order per
partition. Fetched bytes are decoded lazily, so what is buffered is bounded by
``fetch_max_bytes`` per broker. A partition without a position, or whose
position fell outside the log, is reset by ``auto_offset_reset`` (Kafka's
``SubscriptionState`` and ``Fetcher`` roles, in miniature).

Consumer groups (subscribe, commits) are not built yet: ``group_id`` is
accepted as a parameter so the class can grow into them, and refused if set.
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
        auto_offset_reset: str = "latest",
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 8 * 1024 * 1024,
        partition_max_bytes: int = 1024 * 1024,
        request_timeout_ms: int = 30000,
        retry_backoff_ms: int = 100,
        client_id: str = CLIENT_ID,
    ) -> None:
        if group_id is not None:
            raise NotImplementedError("consumer groups are not supported yet; use assign()")
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

    async def close(self) -> None:
        """Close every connection; the consumer cannot be used afterwards."""
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
        wanted = [(str(t), int(p)) for t, p in partitions]
        self._positions = {tp: self._positions.get(tp) for tp in wanted}
        self._completed = deque(c for c in self._completed if c.tp in self._positions)

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
        """The next record of any assigned partition, fetching (and waiting) as needed."""
        if not self._positions:
            raise RuntimeError("no partitions assigned; call assign() first")
        while True:
            record = self._next_buffered()
            if record is not None:
                return record
            await self._fetch_round()

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
        """Reset missing positions, then one Fetch per leader broker, concurrently."""
        await self._reset_missing_positions()
        by_leader = await self._group_by_leader(list(self._positions))
        if not by_leader:
            await trio.sleep(self.retry_backoff_s)
            return
        try:
            async with trio.open_nursery() as nursery:
                for address, tps in by_leader.values():
                    nursery.start_soon(self._fetch_from, address, tps)
        except BaseExceptionGroup as group:
            inner = single_exception(group)
            if isinstance(inner, KafkaClientError):
                raise inner from None
            raise

    async def _fetch_from(self, address: tuple[str, int], tps: list[TopicPartition]) -> None:
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
            await self._refresh_after_error()
            return
        if response.error_code:
            log.info("fetch from %s:%d: %s", *address, as_error_code(response.error_code).name)
            await self._refresh_after_error()
            return
        for topic in response.responses:
            for part in topic.partitions:
                await self._take_partition((topic.topic, part.partition_index), part)

    async def _take_partition(self, tp: TopicPartition, part: Any) -> None:
        """Buffer a partition's fetched records, or deal with its error."""
        if tp not in self._positions:
            return
        code = as_error_code(part.error_code)
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
