"""A seeded fuzz of a real broker process's request path.

Thousands of malformed frames (mutations of real encoded requests: flipped,
inserted and deleted bytes, truncations, length prefixes that lie, huge array
counts and string lengths, random API key/version pairs, garbage after a valid
body, frames above socket.request.max.bytes, frames written halfway and then
abandoned) go to the broker on many connections at once, while a well-behaved
client on its own connection produces and reads back throughout. The broker
must stay up and serving, answer the well-behaved client correctly and in
time, answer every connection's requests in order, close connections it must
close, shut down cleanly afterwards, and never log a traceback.

Every frame is planned up front from one seed (``TRILOG_FUZZ_SEED`` replays a
run; a failure names its seed). Only the interleaving of connections comes
from the OS.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trio

from producer.client import BrokerConnection, connect
from protocol.api import MESSAGES, ApiKey
from protocol.api_versions import is_served
from protocol.framing import NEED_DATA, FrameDecoder
from protocol.headers import encode_request
from protocol.records import build_batch, iter_records

pytestmark = pytest.mark.clients

WORKERS = 12
REQUEST_BYTES_MAX = 64 * 1024
RESPONSE_BYTES_MAX = 64 * 1024 * 1024
FRAMES = 10_000
SOAK_FRAMES = 200_000
FUZZ_DEADLINE_S = 60.0  # for FRAMES; longer runs get proportionally more
SESSION_DEADLINE_S = 1.0
MUST_CLOSE_DEADLINE_S = 10.0
GOOD_CALL_DEADLINE_S = 10.0
GOOD_ROUNDS_MIN = 10
GOOD_RECORDS_PER_BATCH = 20
CLIENT_ID = "fuzz"
HEADER_BYTES = 8 + 2 + len(CLIENT_ID)  # request header v1 of the seed requests
GOOD_TOPIC = "well-behaved-client-log"
FUZZ_TOPIC = "fuzz-target"

Mutation = Callable[[random.Random, bytes], bytes]


@dataclass
class Session:
    """What one fuzz connection sends, and what the broker must do with it."""

    data: bytes = b""
    frames: int = 0
    correlation_ids: list[int] | None = field(default_factory=list)  # None: framing broken
    abandon: bool = False  # close without reading: a half-written frame
    must_close_silently: bool = False  # first frame must be refused with no answer

    def add(self, payload: bytes, prefix: int | None = None) -> None:
        size = len(payload) if prefix is None else prefix
        self.data += struct.pack(">i", size) + payload
        self.frames += 1
        if prefix is not None or self.correlation_ids is None:
            self.correlation_ids = None
        elif len(payload) >= 8:
            self.correlation_ids.append(struct.unpack_from(">i", payload, 4)[0])


# -- valid requests to start from --------------------------------------------------


def valid_requests(rng: random.Random) -> list[bytes]:
    """Real encoded requests for every served API, at several versions."""
    batch = build_batch([(b"k", b"fuzz", [("h", b"v")], 1_000_000 + i) for i in range(3)])
    produce = {
        "acks": -1,
        "timeout_ms": 1000,
        "topic_data": [{"name": FUZZ_TOPIC, "partition_data": [{"index": 0, "records": batch}]}],
    }
    fetch_partition = {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 4096}
    fetch = {
        "replica_id": -1,
        "max_wait_ms": 20,
        "min_bytes": 1,
        "max_bytes": 8192,
        "topics": [{"topic": FUZZ_TOPIC, "partitions": [fetch_partition]}],
    }
    list_offsets = {
        "replica_id": -1,
        "topics": [{"name": FUZZ_TOPIC, "partitions": [{"partition_index": 0, "timestamp": -1}]}],
    }
    create_topics = {
        "topics": [{"name": "fuzz-made", "num_partitions": 1, "replication_factor": 1}],
        "timeout_ms": 1000,
        "validate_only": True,
    }
    create_partitions = {
        "topics": [{"name": FUZZ_TOPIC, "count": 2, "assignments": None}],
        "timeout_ms": 1000,
        "validate_only": True,
    }
    describe_configs = {
        "resources": [{"resource_type": 2, "resource_name": FUZZ_TOPIC, "configuration_keys": None}]
    }
    epoch_partition = {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}
    leader_epoch = {
        "replica_id": -1,
        "topics": [{"topic": FUZZ_TOPIC, "partitions": [epoch_partition]}],
    }
    bodies = [
        (ApiKey.API_VERSIONS, 0, {}),
        (ApiKey.API_VERSIONS, 2, {}),
        (ApiKey.METADATA, 0, {"topics": [{"name": FUZZ_TOPIC}]}),
        (ApiKey.METADATA, 1, {"topics": None}),
        (ApiKey.METADATA, 8, {"topics": [{"name": FUZZ_TOPIC}, {"name": "absent"}]}),
        (ApiKey.PRODUCE, 3, produce),
        (ApiKey.PRODUCE, 8, produce),
        (ApiKey.PRODUCE, 8, produce | {"acks": 0}),
        (ApiKey.FETCH, 4, fetch),
        (ApiKey.FETCH, 11, fetch),
        (ApiKey.LIST_OFFSETS, 1, list_offsets),
        (ApiKey.LIST_OFFSETS, 5, list_offsets),
        (ApiKey.CREATE_TOPICS, 4, create_topics),
        (ApiKey.DELETE_TOPICS, 3, {"topic_names": ["fuzz-absent"], "timeout_ms": 1000}),
        (ApiKey.CREATE_PARTITIONS, 1, create_partitions),
        (ApiKey.DESCRIBE_CONFIGS, 3, describe_configs),
        (ApiKey.INIT_PRODUCER_ID, 1, {"transactional_id": None, "transaction_timeout_ms": 1}),
        (ApiKey.OFFSET_FOR_LEADER_EPOCH, 3, leader_epoch),
    ]
    return [
        encode_request(key, version, rng.randrange(1 << 31), CLIENT_ID, body)
        for key, version, body in bodies
    ]


# -- mutations ------------------------------------------------------------------------


def _at(rng: random.Random, data: bytes, width: int) -> int:
    """A position in the body, past the header, where ``width`` bytes fit (0 if none)."""
    fits = len(data) >= HEADER_BYTES + width
    return rng.randrange(HEADER_BYTES, len(data) - width + 1) if fits else 0


def _overwrite(data: bytes, pos: int, value: bytes) -> bytes:
    return data[:pos] + value + data[pos + len(value) :]


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randint(0, len(data))
    return data[:pos] + rng.randbytes(rng.randint(1, 16)) + data[pos:]


def delete_bytes(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randint(0, len(data))
    return data[:pos] + data[pos + rng.randint(1, 16) :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(0, max(len(data) - 1, 0))]


def huge_count(rng: random.Random, data: bytes) -> bytes:
    """An array count or int32 size far beyond what follows."""
    value = rng.choice([0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x01000000, rng.getrandbits(32)])
    return _overwrite(data, _at(rng, data, 4), value.to_bytes(4, "big"))


def string_length_lie(rng: random.Random, data: bytes) -> bytes:
    value = rng.choice([0x7FFF, 0xFFFF, 0xFFFE, 0x8000, rng.getrandbits(16)])
    return _overwrite(data, _at(rng, data, 2), value.to_bytes(2, "big"))


def varint_bomb(rng: random.Random, data: bytes) -> bytes:
    """A varint that never ends, or one for a huge compact length."""
    bomb = rng.choice([b"\xff" * rng.randint(5, 12) + b"\x01", b"\xff\xff\xff\xff\x0f"])
    pos = _at(rng, data, 0)
    return data[:pos] + bomb + data[pos + rng.randint(0, 5) :]


def random_api(rng: random.Random, data: bytes) -> bytes:
    key = rng.choice([*MESSAGES, *range(-2, 80)])
    version = rng.choice([-1, *range(0, 20), 0x7FFF])
    return struct.pack(">hh", key, version) + data[4:]


def trailing_garbage(rng: random.Random, data: bytes) -> bytes:
    return data + rng.randbytes(rng.randint(1, 64))


def random_bytes(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(rng.randint(0, 256))


MUTATIONS: list[Mutation] = [
    flip_bytes,
    insert_bytes,
    delete_bytes,
    truncate,
    huge_count,
    string_length_lie,
    varint_bomb,
    random_api,
    trailing_garbage,
    random_bytes,
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    for mutation in rng.choices(MUTATIONS, k=rng.randint(1, 3)):
        data = mutation(rng, data)
    return data


# -- planning ---------------------------------------------------------------------


def plan_sessions(seed: int, frames: int) -> list[Session]:
    """Connections and their bytes, from the seed alone, totalling ``frames`` frames."""
    rng = random.Random(seed)
    valid = valid_requests(rng)
    sessions: list[Session] = []
    total = 0
    while total < frames:
        sessions.append(_plan_session(rng, valid))
        total += sessions[-1].frames
    return sessions


def _plan_session(rng: random.Random, valid: list[bytes]) -> Session:
    session = Session()
    kind = rng.random()
    if kind < 0.04:
        session.add(rng.randbytes(rng.randint(0, 64)), prefix=_bad_size(rng))
        session.must_close_silently = True
        return session
    if kind < 0.08:
        payload = random_api(rng, rng.choice(valid))
        key, version = struct.unpack_from(">hh", payload)
        session.add(payload)
        session.must_close_silently = key != ApiKey.API_VERSIONS and not is_served(key, version)
        return session
    for _ in range(rng.randint(1, 8)):
        if _add_frame(rng, session, rng.choice(valid)):
            break
    return session


def _bad_size(rng: random.Random) -> int:
    return rng.choice([REQUEST_BYTES_MAX + 1, rng.randint(REQUEST_BYTES_MAX + 1, 2**31 - 1), -1])


def _add_frame(rng: random.Random, session: Session, payload: bytes) -> bool:
    """Add one frame, maybe mutated, maybe misframed; True if it ends the session."""
    if rng.random() < 0.8:
        payload = mutate(rng, payload)
    framing = rng.random()
    if framing < 0.8:
        session.add(payload)
    elif framing < 0.85:
        session.add(payload, prefix=rng.randint(0, len(payload)))
    elif framing < 0.9:
        session.add(payload, prefix=len(payload) + rng.randint(1, 4096))
    elif framing < 0.93:
        session.add(payload, prefix=_bad_size(rng))
        return True
    elif framing < 0.97:
        session.add(payload[: rng.randint(0, max(len(payload) - 1, 0))], prefix=len(payload))
        session.abandon = True
        return True
    else:
        padded = payload + rng.randbytes(max(REQUEST_BYTES_MAX - len(payload), 0))
        session.add(padded[:REQUEST_BYTES_MAX])
    return False


# -- running ----------------------------------------------------------------------


@dataclass
class Outcome:
    responses: list[bytes] = field(default_factory=list)
    closed: bool = False  # the broker closed (EOF or reset) before our deadline


async def run_session(host: str, port: int, session: Session, rng: random.Random) -> Outcome:
    """Send the session's bytes in random pieces, then read until the broker closes."""
    outcome = Outcome()
    deadline = MUST_CLOSE_DEADLINE_S if session.must_close_silently else SESSION_DEADLINE_S
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        try:
            await _send_in_pieces(stream, session.data, rng)
            if session.abandon:
                return outcome
            await stream.send_eof()
        except (trio.BrokenResourceError, OSError):
            pass  # the broker closed mid-send; read what it answered first
        decoder = FrameDecoder(RESPONSE_BYTES_MAX)
        with trio.move_on_after(deadline):
            try:
                while data := await stream.receive_some(1 << 16):
                    decoder.receive_data(data)
                    while (frame := decoder.next_frame()) is not NEED_DATA:
                        outcome.responses.append(frame)
            except (trio.BrokenResourceError, OSError):
                pass
            outcome.closed = True
    return outcome


