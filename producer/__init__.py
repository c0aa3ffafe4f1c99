"""trilog's trio producer: ``async with Producer("host:port") as p: await p.send(...)``."""

from producer.client import KafkaClientError, parse_bootstrap
from producer.partitioner import murmur2, partition_for_key
from producer.producer import DeliveryHandle, Producer, RecordMetadata

__all__ = [
    "DeliveryHandle",
    "KafkaClientError",
    "Producer",
    "RecordMetadata",
    "murmur2",
    "parse_bootstrap",
    "partition_for_key",
]
