"""Choosing a partition for a record, as Kafka's Java producer does.

Keyed records go to ``(murmur2(key) & 0x7fffffff) % num_partitions``, so a key
lands on the same partition from every Kafka client that uses the default
partitioner (Java, librdkafka's ``murmur2_random``, kafka-python). Keyless
records stick to one partition until its batch is closed, then move on
(KIP-480): fewer, fuller batches than round-robin.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: 32-bit MurmurHash2, returned as a signed int like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed record."""
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, not {num_partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class StickyPartitioner:
    """Keyless records: one partition per topic until its batch closes (KIP-480)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int, available: Sequence[int] = ()) -> int:
        """The topic's sticky partition, choosing a new one (preferring available) if unset."""
        current = self._current.get(topic)
        if current is not None and current < num_partitions:
            return current
        choices = [p for p in available if p < num_partitions] or list(range(num_partitions))
        if len(choices) > 1 and self._previous.get(topic) in choices:
            choices.remove(self._previous[topic])
        chosen = self._rng.choice(choices)
        self._current[topic] = chosen
        return chosen

    def on_batch_closed(self, topic: str, partition: int) -> None:
        """A batch of topic/partition is full or sent: the next keyless record moves on."""
        if self._current.get(topic) == partition:
            self._previous[topic] = self._current.pop(topic)
