"""Handlers for cluster and topic administration: ApiVersions, Metadata,
CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, InitProducerId.

Each takes the decoded request and returns the response body as a dict;
fields a version lacks are dropped by the encoder, missing ones defaulted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from broker.controller.records import MetadataRecord, ProducerIdsRecord
from broker.controller.topics import (
    TOPIC_CONFIGS,
    NewTopic,
    TopicDefaults,
    TopicResult,
    create_topic,
    delete_topic,
    validate_topic_name,
)
from broker.controller.topics import (
    create_partitions as plan_partitions,
)
from protocol.api_versions import api_versions_response_body
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

PRODUCER_ID_BLOCK = 1000
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
SOURCE_TOPIC_CONFIG = 1
SOURCE_STATIC_BROKER_CONFIG = 4
SOURCE_DEFAULT_CONFIG = 5


def api_versions(header: RequestHeader, body: Data) -> dict[str, Any]:
    return api_versions_response_body(header.api_version)


# -- Metadata -----------------------------------------------------------------------


def metadata(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    image = broker.metadata.image
    if body.topics is None or (header.api_version == 0 and not body.topics):
        names = sorted(image.topics)
    else:
        names = [t.name for t in body.topics]
    allow_create = body.get("allow_auto_topic_creation", True)
    topics = [_topic_metadata(broker, name, allow_create) for name in names]
    host, port = broker.advertised
    rack = broker.config.broker.rack or None
    return {
        "brokers": [{"node_id": broker.node_id, "host": host, "port": port, "rack": rack}],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
    }


def _topic_metadata(broker: Broker, name: str, allow_create: bool) -> dict[str, Any]:
    image = broker.metadata.image
    topic = image.topic(name)
    if topic is None:
        problem = validate_topic_name(name) if name is not None else "null topic name"
        if problem:
            return {"name": name, "error_code": ErrorCode.INVALID_TOPIC_EXCEPTION, "partitions": []}
        if not (allow_create and broker.config.log.auto_create_topics_enable):
            return {
                "name": name,
                "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                "partitions": [],
            }
        result = _create(broker, NewTopic(name, -1, -1, {}, {}), validate_only=False)
        if result.error:
            return {"name": name, "error_code": result.error, "partitions": []}
        log.info("auto-created topic %s with %d partitions", name, result.num_partitions)
        topic = image.topic(name)
    partitions = [
        {
            "error_code": ErrorCode.NONE,
            "partition_index": index,
            "leader_id": state.leader,
            "leader_epoch": state.leader_epoch,
            "replica_nodes": list(state.replicas),
            "isr_nodes": list(state.isr),
            "offline_replicas": [],
        }
        for index, state in sorted(topic.partitions.items())
    ]
    return {
        "name": name,
        "error_code": ErrorCode.NONE,
        "is_internal": False,
        "partitions": partitions,
    }


# -- topics -------------------------------------------------------------------------


def _defaults(broker: Broker) -> TopicDefaults:
    return TopicDefaults(
        broker.config.log.num_partitions, broker.config.log.default_replication_factor
    )


def _create(broker: Broker, topic: NewTopic, *, validate_only: bool) -> TopicResult:
    records, result = create_topic(
        broker.metadata.image, topic, broker.live_brokers, _defaults(broker), broker.rng
    )
    if records and not validate_only:
        broker.commit(records)
        log.info(
            "created topic %s: %d partitions, replication factor %d, configs %s",
            topic.name,
            result.num_partitions,
            result.replication_factor,
            topic.configs,
        )
    return result


def _new_topic(item: Data) -> NewTopic:
    return NewTopic(
        name=item.name,
        num_partitions=item.num_partitions,
        replication_factor=item.replication_factor,
        assignments={a.partition_index: tuple(a.broker_ids) for a in item.assignments},
        configs={c.name: c.value for c in item.configs},
    )


def create_topics(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    results = []
    seen: set[str] = set()
    for item in body.topics:
        if item.name in seen:
            results.append(
                {
                    "name": item.name,
                    "error_code": ErrorCode.INVALID_REQUEST,
                    "error_message": "topic named twice in one request",
                }
            )
            continue
        seen.add(item.name)
        result = _create(broker, _new_topic(item), validate_only=body.validate_only)
        results.append(
            {
                "name": result.name,
                "error_code": result.error,
                "error_message": result.message,
                "num_partitions": result.num_partitions,
                "replication_factor": result.replication_factor,
            }
        )
    return {"topics": results}


def delete_topics(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    responses = []
    for name in body.topic_names:
        records, result = delete_topic(broker.metadata.image, name)
        if records:
            broker.commit(records)
            log.info("deleted topic %s", name)
        responses.append(
            {"name": name, "error_code": result.error, "error_message": result.message}
        )
    return {"responses": responses}


def create_partitions(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    results = []
    for item in body.topics:
        assignments = (
            [tuple(a.broker_ids) for a in item.assignments]
            if item.assignments is not None
            else None
        )
        records, result = plan_partitions(
            broker.metadata.image, item.name, item.count, assignments, broker.live_brokers
        )
        if records and not body.validate_only:
            broker.commit(records)
            log.info("topic %s grown to %d partitions", item.name, item.count)
        results.append(
            {"name": item.name, "error_code": result.error, "error_message": result.message}
        )
    return {"results": results}


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


def init_producer_id(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    if body.transactional_id is not None:
        return {
            "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "producer_id": -1,
            "producer_epoch": -1,
        }
    image = broker.metadata.image
    if broker.producer_ids_handed_out >= image.next_producer_id:
        block_end = image.next_producer_id + PRODUCER_ID_BLOCK
        records: list[MetadataRecord] = [ProducerIdsRecord(block_end)]
        broker.commit(records)
    producer_id = broker.producer_ids_handed_out
    broker.producer_ids_handed_out += 1
    return {"error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": 0}
