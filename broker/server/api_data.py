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
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

PRODUCE_MIN_VERSION = 3  # v0-2 carry message formats v0/v1, refused as Kafka 4.0 does
EARLIEST_TIMESTAMP = -2
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


def produce(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any] | None:
    error = ErrorCode.NONE
    message = None
    if header.api_version < PRODUCE_MIN_VERSION:
        error, message = ErrorCode.UNSUPPORTED_VERSION, "Produce v0-2 are not supported"
    elif body.acks not in (-1, 0, 1):
        error, message = (
            ErrorCode.INVALID_REQUIRED_ACKS,
            f"acks must be -1, 0 or 1, not {body.acks}",
        )
    elif body.get("transactional_id") is not None:
        error, message = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "no transactions"
    now = now_ms()
    responses = []
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
                result = _produce_partition(broker, topic.name, data, body.acks, now)
            partitions.append(result)
        responses.append({"name": topic.name, "partition_responses": partitions})
    if body.acks == 0 and not error:
        return None
    return {"responses": responses}


def _produce_partition(broker: Broker, topic: str, data: Data, acks: int, now: int) -> dict:
    partition = broker.replicas.get(topic, data.index)
    if partition is None:
        return {
            "index": data.index,
            "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            "base_offset": -1,
        }
    if acks == -1:
        min_isr = int(
            broker.metadata.image.topic(topic).configs.get(
                "min.insync.replicas", broker.config.log.min_insync_replicas
            )
        )
        if min_isr > 1:
            return {
                "index": data.index,
                "error_code": ErrorCode.NOT_ENOUGH_REPLICAS,
                "base_offset": -1,
                "error_message": f"ISR of 1 is below min.insync.replicas {min_isr}",
            }
    result = partition.append_as_leader(data.records, now)
    if result.error:
        log.info("produce to %s refused: %s %s", partition.name, result.error.name, result.message)
    else:
        broker.notify_append((topic, data.index))
    return {
        "index": data.index,
        "error_code": result.error,
        "base_offset": result.base_offset,
        "log_start_offset": result.log_start_offset,
        "error_message": result.message,
    }


# -- Fetch --------------------------------------------------------------------------


def fetch(broker: Broker, header: RequestHeader, body: Data):
    response, total = _read_fetch(broker, body)
    if body.max_wait_ms <= 0 or total >= body.min_bytes or _has_errors(response):
        return response
    deadline = trio.current_time() + body.max_wait_ms / 1000
    keys = [(t.topic, p.partition) for t in body.topics for p in t.partitions]

    async def wait_for_data() -> dict[str, Any]:
        nonlocal response, total
        while total < body.min_bytes:
            with trio.move_on_at(deadline) as timeout:
                await _any_append(broker, keys)
            response, total = _read_fetch(broker, body)
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


def _has_errors(response: dict[str, Any]) -> bool:
    return any(p["error_code"] for t in response["responses"] for p in t["partitions"])


def _read_fetch(broker: Broker, body: Data) -> tuple[dict[str, Any], int]:
    remaining = body.get("max_bytes", 0x7FFFFFFF)
    total = 0
    responses = []
    for topic in body.topics:
        partitions = []
        for request in topic.partitions:
            result, size = _read_partition(broker, topic.topic, request, remaining, total == 0)
            partitions.append(result)
            total += size
            remaining = max(0, remaining - size)
        responses.append({"topic": topic.topic, "partitions": partitions})
    return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}, total


def _read_partition(
    broker: Broker, topic: str, request: Data, remaining: int, first: bool
) -> tuple[dict[str, Any], int]:
    out = {
        "partition_index": request.partition,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "records": None,
        "preferred_read_replica": -1,
        "aborted_transactions": None,
    }
    partition = broker.replicas.get(topic, request.partition)
    if partition is None:
        out["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return out, 0
    error = _epoch_error(partition, request.get("current_leader_epoch", -1))
    hw = partition.high_watermark
    out.update(
        high_watermark=hw,
        last_stable_offset=hw,
        log_start_offset=partition.log.log_start_offset,
        error_code=error,
    )
    if error:
        return out, 0
    limit = min(request.partition_max_bytes, remaining)
    if limit <= 0 and not first:
        out["records"] = b""
        return out, 0
    try:
        if request.fetch_offset == hw:
            data = b""
        else:
            data = partition.log.read(
                request.fetch_offset, limit, max_offset=hw, min_one=first
            ).data
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
    if partition is None:
        out["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return out
    error = _epoch_error(partition, request.get("current_leader_epoch", -1))
    if error:
        out["error_code"] = error
        return out
    log_ = partition.log
    if request.timestamp == EARLIEST_TIMESTAMP:
        offset, timestamp = log_.log_start_offset, -1
    elif request.timestamp == LATEST_TIMESTAMP:
        offset, timestamp = partition.high_watermark, -1
    elif request.timestamp < 0:
        out["error_code"] = ErrorCode.INVALID_REQUEST
        return out
    else:
        found = log_.fetch_offset_by_timestamp(request.timestamp)
        if found is None or found[0] >= partition.high_watermark:
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