async def _send_in_pieces(stream: trio.SocketStream, data: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 3, 7, 64, 1500, len(data)])
        await stream.send_all(data[pos : pos + step])
        pos += step


def check_outcome(session: Session, outcome: Outcome) -> None:
    if session.must_close_silently:
        assert outcome.closed and not outcome.responses, (session.data[:64], outcome)
    if session.correlation_ids is not None:
        answered = iter(session.correlation_ids)
        for response in outcome.responses:
            got = struct.unpack_from(">i", response)[0]
            assert got in answered, f"response {got} out of order: sent {session.correlation_ids}"


async def fuzz_worker(host: str, port: int, sessions: list[Session], seed: int) -> None:
    """Run sessions one after another, checking each."""
    rng = random.Random(seed)
    for session in sessions:
        check_outcome(session, await run_session(host, port, session, rng))


# -- the well-behaved client ------------------------------------------------------


class WellBehaved:
    """Produces acks=all batches and reads each back, until told to stop."""

    def __init__(self, conn: BrokerConnection) -> None:
        self.conn = conn
        self.acked: list[bytes] = []
        self.rounds = 0

    async def produce(self, values: list[bytes]) -> int:
        batch = build_batch([(None, v, [], 1_000_000 + i) for i, v in enumerate(values)])
        partition_data = [{"index": 0, "records": batch}]
        body = {
            "acks": -1,
            "timeout_ms": 5000,
            "topic_data": [{"name": GOOD_TOPIC, "partition_data": partition_data}],
        }
        with trio.fail_after(GOOD_CALL_DEADLINE_S):
            response = await self.conn.request(ApiKey.PRODUCE, body)
        answer = response.responses[0].partition_responses[0]
        assert answer.error_code == 0, answer
        return answer.base_offset

    async def fetch(self, offset: int) -> list[tuple[int, bytes]]:
        partition = {"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}
        body = {
            "replica_id": -1,
            "max_wait_ms": 0,
            "min_bytes": 0,
            "max_bytes": 1 << 20,
            "topics": [{"topic": GOOD_TOPIC, "partitions": [partition]}],
        }
        with trio.fail_after(GOOD_CALL_DEADLINE_S):
            response = await self.conn.request(ApiKey.FETCH, body)
        answer = response.responses[0].partitions[0]
        assert answer.error_code == 0, answer
        return [(r.offset, r.value) for r in iter_records(answer.records)]

    async def run(self, stop: trio.Event) -> None:
        while not stop.is_set() or self.rounds < GOOD_ROUNDS_MIN:
            values = [f"good-{self.rounds}-{i}".encode() for i in range(GOOD_RECORDS_PER_BATCH)]
            base = await self.produce(values)
            assert base == len(self.acked), f"round {self.rounds}: offset {base}"
            self.acked += values
            expected = list(enumerate(self.acked))[base:]
            assert (await self.fetch(base))[: len(values)] == expected
            self.rounds += 1

    async def read_everything(self) -> list[bytes]:
        got: list[tuple[int, bytes]] = []
        while len(got) < len(self.acked):
            batch = await self.fetch(len(got))
            assert batch, f"nothing at offset {len(got)} of {len(self.acked)}"
            got += batch
        assert [offset for offset, _ in got] == list(range(len(got)))
        return [value for _, value in got]


async def create_topic(conn: BrokerConnection, name: str) -> None:
    topic = {"name": name, "num_partitions": 1, "replication_factor": 1}
    response = await conn.request(ApiKey.CREATE_TOPICS, {"topics": [topic], "timeout_ms": 5000})
    assert response.topics[0].error_code == 0, response


# -- the test ---------------------------------------------------------------------


def fuzz_seed() -> int:
    replay = os.environ.get("TRILOG_FUZZ_SEED")
    return int(replay) if replay else random.SystemRandom().randrange(1 << 32)


def split(sessions: list[Session], workers: int) -> Iterator[list[Session]]:
    return (sessions[i::workers] for i in range(workers))


async def fuzz_while_serving_a_good_client(broker, seed: int, frames: int) -> WellBehaved:
    sessions = plan_sessions(seed, frames)
    host, port = broker.host, broker.port
    async with connect(host, port, client_id="well-behaved") as conn:
        await create_topic(conn, GOOD_TOPIC)
        await create_topic(conn, FUZZ_TOPIC)
        good = WellBehaved(conn)
        stop = trio.Event()
        with trio.fail_after(FUZZ_DEADLINE_S * frames / FRAMES):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(good.run, stop)
                async with trio.open_nursery() as fuzzers:
                    for i, share in enumerate(split(sessions, WORKERS)):
                        fuzzers.start_soon(fuzz_worker, host, port, share, seed + i)
                stop.set()
        assert await good.read_everything() == good.acked
    return good


@pytest.mark.parametrize("frames", [FRAMES, pytest.param(SOAK_FRAMES, marks=pytest.mark.soak)])
async def test_broker_survives_malformed_frames_while_serving_a_client(broker_factory, frames):
    seed = fuzz_seed()
    broker = broker_factory(
        network={"request_bytes_max": REQUEST_BYTES_MAX, "shutdown_timeout_ms": 3000},
        log={"auto_create_topics_enable": False, "message_bytes_max": REQUEST_BYTES_MAX // 2},
    )
    try:
        good = await fuzz_while_serving_a_good_client(broker, seed, frames)
        assert good.rounds >= GOOD_ROUNDS_MIN
        assert broker.alive(), broker.log()
        async with connect(broker.host, broker.port) as conn:
            assert conn.versions
        assert "closing connection" in broker.log(), "the fuzz never reached the parser"
        assert broker.stop() == 0, broker.log()
        broker.assert_no_traceback()
    except BaseException as exc:
        exc.add_note(f"fuzz seed {seed}: replay with TRILOG_FUZZ_SEED={seed}")
        raise
