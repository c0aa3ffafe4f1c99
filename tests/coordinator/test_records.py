"""__consumer_offsets records in Kafka's layout, and Kafka's group -> partition hash."""

from __future__ import annotations

import struct

import pytest

from broker.coordinator.group import CommittedOffset
from broker.coordinator.records import (
    GroupMetadataRecord,
    GroupSnapshot,
    MemberSnapshot,
    OffsetCommitRecord,
    decode,
    decode_all,
    encode,
)
from broker.server.api_groups import java_string_hashcode, partition_for


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def test_offset_commit_record_bytes_match_kafkas_layout() -> None:
    record = OffsetCommitRecord("grp", "topic", 7, CommittedOffset(42, 5, "meta", 1700))
    key, value = encode(record)
    assert key == struct.pack(">h", 1) + _string("grp") + _string("topic") + struct.pack(">i", 7)
    # OffsetCommitValue v3: offset, leader epoch, metadata, commit timestamp
    expected = struct.pack(">hqi", 3, 42, 5) + _string("meta") + struct.pack(">q", 1700)
    assert value == expected
    assert decode(key, value) == record


def test_older_offset_value_versions_are_read() -> None:
    key = struct.pack(">h", 0) + _string("g") + _string("t") + struct.pack(">i", 0)
    v1 = struct.pack(">hq", 1, 9) + _string("") + struct.pack(">qq", 100, 200)
    assert decode(key, v1) == OffsetCommitRecord("g", "t", 0, CommittedOffset(9, -1, "", 100))


def test_group_metadata_record_roundtrip_and_tombstones() -> None:
    members = (
        MemberSnapshot("m1", None, "client", "/1.2.3.4", 30000, 10000, b"sub", b"asg"),
        MemberSnapshot("m2", "inst", "client", "/1.2.3.5", 30000, 10000, b"sub2", b""),
    )
    record = GroupMetadataRecord("grp", GroupSnapshot("consumer", 3, "range", "m1", 99, members))
    key, value = encode(record)
    assert key == struct.pack(">h", 2) + _string("grp")
    assert value is not None and value[:2] == struct.pack(">h", 3)
    assert decode(key, value) == record
    assert encode(GroupMetadataRecord("grp", None)) == (key, None)
    assert decode(key, None) == GroupMetadataRecord("grp", None)


def test_records_we_do_not_keep_or_cannot_read_are_skipped() -> None:
    good = encode(OffsetCommitRecord("g", "t", 0, CommittedOffset(1, -1, "", 0)))
    kip848_key = struct.pack(">h", 3) + _string("g")  # ConsumerGroupMetadataKey
    pairs = [(kip848_key, b"\x00\x00"), (b"\x00", b""), (None, b""), good]
    assert list(decode_all(pairs)) == [decode(*good)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 97),
        ("hello", 99162322),
        ("a-rather-long-group-name", -1181221639),
        ("polygenelubricants", -(2**31)),  # Integer.MIN_VALUE: Utils.abs gives 0
        ("\U0001f600", 1772899),  # a surrogate pair counts as two UTF-16 units
    ],
)
def test_java_string_hashcode(text: str, expected: int) -> None:
    assert java_string_hashcode(text) == expected


def test_partition_for_follows_kafka() -> None:
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("a-rather-long-group-name", 50) == 1181221639 % 50
    assert all(0 <= partition_for(f"g{i}", 50) < 50 for i in range(200))
