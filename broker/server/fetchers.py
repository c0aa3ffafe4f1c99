"""Replica fetchers: one task per source broker pulls every partition this broker
follows from it, in one Fetch per round (Kafka's ReplicaFetcherThread).

A partition that just became a follower first asks its leader, with
OffsetForLeaderEpoch, where its own latest epoch ends, and truncates the
divergent suffix (KIP-101/279); then it fetches from its log end offset. The
leader's bytes are appended unchanged, so replicas stay byte-identical. A
token bucket caps replication bytes per second (replication throttle).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from broker.log.log import UnexpectedAppendOffset
from broker.replication.partition import Partition
from broker.server.clock import now_ms
from producer.client import BrokerConnection, KafkaClientError, connect
from protocol.api import ApiKey
from protocol.batch import CorruptBatchError, InvalidBatchError
from protocol.errors import ErrorCode

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

FETCH_VERSION = 11
OFFSET_FOR_LEADER_EPOCH_VERSION = 3
REQUEST_TIMEOUT_S = 30.0  # Kafka's replica.socket.timeout.ms
LEADERSHIP_RETRY_S = 0.05
"""After a leadership error, how soon to ask again: brokers apply a leader change within
milliseconds of each other, so Kafka's one-second replica.fetch.backoff.ms (kept for
connection failures) would only add a second to every failover."""


class TokenBucket:
    """Bytes per second with a one-second burst; rate -1 means unlimited."""

    def __init__(self, rate_bytes_per_s: int) -> None:
        self.rate = rate_bytes_per_s
        self.tokens = float(max(rate_bytes_per_s, 0))
        self.updated = trio.current_time() if rate_bytes_per_s > 0 else 0.0

    def allowance(self) -> int | None:
        """Bytes we may fetch now (None: unlimited)."""
        if self.rate < 0:
            return None
        now = trio.current_time()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return int(self.tokens)

    def spend(self, size: int) -> None:
        if self.rate >= 0:
            self.tokens -= size

    def seconds_until(self, size: int) -> float:
        return 0.0 if self.rate <= 0 else max(0.0, (size - self.tokens) / self.rate)


class ReplicaFetcher:
    """Pulls from one source broker for as long as we follow anything on it."""

    def __init__(self, broker: Broker, source_id: int, bucket: TokenBucket) -> None:
        self.broker = broker
        self.source_id = source_id
        self.bucket = bucket
        self.changed = trio.Event()

    def partitions(self) -> list[Partition]:
        return [
            p
            for p in self.broker.replicas.partitions.values()
            if p.follower is not None and p.follower.leader_id == self.source_id
        ]

    async def run(self) -> None:
        backoff_s = self.broker.config.replication.replica_fetch_backoff_ms / 1000
        while True:
            if not self.partitions():
                self.changed = trio.Event()
                await self.changed.wait()
                continue
            address = self.broker.address_of(self.source_id)
            if address is None:
                await trio.sleep(backoff_s)
                continue
            try:
                async with connect(
                    *address,
                    client_id=f"replica-{self.broker.node_id}",
                    timeout_s=REQUEST_TIMEOUT_S,
                ) as conn:
                    await self._fetch_loop(conn)
            except (KafkaClientError, trio.BrokenResourceError, trio.TooSlowError, OSError) as exc:
                log.info("fetcher from broker %d at %s: %s", self.source_id, address, exc)
                await trio.sleep(backoff_s)

    async def _fetch_loop(self, conn: BrokerConnection) -> None:
        while True:
            partitions = self.partitions()
            if not partitions:
                return
            truncating = [p for p in partitions if p.needs_truncation]
            if truncating:
                await self._truncate(conn, truncating)
                continue
            await self._fetch_once(conn, partitions)

    async def _truncate(self, conn: BrokerConnection, partitions: list[Partition]) -> None:
        sent = [_position(p) for p in partitions]
        by_topic: dict[str, list[dict]] = {}
        for p in partitions:
            by_topic.setdefault(p.topic, []).append(
                {
                    "partition": p.index,
                    "current_leader_epoch": p.follower.leader_epoch,
                    "leader_epoch": p.log.latest_epoch,
                }
            )
        body = {
            "replica_id": self.broker.node_id,
            "topics": [{"topic": t, "partitions": ps} for t, ps in by_topic.items()],
        }
        with trio.fail_after(REQUEST_TIMEOUT_S):
            response = await conn.request(
                ApiKey.OFFSET_FOR_LEADER_EPOCH, body, OFFSET_FOR_LEADER_EPOCH_VERSION
            )
        now = now_ms()
        answers = {(t.topic, r.partition): r for t in response.topics for r in t.partitions}
        for p, position in zip(partitions, sent, strict=True):
            answer = answers.get((p.topic, p.index))
            if answer is None or answer.error_code or not p.needs_truncation:
                continue
            if _position(p) != position:
                continue  # the leader or epoch changed while we asked: ask again
            p.truncate_after_epoch_check(answer.leader_epoch, answer.end_offset, now)
        if any(a.error_code for a in answers.values()):
            await self._pause_after_errors()

    async def _pause_after_errors(self) -> None:
        """The leader refused (it has not applied the leadership change yet, or the
        partition moved): ask again soon, or as soon as our own metadata changes."""
        self.changed = trio.Event()
        with trio.move_on_after(LEADERSHIP_RETRY_S):
            await self.changed.wait()

    async def _fetch_once(self, conn: BrokerConnection, partitions: list[Partition]) -> None:
        settings = self.broker.config.replication
        allowance = self.bucket.allowance()
        if allowance is not None and allowance <= 0:
            await trio.sleep(self.bucket.seconds_until(settings.replica_fetch_max_bytes))
            return
        max_bytes = settings.replica_fetch_response_max_bytes
        if allowance is not None:
            max_bytes = max(1, min(max_bytes, allowance))
        by_topic: dict[str, list[dict]] = {}
        for p in partitions:
            by_topic.setdefault(p.topic, []).append(
                {
                    "partition": p.index,
                    "current_leader_epoch": p.follower.leader_epoch,
                    "fetch_offset": p.log.log_end_offset,
                    "log_start_offset": p.log.log_start_offset,
                    "partition_max_bytes": settings.replica_fetch_max_bytes,
                }
            )
        sent = {(p.topic, p.index): (p, _position(p)) for p in partitions}
        body = {
            "replica_id": self.broker.node_id,
            "max_wait_ms": settings.replica_fetch_wait_max_ms,
            "min_bytes": 1,
            "max_bytes": max_bytes,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [{"topic": t, "partitions": ps} for t, ps in by_topic.items()],
        }
        wait_s = settings.replica_fetch_wait_max_ms / 1000
        with trio.fail_after(wait_s + REQUEST_TIMEOUT_S):
            response = await conn.request(ApiKey.FETCH, body, FETCH_VERSION)
        if self._apply(response, sent):
            await self._pause_after_errors()

    def _apply(self, response, sent: dict[tuple[str, int], tuple[Partition, tuple]]) -> bool:
        """Append what came back; True if every partition was refused (pause then)."""
        now = now_ms()
        refused = 0
        for topic in response.responses:
            for answer in topic.partitions:
                p, position = sent.get((topic.topic, answer.partition_index), (None, None))
                if p is None or p.follower is None or _position(p) != position:
                    continue  # leader, epoch or log end changed while the fetch was out
                if answer.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    self._out_of_range(p, answer, now)
                elif answer.error_code:
                    refused += 1
                    log.debug(
                        "fetch of %s from %d: %s",
                        p.name,
                        self.source_id,
                        ErrorCode(answer.error_code).name,
                    )
                else:
                    self._append(p, answer, now)
        return refused > 0 and refused == len(sent)

    def _append(self, p: Partition, answer, now: int) -> None:
        records = answer.records or b""
        try:
            p.append_as_follower(records, answer.high_watermark, now)
        except (CorruptBatchError, InvalidBatchError, UnexpectedAppendOffset) as exc:
            log.warning("%s: leader %d sent bad bytes, refetching: %s", p.name, self.source_id, exc)
            return
        self.bucket.spend(len(records))
        if records or answer.high_watermark:
            self.broker.notify_append((p.topic, p.index))

    def _out_of_range(self, p: Partition, answer, now: int) -> None:
        """Our log end is outside the leader's log: past its end (truncate) or before
        its start (retention deleted it there: restart at the leader's log start)."""
        if p.log.log_end_offset > answer.high_watermark >= 0:
            log.warning(
                "%s: log end %d beyond the leader's; truncating to %d",
                p.name,
                p.log.log_end_offset,
                answer.high_watermark,
            )
            p.truncate_to(answer.high_watermark, now)
        elif answer.log_start_offset > p.log.log_end_offset:
            log.warning(
                "%s: leader starts at %d, after our log end %d; restarting there",
                p.name,
                answer.log_start_offset,
                p.log.log_end_offset,
            )
            p.log.truncate_fully_and_start_at(answer.log_start_offset, now)


def _position(p: Partition) -> tuple[int, int, int] | None:
    """What a fetch was sent for: an answer to anything else is stale and dropped."""
    if p.follower is None:
        return None
    return p.follower.leader_id, p.follower.leader_epoch, p.log.log_end_offset


class FetcherManager:
    """Starts a fetcher per source broker on demand and wakes them on role changes."""

    def __init__(self, broker: Broker, nursery: trio.Nursery) -> None:
        self.broker = broker
        self.nursery = nursery
        self.fetchers: dict[int, ReplicaFetcher] = {}
        rate = broker.config.replication.replication_throttle_bytes_per_s
        self.bucket = TokenBucket(rate)

    def update(self) -> None:
        sources = {
            p.follower.leader_id
            for p in self.broker.replicas.partitions.values()
            if p.follower is not None and p.follower.leader_id >= 0
        }
        for source in sources - self.fetchers.keys():
            fetcher = ReplicaFetcher(self.broker, source, self.bucket)
            self.fetchers[source] = fetcher
            self.nursery.start_soon(fetcher.run)
        for fetcher in self.fetchers.values():
            fetcher.changed.set()

