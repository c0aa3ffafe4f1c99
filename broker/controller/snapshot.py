"""Metadata image snapshots: the whole image as one JSON document.

The Raft log is compacted by replacing its prefix with a snapshot of the state
machine it built; a follower far behind receives the snapshot instead of the
entries. Loading a snapshot must give exactly the image that replaying the
compacted entries gave (a test checks it).
"""

from __future__ import annotations

import json
from typing import Any

from broker.controller.image import BrokerRegistration, MetadataImage, PartitionState, TopicImage
from broker.controller.records import Endpoint

SNAPSHOT_VERSION = 1


def _partition(state: PartitionState) -> list:
    return [
        list(state.replicas),
        list(state.isr),
        state.leader,
        state.leader_epoch,
        state.partition_epoch,
        list(state.adding_replicas),
        list(state.removing_replicas),
    ]


def _broker(reg: BrokerRegistration) -> dict[str, Any]:
    return {
        "incarnation_id": reg.incarnation_id,
        "epoch": reg.epoch,
        "listeners": [list(e) for e in reg.listeners],
        "rack": reg.rack,
        "fenced": reg.fenced,
        "in_controlled_shutdown": reg.in_controlled_shutdown,
        "registered_at_offset": reg.registered_at_offset,
    }


def image_to_snapshot(image: MetadataImage) -> bytes:
    document = {
        "version": SNAPSHOT_VERSION,
        "metadata_offset": image.metadata_offset,
        "applied_records": image.applied_records,
        "next_producer_id": image.next_producer_id,
        "brokers": {str(b): _broker(reg) for b, reg in sorted(image.brokers.items())},
        "topics": {
            name: {
                "topic_id": topic.topic_id,
                "configs": topic.configs,
                "partitions": {str(p): _partition(s) for p, s in sorted(topic.partitions.items())},
            }
            for name, topic in sorted(image.topics.items())
        },
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def image_from_snapshot(data: bytes) -> MetadataImage:
    """Inverse of image_to_snapshot; ValueError for a document it did not write."""
    document = json.loads(data)
    if document.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unknown metadata snapshot version {document.get('version')!r}")
    image = MetadataImage()
    image.metadata_offset = document["metadata_offset"]
    image.applied_records = document["applied_records"]
    image.next_producer_id = document["next_producer_id"]
    for broker_id, reg in document["brokers"].items():
        image.brokers[int(broker_id)] = BrokerRegistration(
            broker_id=int(broker_id),
            incarnation_id=reg["incarnation_id"],
            epoch=reg["epoch"],
            listeners=tuple(Endpoint(*e) for e in reg["listeners"]),
            rack=reg["rack"],
            fenced=reg["fenced"],
            in_controlled_shutdown=reg["in_controlled_shutdown"],
            registered_at_offset=reg["registered_at_offset"],
        )
    for name, topic in document["topics"].items():
        partitions = {
            int(p): PartitionState(
                tuple(s[0]), tuple(s[1]), s[2], s[3], s[4], tuple(s[5]), tuple(s[6])
            )
            for p, s in topic["partitions"].items()
        }
        image.topics[name] = TopicImage(name, topic["topic_id"], partitions, topic["configs"])
        image._names_by_id[topic["topic_id"]] = name
    return image
