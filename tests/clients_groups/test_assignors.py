"""The range and roundrobin assignors give Kafka's answers, and our subscription and
assignment bytes are the consumer protocol's (kafka-python reads ours, we read its)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.assignors import (
    ASSIGNORS,
    Member,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from tests.clients_lib.conftest import import_kafka_python


def members(spec: dict[str, tuple[str, ...]], static: dict[str, str] | None = None) -> list:
    static = static or {}
    return [Member(m, static.get(m), Subscription(tuple(sorted(t)))) for m, t in spec.items()]


def test_range_matches_kafkas_javadoc_example():
    # RangeAssignor's javadoc: C0, C1; t0, t1 with 3 partitions each
    got = ASSIGNORS["range"].assign(
        members({"C0": ("t0", "t1"), "C1": ("t0", "t1")}), {"t0": 3, "t1": 3}
    )
    assert got == {"C0": {"t0": [0, 1], "t1": [0, 1]}, "C1": {"t0": [2], "t1": [2]}}


def test_roundrobin_matches_kafkas_javadoc_examples():
    # RoundRobinAssignor's javadoc, first example: same subscriptions
    rr = ASSIGNORS["roundrobin"]
    got = rr.assign(members({"C0": ("t0", "t1"), "C1": ("t0", "t1")}), {"t0": 3, "t1": 3})
    assert got == {"C0": {"t0": [0, 2], "t1": [1]}, "C1": {"t0": [1], "t1": [0, 2]}}
    # second example: C0 has t0; C1 t0, t1; C2 t0, t1, t2 (1, 2, 3 partitions)
    spec = {"C0": ("t0",), "C1": ("t0", "t1"), "C2": ("t0", "t1", "t2")}
    got = rr.assign(members(spec), {"t0": 1, "t1": 2, "t2": 3})
    assert got == {"C0": {"t0": [0]}, "C1": {"t1": [0]}, "C2": {"t1": [1], "t2": [0, 1, 2]}}


def test_static_members_come_first_in_instance_id_order():
    spec = {"a-dyn": ("t",), "z-static": ("t",), "b-static": ("t",)}
    static = {"z-static": "instance-1", "b-static": "instance-2"}
    got = ASSIGNORS["range"].assign(members(spec, static), {"t": 6})
    assert got == {"z-static": {"t": [0, 1]}, "b-static": {"t": [2, 3]}, "a-dyn": {"t": [4, 5]}}


def test_subscription_round_trip_and_newer_versions():
    sub = Subscription(("a", "b"), b"ud", {"a": (2, 1)})
    back = decode_subscription(encode_subscription(sub))
    assert back == Subscription(("a", "b"), b"ud", {"a": (1, 2)})
    # a v9 subscription (a future version) is read with the newest layout we know
    future = b"\x00\x09" + encode_subscription(sub)[2:] + b"\xff\xff\xff\xff" + b"\x00\x00extra"
    assert decode_subscription(future).topics == ("a", "b")
    assert decode_assignment(b"") == {}
    assert decode_assignment(encode_assignment({"t": [3, 1]})) == {"t": [1, 3]}


@pytest.mark.clients
def test_kafka_python_reads_our_bytes_and_we_read_its():
    import_kafka_python()
    from kafka.protocol.consumer.metadata import (
        ConsumerProtocolAssignment,
        ConsumerProtocolSubscription,
    )

    theirs = ConsumerProtocolSubscription.decode(encode_subscription(Subscription(("x", "y"))))
    assert sorted(theirs.topics) == ["x", "y"]
    ours = decode_subscription(ConsumerProtocolSubscription(0, ["y", "x"], b"").encode())
    assert ours.topics == ("x", "y")
    got = ConsumerProtocolAssignment.decode(encode_assignment({"t": [0, 2], "u": [1]}))
    assert sorted((t, sorted(p)) for t, p in got.assigned_partitions) == [("t", [0, 2]), ("u", [1])]
    data = ConsumerProtocolAssignment(0, [("t", [4, 5])], b"").encode()
    assert decode_assignment(data) == {"t": [4, 5]}


subscriptions = st.dictionaries(
    st.text("abcdef0123", min_size=1, max_size=6),
    st.sets(st.sampled_from(["t0", "t1", "t2"]), min_size=1),
    min_size=1,
    max_size=7,
)


@pytest.mark.clients
@pytest.mark.parametrize("name", ["range", "roundrobin"])
@settings(max_examples=60, deadline=None)
@given(spec=subscriptions, counts=st.tuples(*[st.integers(0, 9)] * 3))
def test_same_answer_as_kafka_python(name, spec, counts):
    import_kafka_python()
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    theirs_cls = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[name]
    if name == "roundrobin":
        # kafka-python 3.0's round robin crashes when a member skips a topic (it looks the
        # member up by (instance id, member id)); Kafka's javadoc cases above cover that
        spec = dict.fromkeys(spec, next(iter(spec.values())))
    partitions = dict(zip(["t0", "t1", "t2"], counts, strict=True))
    cluster = SimpleNamespace(partitions_for_topic=lambda t: set(range(partitions[t])))
    their_members = [
        SimpleNamespace(
            member_id=m, group_instance_id=None, metadata=SimpleNamespace(topics=sorted(t))
        )
        for m, t in spec.items()
    ]
    theirs = {
        m: {t: sorted(p) for t, p in a.assigned_partitions if p}
        for m, a in theirs_cls.assign(cluster, their_members).items()
    }
    ours = ASSIGNORS[name].assign(members({m: tuple(t) for m, t in spec.items()}), partitions)
    assert ours == theirs
