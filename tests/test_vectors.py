"""Record batches written by real clients decode to what was sent.

The vectors in tests/data/vectors were captured by tests/data/capture_vectors.py
from confluent-kafka (librdkafka) and kafka-python, one per codec; the manifest
holds the records that went in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.batch import compute_crc, validate_batch
from protocol.compression import XERIAL_MAGIC, Codec
from protocol.records import Record, build_batch, decode_batch, iter_records

VECTORS = Path(__file__).parent / "data" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


EXPECTED = [
    Record(
        offset=entry["offset_delta"],
        timestamp=entry["timestamp"],
        key=_bytes(entry["key"]),
        value=_bytes(entry["value"]),
        headers=tuple((name, _bytes(value)) for name, value in entry["headers"]),
    )
    for entry in MANIFEST["records"]
]


def test_every_client_and_codec_is_covered() -> None:
    vectors = MANIFEST["vectors"]
    assert {(v["client"], v["codec"]) for v in vectors.values()} == {
        (client, codec.name.lower())
        for client in ("confluent-kafka", "kafka-python")
        for codec in Codec
    }
    assert sorted(p.name for p in VECTORS.glob("*.bin")) == sorted(vectors)
    assert len(EXPECTED) == MANIFEST["count"]


@pytest.mark.parametrize("name", sorted(MANIFEST["vectors"]))
def test_vector_decodes_to_the_manifest(name: str) -> None:
    meta = MANIFEST["vectors"][name]
    data = (VECTORS / name).read_bytes()
    header, records = decode_batch(data)
    assert header.size == len(data)
    assert header.crc == compute_crc(data)
    assert header.compression == meta["codec_id"]
    assert header.records_count == MANIFEST["count"]
    assert header.base_timestamp == EXPECTED[0].timestamp
    assert header.max_timestamp == max(r.timestamp for r in EXPECTED)
    assert records == EXPECTED
    assert list(iter_records(data)) == EXPECTED


@pytest.mark.parametrize("name", sorted(MANIFEST["vectors"]))
def test_vector_re_encodes_to_equal_records(name: str) -> None:
    _, records = decode_batch((VECTORS / name).read_bytes())
    rebuilt = build_batch([(r.key, r.value, r.headers, r.timestamp) for r in records])
    assert decode_batch(rebuilt)[1] == records


def test_uncompressed_vectors_match_our_encoder_byte_for_byte() -> None:
    """With no compression there is one way to write these records; the two
    clients and build_batch must agree on every byte the CRC covers."""
    ours = build_batch([(r.key, r.value, r.headers, r.timestamp) for r in EXPECTED])
    for client in ("confluent-kafka", "kafka-python"):
        theirs = (VECTORS / f"{client}-none.bin").read_bytes()
        assert theirs[61:] == ours[61:], client
        assert validate_batch(theirs).crc == validate_batch(ours).crc


def test_snappy_vectors_cover_both_framings() -> None:
    """librdkafka writes raw snappy, kafka-python (like the Java client) xerial."""
    raw = (VECTORS / "confluent-kafka-snappy.bin").read_bytes()
    framed = (VECTORS / "kafka-python-snappy.bin").read_bytes()
    assert not raw[61:].startswith(XERIAL_MAGIC)
    assert framed[61:].startswith(XERIAL_MAGIC)


@pytest.mark.clients
@pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning")
@pytest.mark.parametrize("codec", [Codec.NONE, Codec.GZIP])
def test_kafka_python_reads_our_batches(codec: Codec) -> None:
    """kafka-python's own reader accepts what build_batch writes (codecs it
    decodes without optional packages)."""
    from kafka.record.default_records import DefaultRecordBatch

    data = build_batch(
        [(r.key, r.value, r.headers, r.timestamp) for r in EXPECTED],
        base_offset=100,
        compression=codec,
    )
    batch = DefaultRecordBatch(data)
    assert batch.validate_crc()
    read = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert read == [
        (100 + i, r.timestamp, r.key, r.value, list(r.headers)) for i, r in enumerate(EXPECTED)
    ]
