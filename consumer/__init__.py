"""trilog's trio consumer: ``async with Consumer("host:port") as c: c.assign(...)``,
or as a group member: ``Consumer("host:port", group_id="g", topics=["t"])``."""

from consumer.assignors import ASSIGNORS, RangeAssignor, RoundRobinAssignor
from consumer.consumer import (
    Consumer,
    ConsumerRecord,
    NoOffsetForPartitionError,
    OffsetAndTimestamp,
    OffsetOutOfRangeError,
)
from consumer.group import CommitFailedError

__all__ = [
    "ASSIGNORS",
    "CommitFailedError",
    "Consumer",
    "ConsumerRecord",
    "NoOffsetForPartitionError",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "RangeAssignor",
    "RoundRobinAssignor",
]
