"""A trio Kafka producer: batching, partitioning, retries and idempotence.

Records are accumulated per partition (Kafka's ``RecordAccumulator``) and a
sender task (Kafka's ``Sender``) owned by the producer's nursery ships ready
batches, one Produce request per leader broker. A batch is ready when it is
full, when ``linger_ms`` has passed since its first record, or on flush/close.
Each partition has at most one batch in flight, so a retried batch can never
overtake a later one; with idempotence the broker drops a retried batch it
already appended (same producer id, epoch and sequence), so retries do not
duplicate. Memory is bounded by ``buffer_bytes_max``: ``send`` waits for room.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Iterable
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
)
from producer.partitioner import StickyPartitioner, partition_for_key
from protocol.api import ApiKey
from protocol.compression import Codec
from protocol.errors import ErrorCode
from protocol.records import Header, build_batch

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

BATCH_OVERHEAD_BYTES = 61
RECORD_OVERHEAD_BYTES = 21
SEQUENCE_MAX = 0x7FFFFFFF
REFRESH_ERRORS = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.NETWORK_EXCEPTION,
    }
)
"""Errors after which the partition's leader may have moved: refresh metadata."""

ACKS = {"all": -1, "-1": -1, "1": 1, "0": 0}
CODECS = {codec.name.lower(): codec for codec in Codec}


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where a record was written: its offset (-1 with acks=0) and timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class DeliveryHandle:
    """The pending outcome of one record handed to the producer."""

    __slots__ = ("topic", "partition", "timestamp", "_done", "_metadata", "_error")

    def __init__(self, topic: str, partition: int, timestamp: int) -> None:
        self.topic = topic
        self.partition = partition
        self.timestamp = timestamp
        self._done = trio.Event()
        self._metadata: RecordMetadata | None = None
        self._error: KafkaClientError | None = None

    def done(self) -> bool:
        return self._done.is_set()

    async def result(self) -> RecordMetadata:
        """Wait for delivery: the record's metadata, or the KafkaClientError that failed it."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._metadata is not None
        return self._metadata

    def _resolve(self, offset: int, timestamp: int) -> None:
        self._metadata = RecordMetadata(self.topic, self.partition, offset, timestamp)
        self._done.set()

    def _fail(self, error: KafkaClientError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()


class _Batch:
    """Records for one partition, sent together; its bytes are fixed at first send."""

    def __init__(self, tp: TopicPartition, created_s: float) -> None:
        self.tp = tp
        self.created_s = created_s
        self.records: list[tuple[bytes | None, bytes | None, tuple[Header, ...], int]] = []
        self.handles: list[DeliveryHandle] = []
        self.size = BATCH_OVERHEAD_BYTES
        self.closed = False
        self.attempts = 0
        self.retry_at_s = 0.0
        self.payload: bytes | None = None
        self.sequenced = False
        self.finished = False


def record_size(key: bytes | None, value: bytes | None, headers: Iterable[Header]) -> int:
    """Bytes a record takes in a batch (an upper estimate, before compression)."""
    size = RECORD_OVERHEAD_BYTES + len(key or b"") + len(value or b"")
    return size + sum(len(k) + len(v or b"") + 10 for k, v in headers)


class Producer:
    """Send records to a Kafka-protocol cluster; use as ``async with Producer(...) as p``.

    ``acks``: -1 (all in-sync replicas), 1 (leader) or 0 (no response).
    Idempotence needs acks=-1 and is on by default when acks is -1.
    ``delivery_timeout_ms`` bounds a record's life from send to acknowledgement,
    retries included; ``max_block_ms`` bounds waiting for a topic's metadata.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        acks: int = -1,
        linger_ms: int = 5,
        batch_bytes: int = 16384,
        compression: str = "none",
        enable_idempotence: bool | None = None,
        buffer_bytes_max: int = 32 * 1024 * 1024,
        request_bytes_max: int = 1024 * 1024,
        retries: int = SEQUENCE_MAX,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 1000,
        delivery_timeout_ms: int = 120000,
        request_timeout_ms: int = 30000,
        max_block_ms: int = 60000,
        allow_auto_topic_creation: bool = True,
        client_id: str = CLIENT_ID,
        rng: random.Random | None = None,
    ) -> None:
        if acks not in (-1, 0, 1):
            raise ValueError(f"acks must be -1, 0 or 1, not {acks!r}")
        if compression not in CODECS:
            raise ValueError(f"compression must be one of {', '.join(CODECS)}, not {compression!r}")
        if enable_idempotence and acks != -1:
            raise ValueError("enable_idempotence needs acks=-1")
        self._bootstrap = parse_bootstrap(bootstrap)
        self.acks = acks
        self.idempotent = acks == -1 if enable_idempotence is None else enable_idempotence
        self.linger_s = linger_ms / 1000
        self.batch_bytes = batch_bytes
        self.codec = CODECS[compression]
        self.buffer_bytes_max = buffer_bytes_max
        self.request_bytes_max = request_bytes_max
        self.retries = retries
        self.retry_backoff_s = (retry_backoff_ms / 1000, retry_backoff_max_ms / 1000)
        self.delivery_timeout_s = delivery_timeout_ms / 1000
        self.request_timeout_ms = request_timeout_ms
        self.max_block_s = max_block_ms / 1000
        self._auto_create = allow_auto_topic_creation
        self._client_id = client_id
        self._sticky = StickyPartitioner(rng)
        self._queues: dict[TopicPartition, deque[_Batch]] = {}
        self._inflight: dict[TopicPartition, _Batch] = {}
        self._sequences: dict[TopicPartition, int] = {}
        self._producer_id, self._producer_epoch = -1, -1
        self._reset_producer_id = False
        self._buffer_used = 0
        self._space_freed = trio.Event()
        self._wakeup = trio.Event()
        self._refresh_wanted = trio.Event()
        self._stack = AsyncExitStack()
        self._nursery: trio.Nursery | None = None
        self._closing = False

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Producer:
        if self._nursery is not None:
            raise RuntimeError("a Producer can be entered only once")
        await self._stack.__aenter__()
        try:
            self._nursery = await self._stack.enter_async_context(trio.open_nursery())
            self._pool = ConnectionPool(self._nursery, client_id=self._client_id)
            self._cluster = Cluster(
                self._bootstrap,
                self._pool,
                allow_auto_topic_creation=self._auto_create,
                request_timeout_ms=self.request_timeout_ms,
            )
            await self._cluster.refresh()
            if self.idempotent:
                await self._init_producer_id()
            await self._nursery.start(self._run_sender)
            await self._nursery.start(self._run_metadata_refresher)
        except BaseException:
            self._shut_down("producer failed to start")
            await self._stack.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._closing:
            return None
        if exc is None:
            await self.flush()
        self._shut_down("producer closed")
        await self._stack.__aexit__(None, None, None)
        return None

    async def close(self) -> None:
        """Deliver everything already sent (or let it fail), then stop the producer."""
        await self.__aexit__(None, None, None)

    def _shut_down(self, reason: str) -> None:
        self._closing = True
        error = KafkaClientError(reason)
        for batch in self._inflight.values():
            self._finish(batch, error=error)
        for queue in self._queues.values():
            for batch in queue:
                self._finish(batch, error=error)
        self._queues.clear()
        self._inflight.clear()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def flush(self) -> None:
        """Send every buffered record now and wait until each is delivered or failed."""
        last = []
        for queue in self._queues.values():
            for batch in queue:
                batch.closed = True
            if queue and queue[-1].handles:
                last.append(queue[-1].handles[-1])
        self._wakeup.set()
        for handle in last:
            await handle._done.wait()

    # -- sending -------------------------------------------------------------

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Iterable[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """Send one record and wait until it is acknowledged (per ``acks``)."""
        handle = await self.enqueue(topic, value, key, headers, partition, timestamp_ms)
        return await handle.result()

    async def enqueue(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Iterable[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> DeliveryHandle:
        """Buffer one record (waiting for room) and return its pending outcome.

        Awaiting many handles later is how to send fast: ``send`` waits for each.
        """
        if self._closing or self._nursery is None:
            raise KafkaClientError("the producer is not open")
        headers = tuple(headers)
        size = record_size(key, value, headers)
        if size + BATCH_OVERHEAD_BYTES > min(self.request_bytes_max, self.buffer_bytes_max):
            raise KafkaClientError(
                f"record of {size} bytes exceeds the request or buffer limit",
                ErrorCode.MESSAGE_TOO_LARGE,
            )
        partition = await self._choose_partition(topic, key, partition)
        await self._reserve(size)
        timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        handle = DeliveryHandle(topic, partition, timestamp)
        self._append((topic, partition), (key, value, headers, timestamp), size, handle)
        return handle

    async def partitions_for(self, topic: str) -> int:
        """The topic's number of partitions, waiting up to max_block_ms for its metadata."""
        meta = None
        with trio.move_on_after(self.max_block_s):
            while True:
                meta = await self._cluster.topic(topic)
                if not meta.error:
                    return len(meta.leaders)
                if not meta.error.retriable:
                    raise KafkaClientError(f"topic {topic}: {meta.error.name}", meta.error)
                await trio.sleep(self.retry_backoff_s[0])
                await self._cluster.refresh([topic])
        code = meta.error if meta is not None else ErrorCode.REQUEST_TIMED_OUT
        raise KafkaClientError(
            f"topic {topic}: no metadata ({code.name}) within {self.max_block_s * 1000:.0f} ms",
            code,
        )

    async def _choose_partition(self, topic: str, key: bytes | None, partition: int | None) -> int:
        known = self._cluster.topics.get(topic)
        if known is not None and not known.error:
            count = len(known.leaders)  # the common case: no cancel scope, no checkpoint
        else:
            count = await self.partitions_for(topic)
        if partition is not None:
            if not 0 <= partition < count:
                raise KafkaClientError(
                    f"topic {topic} has no partition {partition} (it has {count})",
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                )
            return partition
        if key is not None:
            return partition_for_key(key, count)
        available = [p for p in range(count) if self._cluster.leader(topic, p)]
        return self._sticky.partition(topic, count, available)

    async def _reserve(self, size: int) -> None:
        while self._buffer_used + size > self.buffer_bytes_max:
            await self._space_freed.wait()
        self._buffer_used += size

    def _release(self, size: int) -> None:
        self._buffer_used -= size
        self._space_freed.set()
        self._space_freed = trio.Event()

    def _append(self, tp: TopicPartition, record: Any, size: int, handle: DeliveryHandle) -> None:
        queue = self._queues.setdefault(tp, deque())
        batch = queue[-1] if queue else None
        if (
            batch is None
            or batch.closed
            or batch.payload is not None
            or (batch.records and batch.size + size > self.batch_bytes)
        ):
            if batch is not None:
                batch.closed = True
                self._sticky.on_batch_closed(*tp)
            batch = _Batch(tp, trio.current_time())
            queue.append(batch)
        batch.records.append(record)
        batch.handles.append(handle)
        batch.size += size
        if batch.size >= self.batch_bytes or len(queue) > 1:
            self._wakeup.set()
        elif len(queue) == 1 and len(batch.records) == 1:
            self._wakeup.set()  # the sender learns the new batch's linger deadline

    # -- the sender task -----------------------------------------------------

    async def _run_sender(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Ship ready batches, one Produce per leader, until the producer closes."""
        async with trio.open_nursery() as requests:
            task_status.started()
            while True:
                self._wakeup = trio.Event()
                if self._reset_producer_id and not self._inflight:
                    await self._renew_producer_id()
                now = trio.current_time()
                by_node, wake_at = self._drain(now)
                for address, batches in by_node.values():
                    requests.start_soon(self._send_produce, address, batches)
                with trio.move_on_at(wake_at):
                    await self._wakeup.wait()

    def _drain(self, now: float) -> tuple[dict[int, tuple[tuple[str, int], list[_Batch]]], float]:
        """Ready batches grouped by leader node, and when to look again."""
        by_node: dict[int, tuple[tuple[str, int], list[_Batch]]] = {}
        wake_at = now + 1.0
        for tp, queue in self._queues.items():
            if not queue or tp in self._inflight:
                continue
            batch = queue[0]
            if now - batch.created_s > self.delivery_timeout_s:
                queue.popleft()
                self._expire(batch)
                continue
            ready_at = self._ready_at(batch, len(queue), now)
            if ready_at > now:
                wake_at = min(wake_at, ready_at)
                continue
            if self._reset_producer_id and not batch.sequenced:
                continue  # waits for the new producer id
            leader = self._cluster.leader(*tp)
            if leader is None:
                self._refresh_wanted.set()
                continue
            queue.popleft()
            self._prepare(batch)
            self._inflight[tp] = batch
            by_node.setdefault(leader[0], (leader[1], []))[1].append(batch)
        idle = [tp for tp, queue in self._queues.items() if not queue and tp not in self._inflight]
        for tp in idle:
            del self._queues[tp]
        return by_node, wake_at

    def _ready_at(self, batch: _Batch, queued: int, now: float) -> float:
        """When the head batch of a partition may be sent."""
        if batch.attempts:
            return batch.retry_at_s
        if batch.closed or queued > 1 or batch.size >= self.batch_bytes or self._closing:
            return now
        return batch.created_s + self.linger_s

    def _prepare(self, batch: _Batch) -> None:
        """Fix the batch's bytes (and sequence) on first send; retries resend the same bytes."""
        batch.closed = True
        self._sticky.on_batch_closed(*batch.tp)
        if batch.payload is not None:
            return
        kwargs = {}
        if self.idempotent:
            sequence = self._sequences.get(batch.tp, 0)
            self._sequences[batch.tp] = (sequence + len(batch.records)) & SEQUENCE_MAX
            kwargs = {
                "producer_id": self._producer_id,
                "producer_epoch": self._producer_epoch,
                "base_sequence": sequence,
            }
            batch.sequenced = True
        batch.payload = build_batch(batch.records, compression=self.codec, **kwargs)

    async def _send_produce(self, address: tuple[str, int], batches: list[_Batch]) -> None:
        """One Produce request for batches led by the same broker; settle each batch."""
        topics: dict[str, list[dict[str, Any]]] = {}
        for batch in batches:
            topic, partition = batch.tp
            topics.setdefault(topic, []).append({"index": partition, "records": batch.payload})
        body = {
            "transactional_id": None,
            "acks": self.acks,
            "timeout_ms": self.request_timeout_ms,
            "topic_data": [{"name": t, "partition_data": parts} for t, parts in topics.items()],
        }
        try:
            response = await pooled_request(
                self._pool,
                address,
                ApiKey.PRODUCE,
                body,
                timeout_ms=self.request_timeout_ms + 5000,
                expect_response=self.acks != 0,
            )
        except KafkaClientError as exc:
            log.info("produce to %s:%d failed: %s", *address, exc)
            for batch in batches:
                self._settle(batch, ErrorCode.NETWORK_EXCEPTION, str(exc))
            return
        results = {}
        if response is not None:
            for topic in response.responses:
                for part in topic.partition_responses:
                    results[(topic.name, part.index)] = part
        for batch in batches:
            part = results.get(batch.tp)
            if response is None:
                self._settle(batch, ErrorCode.NONE, base_offset=-1)
            elif part is None:
                self._settle(batch, ErrorCode.UNKNOWN_SERVER_ERROR, "no answer for partition")
            else:
                self._settle(
                    batch,
                    as_error_code(part.error_code),
                    part.error_message or "",
                    part.base_offset,
                    part.log_append_time_ms,
                )

    def _settle(
        self,
        batch: _Batch,
        code: ErrorCode,
        message: str = "",
        base_offset: int = -1,
        append_time_ms: int = -1,
    ) -> None:
        """Complete, retry or fail a batch after its Produce came back."""
        self._inflight.pop(batch.tp, None)
        self._wakeup.set()
        if code in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
            self._finish(batch, base_offset=base_offset, append_time_ms=append_time_ms)
            return
        if code in REFRESH_ERRORS:
            self._refresh_wanted.set()
        now = trio.current_time()
        if (
            code.retriable
            and batch.attempts < self.retries
            and now - batch.created_s < self.delivery_timeout_s
            and not self._closing
        ):
            batch.attempts += 1
            low, high = self.retry_backoff_s
            batch.retry_at_s = now + min(high, low * 2 ** (batch.attempts - 1))
            self._queues.setdefault(batch.tp, deque()).appendleft(batch)
            log.debug("retrying %s-%d (%s), attempt %d", *batch.tp, code.name, batch.attempts)
            return
        text = f"{batch.tp[0]}-{batch.tp[1]}: {code.name}" + (f": {message}" if message else "")
        self._finish(batch, error=KafkaClientError(text, code))

    def _expire(self, batch: _Batch) -> None:
        text = (
            f"{batch.tp[0]}-{batch.tp[1]}: not delivered within "
            f"{self.delivery_timeout_s * 1000:.0f} ms"
        )
        self._finish(batch, error=KafkaClientError(text, ErrorCode.REQUEST_TIMED_OUT))

    def _finish(
        self,
        batch: _Batch,
        *,
        error: KafkaClientError | None = None,
        base_offset: int = -1,
        append_time_ms: int = -1,
    ) -> None:
        """Resolve or fail every record of the batch and give its memory back."""
        if batch.finished:
            return
        batch.finished = True
        if error is not None and batch.sequenced and self.idempotent:
            self._reset_producer_id = True  # later sequences would leave a gap
        for delta, handle in enumerate(batch.handles):
            if error is not None:
                handle._fail(error)
            else:
                offset = base_offset + delta if base_offset >= 0 else -1
                handle._resolve(offset, append_time_ms if append_time_ms >= 0 else handle.timestamp)
        self._release(batch.size - BATCH_OVERHEAD_BYTES)

    async def _renew_producer_id(self) -> None:
        """After a sequenced batch failed: a new producer id, so sequences restart cleanly."""
        try:
            await self._init_producer_id()
        except KafkaClientError as exc:
            log.warning("cannot renew the producer id: %s", exc)
            await trio.sleep(self.retry_backoff_s[1])

    async def _init_producer_id(self) -> None:
        """Get a producer id (and epoch) from any broker; sequences restart at 0."""
        body = {"transactional_id": None, "transaction_timeout_ms": 60000}
        with trio.move_on_after(self.max_block_s):
            while True:
                for address in list(self._cluster.brokers.values()) or self._bootstrap:
                    try:
                        response = await pooled_request(
                            self._pool,
                            address,
                            ApiKey.INIT_PRODUCER_ID,
                            body,
                            timeout_ms=self.request_timeout_ms,
                        )
                    except KafkaClientError as exc:
                        log.info("InitProducerId at %s:%d failed: %s", *address, exc)
                        continue
                    code = as_error_code(response.error_code)
                    if code == ErrorCode.NONE:
                        self._producer_id = response.producer_id
                        self._producer_epoch = response.producer_epoch
                        self._sequences.clear()
                        self._reset_producer_id = False
                        return
                    if not code.retriable:
                        raise KafkaClientError(f"InitProducerId: {code.name}", code)
                await trio.sleep(self.retry_backoff_s[0])
        raise KafkaClientError("no producer id within max_block_ms")

    async def _run_metadata_refresher(
        self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Refresh metadata when the sender asks (a leader moved or is unknown)."""
        task_status.started()
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted = trio.Event()
            try:
                await self._cluster.refresh()
            except KafkaClientError as exc:
                log.info("metadata refresh failed: %s", exc)
            self._wakeup.set()
            await trio.sleep(self.retry_backoff_s[0])
