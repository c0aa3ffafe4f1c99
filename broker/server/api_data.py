"""Handlers for the data path: Produce, Fetch (with long polling), ListOffsets,
OffsetForLeaderEpoch.

Produce appends synchronously, in the order requests arrive on a connection,
and wakes fetches waiting on the partition. A Fetch that finds less than
min_bytes returns an async continuation that sleeps on those wake-ups (never
polling) until enough data arrives or max_wait_ms passes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from broker.log.log import OffsetOutOfRange
from broker.replication.partition import Partition
from broker.server.clock import now_ms
from broker.server.waits import AcksWait
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

PRODUCE_MIN_VERSION = 3  # v0-2 carry message formats v0/v1, refused as Kafka 4.0 does
EARLIEST_TIMESTAMP = -2
DEBUGGING_REPLICA_ID = -2
LATEST_TIMESTAMP = -1
READ_COMMITTED = 1


def _epoch_error(partition: Partition, current_leader_epoch: int) -> ErrorCode:
    """KIP-320: a client naming an older epoch is fenced; a newer one, unknown here."""
    if current_leader_epoch == -1 or current_leader_epoch == partition.leader_epoch:
        return ErrorCode.NONE
    if current_leader_epoch < partition.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH
    return ErrorCode.UNKNOWN_LEADER_EPOCH


# -- Produce ------------------------------------------------------------------------


def _request_error(header: RequestHeader, body: Data) -> tuple[ErrorCode, str | None]:
    if header.api_version < PRODUCE_MIN_VERSION:
        return ErrorCode.UNSUPPORTED_VERSION, "Produce v0-2 are not supported"
    if body.acks not in (-1, 0, 1):
        return ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be -1, 0 or 1, not {body.acks}"
    if body.get("transactional_id") is not None:
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "no transactions"
    return ErrorCode.NONE, None


def produce(broker: Broker, header: RequestHeader, body: Data):
    """Append now; with acks=all, answer once the high watermark passes every append."""
    error, message = _request_error(header, body)
    now = now_ms()
    responses = []
    waits: list[tuple[dict, AcksWait]] = []
    for topic in body.topic_data:
        partitions = []
        for data in topic.partition_data:
            if error:
                result = {
                    "index": data.index,
                    "error_code": error,
                    "base_offset": -1,
                    "error_message": message,
                }
            else:
                result, wait = _produce_partition(broker, topic.name, data, body, now)
                if wait is not None:
                    waits.append((result, wait))
            partitions.append(result)
        responses.append({"name": topic.name, "partition_responses": partitions})
    if body.acks == 0 and not error:
        return None
    response = {"responses": responses}
    if not waits:
        return response

    async def replicated() -> dict[str, Any]:
        for result, wait in waits:
            await wait.done.wait()
            if wait.error:
                result.update(
                    error_code=wait.error,
                    base_offset=-1,
                    error_message=f"{wait.error.name} while waiting for replication",
                )
        return response

    return replicated


def _produce_partition(
    broker: Broker, topic: str, data: Data, body: Data, now: int
) -> tuple[dict, AcksWait | None]:
    partition = broker.replicas.get(topic, data.index)
    if partition is None:
        code = (
            ErrorCode.NOT_LEADER_OR_FOLLOWER
            if broker.metadata.image.topic(topic)
            else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        return {"index": data.index, "error_code": code, "base_offset": -1}, None
    result = partition.append_as_leader(data.records, now, body.acks)
    out = {
        "index": data.index,
        "error_code": result.error,
        "base_offset": result.base_offset,
        "log_start_offset": result.log_start_offset,
        "error_message": result.message,
    }
    if result.error:
        log.info("produce to %s refused: %s %s", partition.name, result.error.name, result.message)
        return out, None
    broker.notify_append((topic, data.index))
    if body.acks != -1 or partition.high_watermark > result.last_offset:
        return out, None
    wait = broker.new_acks_wait()
    partition.leader.add_waiter(wait.request_id, result.last_offset, now + body.timeout_ms)
    return out, wait


# -- Fetch --------------------------------------------------------------------------


def fetch(broker: Broker, header: RequestHeader, body: Data):
    """Consumers read up to the high watermark, followers up to the log end; both
    may wait (never polling) until min_bytes or max_wait_ms."""
    response, total = _read_fetch(broker, body)
    if (
        body.max_wait_ms <= 0
        or total >= body.min_bytes
        or _has_errors(response)
        or _redirects(response)
    ):
        return response
    keys = [(t.topic, p.partition) for t in body.topics for p in t.partitions]
    if not keys:
        return response  # nothing to wait for: Kafka answers at once
    deadline = trio.current_time() + body.max_wait_ms / 1000

    async def wait_for_data() -> dict[str, Any]:
        nonlocal response, total
        while total < body.min_bytes:
            with trio.move_on_at(deadline) as timeout:
                await _any_append(broker, keys)
            response, total = _read_fetch(broker, body, again=True)
            if timeout.cancelled_caught:
                break
        return response

    return wait_for_data


async def _any_append(broker: Broker, keys: list[tuple[str, int]]) -> None:
    """Return when any of these partitions gets an append."""
    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(_wait_then_cancel, broker.append_event(key), nursery.cancel_scope)


async def _wait_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _redirects(response: dict[str, Any]) -> bool:
    """A KIP-392 answer naming a preferred read replica is complete as it is."""
    return any(
        p["preferred_read_replica"] >= 0 for t in response["responses"] for p in t["partitions"]
    )


def _has_errors(response: dict[str, Any]) -> bool:
    return any(p["error_code"] for t in response["responses"] for p in t["partitions"])


def _read_fetch(broker: Broker, body: Data, *, again: bool = False) -> tuple[dict[str, Any], int]:
    remaining = body.get("max_bytes", 0x7FFFFFFF)
    total = 0
    responses = []
    follower = body.get("replica_id", -1) >= 0
    for topic in body.topics:
        partitions = []
        for request in topic.partitions:
            reader = _read_for_follower if follower else _read_partition
            result, size = reader(broker, topic.topic, request, remaining, total == 0, body, again)
            partitions.append(result)
            total += size
            remaining = max(0, remaining - size)
        responses.append({"topic": topic.topic, "partitions": partitions})
    return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}, total


def _empty_partition(request: Data) -> dict[str, Any]:
    return {
        "partition_index": request.partition,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "records": b"",  # Kafka sends empty, never null: librdkafka rejects size -1
        "preferred_read_replica": -1,
        "aborted_transactions": None,
    }


def _read_partition(
    broker: Broker,
    topic: str,
    request: Data,
    remaining: int,
    first: bool,
    body: Data,
    again: bool,
) -> tuple[dict[str, Any], int]:
    """A consumer's read: up to the high watermark, on the leader or a follower."""
    out = _empty_partition(request)
    partition = broker.replicas.get(topic, request.partition)
    if partition is None or (partition.leader is None and partition.follower is None):
        out["error_code"] = (
            ErrorCode.NOT_LEADER_OR_FOLLOWER
            if broker.metadata.image.topic(topic)
            else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        return out, 0
    error = _epoch_error(partition, request.get("current_leader_epoch", -1))
    if not error and partition.leader is not None and body.get("rack_id") and not again:
        preferred = broker.preferred_read_replica(partition, body.rack_id)
        if preferred is not None:
            out.update(
                error_code=ErrorCode.NONE,
                preferred_read_replica=preferred,
                high_watermark=partition.high_watermark,
                log_start_offset=partition.log.log_start_offset,
            )
            return out, 0
    return _read_range(partition, request, out, error, remaining, first, partition.high_watermark)


def _read_for_follower(
    broker: Broker,
    topic: str,
    request: Data,
    remaining: int,
    first: bool,
    body: Data,
    again: bool,
) -> tuple[dict[str, Any], int]:
    """A follower's read: records its position (ISR, high watermark), then reads to the
    log end."""
    out = _empty_partition(request)
    partition = broker.replicas.get(topic, request.partition)
    if partition is None or partition.leader is None:
        out["error_code"] = ErrorCode.NOT_LEADER_OR_FOLLOWER
        return out, 0
    error = _epoch_error(partition, request.get("current_leader_epoch", -1))
    if not error and not again:
        now = now_ms()
        if partition.on_follower_fetch(body.replica_id, request.fetch_offset, now):
            broker.notify_append((topic, request.partition))  # consumers may read more
            broker.complete(partition.leader.completions(now))
    end = partition.log.log_end_offset
    return _read_range(partition, request, out, error, remaining, first, end)


def _read_range(
    partition: Partition,
    request: Data,
    out: dict,
    error: ErrorCode,
    remaining: int,
    first: bool,
    upper: int,
) -> tuple[dict[str, Any], int]:
    out.update(
        high_watermark=partition.high_watermark,
        last_stable_offset=partition.high_watermark,
        log_start_offset=partition.log.log_start_offset,
        error_code=error,
    )
    if error:
        return out, 0
    limit = min(request.partition_max_bytes, remaining)
    if (limit <= 0 and not first) or request.fetch_offset == upper:
        out["records"] = b""
        if request.fetch_offset > partition.log.log_end_offset:
            out["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
        return out, 0
    try:
        data = partition.log.read(request.fetch_offset, limit, max_offset=upper, min_one=first).data
    except OffsetOutOfRange:
        out["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
        return out, 0
    out["records"] = bytes(data)
    return out, len(data)


# -- ListOffsets --------------------------------------------------------------------


def list_offsets(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    topics = []
    for topic in body.topics:
        partitions = [_list_offset(broker, topic.name, p, body) for p in topic.partitions]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"topics": topics}


def _list_offset(broker: Broker, topic: str, request: Data, body: Data) -> dict[str, Any]:
    out = {
        "partition_index": request.partition_index,
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": -1,
    }
    partition = broker.replicas.get(topic, request.partition_index)
    debug = body.get("replica_id", -1) == DEBUGGING_REPLICA_ID
    if partition is None:
        out["error_code"] = (
            ErrorCode.NOT_LEADER_OR_FOLLOWER
            if broker.metadata.image.topic(topic)
            else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        return out
    error = _epoch_error(partition, request.get("current_leader_epoch", -1))
    if not error and partition.leader is None and not debug:
        error = ErrorCode.NOT_LEADER_OR_FOLLOWER  # Kafka: only tools may ask a follower
    if error:
        out["error_code"] = error
        return out
    log_ = partition.log
    # tools (replica_id -2) see the log end; consumers the committed end
    upper = log_.log_end_offset if debug else partition.high_watermark
    if request.timestamp == EARLIEST_TIMESTAMP:
        offset, timestamp = log_.log_start_offset, -1
    elif request.timestamp == LATEST_TIMESTAMP:
        offset, timestamp = upper, -1
    elif request.timestamp < 0:
        out["error_code"] = ErrorCode.INVALID_REQUEST
        return out
    else:
        found = log_.fetch_offset_by_timestamp(request.timestamp)
        if found is None or found[0] >= upper:
            out["error_code"] = ErrorCode.NONE
            return out
        offset, timestamp = found
    out.update(
        error_code=ErrorCode.NONE,
        offset=offset,
        timestamp=timestamp,
        leader_epoch=_epoch_for_offset(partition, offset),
    )
    return out


def _epoch_for_offset(partition: Partition, offset: int) -> int:
    epoch = partition.leader_epoch
    for entry_epoch, start in partition.log.epoch_cache.entries:
        if start <= offset:
            epoch = entry_epoch
    return epoch


# -- OffsetForLeaderEpoch -----------------------------------------------------------


def offset_for_leader_epoch(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    topics = []
    for topic in body.topics:
        partitions = []
        for request in topic.partitions:
            out = {"partition": request.partition, "leader_epoch": -1, "end_offset": -1}
            partition = broker.replicas.get(topic.topic, request.partition)
            if partition is None:
                out["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif partition.leader is None:
                out["error_code"] = ErrorCode.NOT_LEADER_OR_FOLLOWER
            elif error := _epoch_error(partition, request.current_leader_epoch):
                out["error_code"] = error
            else:
                epoch, end = partition.log.epoch_cache.end_offset_for(
                    request.leader_epoch, partition.log.log_end_offset
                )
                out.update(error_code=ErrorCode.NONE, leader_epoch=epoch, end_offset=end)
            partitions.append(out)
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"topics": topics}
