"""Handlers for cluster and topic administration: ApiVersions, Metadata,
CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, InitProducerId.

Each takes the decoded request and returns the response body as a dict;
fields a version lacks are dropped by the encoder, missing ones defaulted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from broker.controller.topics import TOPIC_CONFIGS, NewTopic, validate_topic_name
from broker.server.controller_service import (
    PRODUCER_ID_BLOCK,
    AllocateProducerIds,
    CreatePartitions,
    CreateTopics,
    DeleteTopics,
)
from protocol.api_versions import api_versions_response_body
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
SOURCE_TOPIC_CONFIG = 1
SOURCE_STATIC_BROKER_CONFIG = 4
SOURCE_DEFAULT_CONFIG = 5


def api_versions(header: RequestHeader, body: Data) -> dict[str, Any]:
    return api_versions_response_body(header.api_version)


# -- Metadata -----------------------------------------------------------------------


def metadata(broker: Broker, header: RequestHeader, body: Data):
    """Brokers, the active controller and topics; unknown topics may be auto-created
    (through the controller, so the answer waits for that)."""
    image = broker.metadata.image
    if body.topics is None or (header.api_version == 0 and not body.topics):
        names = sorted(image.topics)
    else:
        names = [t.name for t in body.topics]
    allow = body.get("allow_auto_topic_creation", True) and (
        broker.config.log.auto_create_topics_enable
    )
    missing = [
        n
        for n in names
        if n is not None and image.topic(n) is None and validate_topic_name(n) is None
    ]
    if not (allow and missing):
        return _metadata_response(broker, names, allow)

    async def after_creating() -> dict[str, Any]:
        topics = tuple(NewTopic(n, -1, -1, {}, {}) for n in dict.fromkeys(missing))
        reply = await broker.controller_request(CreateTopics(topics))
        for result in reply.response or ():
            if result.error == ErrorCode.NONE:
                log.info(
                    "auto-created topic %s with %d partitions", result.name, result.num_partitions
                )
        return _metadata_response(broker, names, allow)

    return after_creating


def _metadata_response(broker: Broker, names: list, allow_create: bool) -> dict[str, Any]:
    image = broker.metadata.image
    brokers = [
        {
            "node_id": b,
            "host": reg.listeners[0].host,
            "port": reg.listeners[0].port,
            "rack": reg.rack,
        }
        for b, reg in sorted(image.brokers.items())
        if not reg.fenced and reg.listeners
    ]
    return {
        "brokers": brokers,
        "cluster_id": broker.cluster_id,
        "controller_id": broker.quorum.leader_id if broker.quorum.leader_id is not None else -1,
        "topics": [_topic_metadata(broker, name, allow_create) for name in names],
    }


def _topic_metadata(broker: Broker, name: str, allow_create: bool) -> dict[str, Any]:
    image = broker.metadata.image
    topic = image.topic(name) if name is not None else None
    if topic is None:
        problem = validate_topic_name(name) if name is not None else "null topic name"
        code = (
            ErrorCode.INVALID_TOPIC_EXCEPTION
            if problem
            else ErrorCode.LEADER_NOT_AVAILABLE
            if allow_create
            else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        return {"name": name, "error_code": code, "partitions": []}
    partitions = []
    for index, state in sorted(topic.partitions.items()):
        offline = [
            r
            for r in state.replicas
            if not image.is_usable(r) and (r not in image.brokers or image.brokers[r].fenced)
        ]
        partitions.append(
            {
                "error_code": ErrorCode.NONE
                if state.leader >= 0
                else ErrorCode.LEADER_NOT_AVAILABLE,
                "partition_index": index,
                "leader_id": state.leader,
                "leader_epoch": state.leader_epoch,
                "replica_nodes": list(state.replicas),
                "isr_nodes": list(state.isr),
                "offline_replicas": offline,
            }
        )
    return {
        "name": name,
        "error_code": ErrorCode.NONE,
        "is_internal": name.startswith("__"),
        "partitions": partitions,
    }


# -- topics -------------------------------------------------------------------------


def _new_topic(item: Data) -> NewTopic:
    return NewTopic(
        name=item.name,
        num_partitions=item.num_partitions,
        replication_factor=item.replication_factor,
        assignments={a.partition_index: tuple(a.broker_ids) for a in item.assignments},
        configs={c.name: c.value for c in item.configs},
    )


def create_topics(broker: Broker, header: RequestHeader, body: Data):
    duplicates = {
        item.name
        for item in body.topics
        if sum(1 for other in body.topics if other.name == item.name) > 1
    }
    wanted = tuple(_new_topic(item) for item in body.topics if item.name not in duplicates)

    async def forward() -> dict[str, Any]:
        results = {}
        if wanted:
            reply = await broker.controller_request(CreateTopics(wanted, body.validate_only))
            results = {r.name: r for r in reply.response}
        out = []
        for item in body.topics:
            if item.name in duplicates:
                out.append(
                    {
                        "name": item.name,
                        "error_code": ErrorCode.INVALID_REQUEST,
                        "error_message": "topic named twice in one request",
                    }
                )
                continue
            result = results[item.name]
            if result.error == ErrorCode.NONE and not body.validate_only:
                log.info(
                    "created topic %s: %d partitions, replication factor %d",
                    result.name,
                    result.num_partitions,
                    result.replication_factor,
                )
            out.append(
                {
                    "name": result.name,
                    "error_code": result.error,
                    "error_message": result.message,
                    "num_partitions": result.num_partitions,
                    "replication_factor": result.replication_factor,
                }
            )
        return {"topics": out}

    return forward


def delete_topics(broker: Broker, header: RequestHeader, body: Data):
    async def forward() -> dict[str, Any]:
        reply = await broker.controller_request(DeleteTopics(tuple(body.topic_names)))
        responses = []
        for result in reply.response:
            if result.error == ErrorCode.NONE:
                log.info("deleted topic %s", result.name)
            responses.append(
                {"name": result.name, "error_code": result.error, "error_message": result.message}
            )
        return {"responses": responses}

    return forward


def create_partitions(broker: Broker, header: RequestHeader, body: Data):
    async def forward() -> dict[str, Any]:
        results = []
        for item in body.topics:
            assignments = (
                tuple(tuple(a.broker_ids) for a in item.assignments)
                if item.assignments is not None
                else None
            )
            request = CreatePartitions(item.name, item.count, assignments, body.validate_only)
            result = (await broker.controller_request(request)).response
            if result.error == ErrorCode.NONE and not body.validate_only:
                log.info("topic %s grown to %d partitions", item.name, item.count)
            results.append(
                {"name": item.name, "error_code": result.error, "error_message": result.message}
            )
        return {"results": results}

    return forward


# -- DescribeConfigs ----------------------------------------------------------------


def _topic_config_entries(broker: Broker, name: str, keys: list[str] | None) -> list[dict]:
    topic = broker.metadata.image.topic(name)
    defaults = {
        "retention.ms": broker.config.log.retention_ms,
        "retention.bytes": broker.config.log.retention_bytes,
        "segment.bytes": broker.config.log.segment_bytes,
        "segment.ms": broker.config.log.segment_ms,
        "min.insync.replicas": broker.config.log.min_insync_replicas,
        "max.message.bytes": broker.config.log.message_bytes_max,
        "flush.messages": broker.config.log.flush_messages,
        "flush.ms": broker.config.log.flush_ms,
        "cleanup.policy": "delete",
    }
    entries = []
    for key in sorted(TOPIC_CONFIGS):
        if keys is not None and key not in keys:
            continue
        override = topic.configs.get(key)
        value = override if override is not None else str(defaults[key])
        source = SOURCE_TOPIC_CONFIG if override is not None else SOURCE_DEFAULT_CONFIG
        entries.append(
            {
                "name": key,
                "value": value,
                "read_only": False,
                "is_default": override is None,
                "config_source": source,
                "is_sensitive": False,
                "synonyms": [],
            }
        )
    return entries


def _broker_config_entries(broker: Broker, keys: list[str] | None) -> list[dict]:
    import dataclasses

    entries = []
    for section_name in ("broker", "network", "log"):
        section = getattr(broker.config, section_name)
        for f in dataclasses.fields(section):
            kafka = f.metadata["kafka"]
            if kafka.startswith("(") or (keys is not None and kafka not in keys):
                continue
            value = getattr(section, f.name)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            entries.append(
                {
                    "name": kafka,
                    "value": text,
                    "read_only": True,
                    "is_default": value == f.default,
                    "config_source": SOURCE_STATIC_BROKER_CONFIG,
                    "is_sensitive": False,
                    "synonyms": [],
                }
            )
    return entries


def describe_configs(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    results = []
    for resource in body.resources:
        result = {
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        keys = resource.configuration_keys
        if resource.resource_type == RESOURCE_TOPIC:
            if broker.metadata.image.topic(resource.resource_name) is None:
                result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                result["error_message"] = f"topic '{resource.resource_name}' does not exist"
            else:
                result["configs"] = _topic_config_entries(broker, resource.resource_name, keys)
        elif resource.resource_type == RESOURCE_BROKER:
            if resource.resource_name not in ("", str(broker.node_id)):
                result["error_code"] = ErrorCode.INVALID_REQUEST
                result["error_message"] = f"this is broker {broker.node_id}"
            else:
                result["configs"] = _broker_config_entries(broker, keys)
        else:
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = f"unsupported resource type {resource.resource_type}"
        results.append(result)
    return {"results": results}


# -- InitProducerId -----------------------------------------------------------------


def init_producer_id(broker: Broker, header: RequestHeader, body: Data):
    """Hand out the next id of this broker's block; a new block comes from the
    controller (durably reserved, so ids never repeat across restarts)."""
    if body.transactional_id is not None:
        return {
            "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "producer_id": -1,
            "producer_epoch": -1,
        }
    next_id, end = broker.producer_ids
    if next_id < end:
        broker.producer_ids = (next_id + 1, end)
        return {"error_code": ErrorCode.NONE, "producer_id": next_id, "producer_epoch": 0}

    async def new_block() -> dict[str, Any]:
        reply = await broker.controller_request(AllocateProducerIds(broker.node_id))
        start = reply.response
        if broker.producer_ids[0] >= broker.producer_ids[1]:
            broker.producer_ids = (start, start + PRODUCER_ID_BLOCK)
        next_id, end = broker.producer_ids
        broker.producer_ids = (next_id + 1, end)
        return {"error_code": ErrorCode.NONE, "producer_id": next_id, "producer_epoch": 0}

    return new_block
