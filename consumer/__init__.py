"""trilog's trio consumer: ``async with Consumer("host:port") as c: c.assign(...)``."""

from consumer.consumer import (
    Consumer,
    ConsumerRecord,
    NoOffsetForPartitionError,
    OffsetAndTimestamp,
    OffsetOutOfRangeError,
)

__all__ = [
    "Consumer",
    "ConsumerRecord",
    "NoOffsetForPartitionError",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
]
