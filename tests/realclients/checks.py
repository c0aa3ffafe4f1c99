"""What every real-client test checks about acknowledged and consumed messages."""

from __future__ import annotations

from collections import defaultdict

from tests.realclients.clients import Stored


def by_partition(stored: list[Stored]) -> dict[int, list[Stored]]:
    out: dict[int, list[Stored]] = defaultdict(list)
    for s in stored:
        out[s.partition].append(s)
    return dict(out)


def check_acknowledged(acked: list[Stored], partitions: int) -> None:
    """Offsets per partition are dense from 0, in send order."""
    parts = by_partition(acked)
    assert set(parts) <= set(range(partitions))
    for p, items in parts.items():
        assert [s.offset for s in items] == list(range(len(items))), f"partition {p}"


def check_keys_stick(acked: list[Stored]) -> None:
    """One producer's partitioner sends every message of a key to one partition."""
    partition_of_key: dict[bytes | None, int] = {}
    for s in acked:
        assert partition_of_key.setdefault(s.message.key, s.partition) == s.partition


def check_read_back(consumed: list[Stored], acked: list[Stored]) -> None:
    """Exactly the acknowledged messages, each partition in offset order."""
    assert len(consumed) == len(acked)
    for p, items in by_partition(consumed).items():
        offsets = [s.offset for s in items]
        assert offsets == sorted(offsets), f"partition {p} out of order"
    want = {(s.partition, s.offset): s.message for s in acked}
    got = {(s.partition, s.offset): s.message for s in consumed}
    assert got.keys() == want.keys()
    wrong = [key for key in want if got[key] != want[key]]
    assert not wrong, f"{len(wrong)} differ, first {wrong[0]}: {got[wrong[0]]} != {want[wrong[0]]}"


def first_at_or_after(acked: list[Stored], partition: int, timestamp_ms: int) -> int | None:
    offsets = [
        s.offset
        for s in acked
        if s.partition == partition and s.message.timestamp_ms >= timestamp_ms
    ]
    return min(offsets, default=None)
