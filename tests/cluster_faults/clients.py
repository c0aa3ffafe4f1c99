"""confluent-kafka producers and consumers that keep what the fault tests check afterwards.

`SeqProducer` sends values that carry a sequence number (10 ASCII digits, then padding) and
keeps, from its delivery reports, where each acknowledged one landed and when. `read_partition`
reads a partition back from offset 0 without a consumer group.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEQ_DIGITS = 10
READ_DEADLINE_S = 60.0


def seq_value(seq: int, size: int) -> bytes:
    head = b"%010d" % seq
    return head + b"x" * max(size - len(head), 0)


def seq_of(value: bytes) -> int:
    return int(value[:SEQ_DIGITS])


@dataclass
class Acked:
    partition: int
    offset: int
    t_ack: float  # time.monotonic() when the delivery report was served


@dataclass
class SeqProducer:
    """One confluent-kafka producer writing sequence-numbered values to one partition."""

    bootstrap: str
    topic: str
    partition: int = 0
    size: int = 100
    config: dict[str, Any] = field(default_factory=dict)
    acked: dict[int, Acked] = field(default_factory=dict)
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # seq, code, text
    sent: int = 0

    def __post_init__(self) -> None:
        from confluent_kafka import Producer

        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            "message.timeout.ms": 60_000,
            "request.timeout.ms": 5_000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 200,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
            "topic.metadata.refresh.interval.ms": 1_000,
        }
        conf.update(self.config)
        self._producer = Producer(conf)

    def _report(self, seq: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self.acked[seq] = Acked(msg.partition(), msg.offset(), time.monotonic())
            else:
                self.errors.append((seq, err.code(), str(err)))

        return on_delivery

    def send(self) -> int:
        """Queue the next value (waiting for room in the local queue); its sequence number."""
        seq = self.sent
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    seq_value(seq, self.size),
                    partition=self.partition,
                    on_delivery=self._report(seq),
                )
                break
            except BufferError:
                self._producer.poll(0.01)
        self.sent += 1
        return seq

    def poll(self, timeout_s: float = 0.0) -> None:
        self._producer.poll(timeout_s)

    def run(
        self, seconds: float, rate: float, on_tick: Callable[[float], None] | None = None
    ) -> None:
        """Send `rate` values a second for `seconds`, serving delivery reports in between;
        `on_tick(elapsed_s)` is called before each send (a test injects its faults there)."""
        t0 = time.monotonic()
        first = self.sent
        while (elapsed := time.monotonic() - t0) < seconds:
            if on_tick is not None:
                on_tick(elapsed)
            self.send()
            next_at = t0 + (self.sent - first) / rate
            while (left := next_at - time.monotonic()) > 0:
                self._producer.poll(left)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> int:
        """Wait for every outstanding delivery report; how many are still missing."""
        return self._producer.flush(timeout_s)

    def first_ack_after(self, t: float) -> float | None:
        after = [a.t_ack for a in self.acked.values() if a.t_ack > t]
        return min(after) if after else None


def read_partition_raw(
    port: int, topic: str, partition: int, *, deadline_s: float = READ_DEADLINE_S
) -> list[tuple[int, bytes]]:
    """(offset, value) of every record below the high watermark of the broker on `port`,
    read with raw Fetch requests (no consumer group, no librdkafka)."""
    from protocol.records import iter_records

    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        answer = fetch_raw(port, topic, partition, len(got), rack="")
        assert answer.error_code == 0, f"fetch at {len(got)}: error {answer.error_code}"
        records = [(r.offset, r.value) for r in iter_records(answer.records or b"")]
        got += [(o, v) for o, v in records if o >= len(got)]
        if len(got) >= answer.high_watermark:
            return got
        assert records, f"no progress at offset {len(got)} below {answer.high_watermark}"
    raise AssertionError(f"{topic}-{partition}: read back not done in {deadline_s:g} s")


def read_partition(
    bootstrap: str,
    topic: str,
    partition: int,
    end_offset: int,
    *,
    extra: dict[str, Any] | None = None,
    deadline_s: float = READ_DEADLINE_S,
) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in [0, end_offset), read without a consumer group."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": "cluster-faults-unused",  # librdkafka wants one; assign() joins no group
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 1_000,
    }
    conf.update(extra or {})
    consumer = Consumer(conf)
    got: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + deadline_s
        while (not got or got[-1][0] < end_offset - 1) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is None:
                    got.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return got


def check_acked_present_once_in_order(
    acked: dict[int, Acked], records: list[tuple[int, bytes]], partition: int = 0, start: int = 0
) -> None:
    """Every acknowledged value sits at its acknowledged offset, once; the log from `start`
    (where this producer began: earlier producers wrote the same values before it) is
    dense and holds each value at most once, in send order."""
    records = [(o, v) for o, v in records if o >= start]
    offsets = [o for o, _ in records]
    assert offsets == list(range(start, start + len(offsets))), f"offsets not dense from {start}"
    seqs = [seq_of(v) for _, v in records]
    assert len(set(seqs)) == len(seqs), "a value is in the log twice"
    assert seqs == sorted(seqs), "values are out of send order"
    at = dict(zip(offsets, seqs, strict=True))
    wrong = {
        s: (a.offset, at.get(a.offset))
        for s, a in acked.items()
        if a.partition == partition and at.get(a.offset) != s
    }
    example = dict(list(wrong.items())[:5])
    assert not wrong, f"{len(wrong)} acknowledged values missing or moved, e.g. {example}"


# ---- raw requests with our protocol codecs ---------------------------------------------


def produce_raw(port: int, topic: str, partition: int, acks: int, values: list[bytes]):
    """One Produce (v8) of `values` as one batch to the broker on `port`; the partition's
    response (error_code, base_offset, ...)."""
    from protocol.api import ApiKey
    from protocol.records import build_batch
    from tests.cluster_faults.cluster import kafka_request

    now_ms = int(time.time() * 1000)
    batch = build_batch([(None, v, (), now_ms) for v in values])
    body = {
        "acks": acks,
        "timeout_ms": 5_000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}],
    }
    response = kafka_request(port, ApiKey.PRODUCE, 8, body, timeout_s=10.0)
    return response.responses[0].partition_responses[0]


def fetch_raw(port: int, topic: str, partition: int, offset: int, rack: str, max_wait_ms: int = 0):
    """One consumer Fetch (v11, KIP-392 rack id) to the broker on `port`; the partition's
    response (error_code, high_watermark, preferred_read_replica, records). With
    max_wait_ms > 0 it long-polls for at least one byte, as librdkafka does."""
    from protocol.api import ApiKey
    from tests.cluster_faults.cluster import kafka_request

    body = {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": 1 if max_wait_ms else 0,
        "max_bytes": 1 << 20,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 1 << 20}
                ],
            }
        ],
        "rack_id": rack,
    }
    response = kafka_request(port, ApiKey.FETCH, 11, body)
    return response.responses[0].partitions[0]
