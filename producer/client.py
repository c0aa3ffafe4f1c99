"""The client side of one Kafka connection, shared by trilog's producer and consumer.

`BrokerConnection` sends requests and matches responses by order (Kafka
answers a connection's requests in the order they were sent), so several
requests can be in flight at once. It negotiates versions with ApiVersions on
connect: each request is sent at the highest version both sides support,
within what trilog's own schemas declare.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import trio

from protocol.api import MESSAGES, ApiKey
from protocol.errors import ErrorCode
from protocol.framing import NEED_DATA, FrameDecoder, encode_frame
from protocol.headers import decode_response, encode_request
from protocol.schema import Data

log = logging.getLogger(__name__)

RESPONSE_BYTES_MAX = 256 * 1024 * 1024
INFLIGHT_MAX = 64
CLIENT_ID = "trilog"
API_VERSIONS_VERSION = 2


class KafkaClientError(Exception):
    """The broker answered with an error, or the connection failed."""

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class _Slot:
    __slots__ = ("api_key", "version", "done", "payload")

    def __init__(self, api_key: int, version: int) -> None:
        self.api_key = api_key
        self.version = version
        self.done = trio.Event()
        self.payload: bytes | None = None


class BrokerConnection:
    def __init__(self, stream: trio.SocketStream, address: str, client_id: str) -> None:
        self.stream = stream
        self.address = address
        self.client_id = client_id
        self.versions: dict[int, tuple[int, int]] = {}
        self._correlation = itertools.count(1)
        self._pending: deque[tuple[int, _Slot]] = deque()
        self._send_lock = trio.Lock()
        self._slots = trio.Semaphore(INFLIGHT_MAX)
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the broker closed the connection or reading it failed."""
        return self._closed

    def version_for(self, api_key: int, wanted_max: int | None = None) -> int:
        """Highest version of api_key that both we and the broker speak."""
        ours = MESSAGES[api_key][0].valid_versions
        low, high = self.versions.get(api_key, (-1, -1))
        top = min(high, max(ours), wanted_max if wanted_max is not None else high)
        if top < max(low, min(ours)):
            raise KafkaClientError(f"{self.address} serves no usable version of api {api_key}")
        return top

    async def request(
        self,
        api_key: int,
        body: Mapping[str, Any],
        version: int | None = None,
        *,
        expect_response: bool = True,
    ) -> Data | None:
        """Send one request and wait for its response body."""
        if version is None:
            version = self.version_for(api_key)
        correlation_id = next(self._correlation) & 0x7FFFFFFF
        payload = encode_request(api_key, version, correlation_id, self.client_id, body)
        async with self._slots:
            slot = _Slot(api_key, version)
            async with self._send_lock:
                if self._closed:
                    raise KafkaClientError(f"connection to {self.address} is closed")
                if expect_response:
                    self._pending.append((correlation_id, slot))
                await self.stream.send_all(encode_frame(payload))
            if not expect_response:
                return None
            await slot.done.wait()
        if slot.payload is None:
            raise KafkaClientError(f"connection to {self.address} closed mid-request")
        got_id, response = decode_response(api_key, version, slot.payload)
        if got_id != correlation_id:
            raise KafkaClientError(
                f"{self.address}: correlation id {got_id}, expected {correlation_id}"
            )
        return response

    async def _read_responses(self) -> None:
        decoder = FrameDecoder(RESPONSE_BYTES_MAX)
        try:
            while True:
                data = await self.stream.receive_some(1 << 20)
                if not data:
                    return
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not NEED_DATA:
                    if not self._pending:
                        raise KafkaClientError(f"{self.address}: unsolicited response")
                    _, slot = self._pending.popleft()
                    slot.payload = frame
                    slot.done.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            self._closed = True
            while self._pending:
                self._pending.popleft()[1].done.set()

    async def _negotiate(self) -> None:
        body = {"client_software_name": "trilog", "client_software_version": "0.1"}
        response = await self.request(ApiKey.API_VERSIONS, body, API_VERSIONS_VERSION)
        if response.error_code:
            raise KafkaClientError(f"{self.address}: ApiVersions failed", response.error_code)
        self.versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}


@asynccontextmanager
async def connect(
    host: str, port: int, *, client_id: str = CLIENT_ID, timeout_s: float | None = None
) -> AsyncIterator[BrokerConnection]:
    """Open a connection, negotiate versions, and close it on exit.

    timeout_s bounds connecting and negotiating (a stopped broker still accepts
    TCP connections). An exception from the body comes out as itself, not
    wrapped in the ExceptionGroup of the reader task's nursery.
    """
    with trio.fail_after(timeout_s) if timeout_s else contextlib.nullcontext():
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise KafkaClientError(f"cannot connect to {host}:{port}: {exc}") from None
    connection = BrokerConnection(stream, f"{host}:{port}", client_id)
    try:
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(connection._read_responses)
            with trio.fail_after(timeout_s) if timeout_s else contextlib.nullcontext():
                await connection._negotiate()
            try:
                yield connection
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        inner = single_exception(group)
        if inner is group:
            raise
        raise inner from None


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """'host:port,host:port' -> [(host, port)]; ValueError with the bad item."""
    out = []
    for item in filter(None, (part.strip() for part in bootstrap.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{item}' is not HOST:PORT")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("no bootstrap address given")
    return out


class ConnectionPool:
    """Connections by (host, port), each held open by a task in the owner's nursery.

    The producer and consumer share this: a connection is opened on first use,
    reused while it is healthy, and dropped (its task cancelled) after an I/O
    error or a timeout so the next use reconnects.
    """

    def __init__(
        self, nursery: trio.Nursery, *, client_id: str = CLIENT_ID, connect_timeout_ms: int = 10000
    ) -> None:
        self._nursery = nursery
        self._client_id = client_id
        self._connect_timeout_s = connect_timeout_ms / 1000
        self._open: dict[tuple[str, int], tuple[BrokerConnection, trio.CancelScope]] = {}
        self._locks: dict[tuple[str, int], trio.Lock] = {}

    async def get(self, host: str, port: int) -> BrokerConnection:
        """A live connection to host:port, opened now if there is none."""
        key = (host, port)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            held = self._open.get(key)
            if held is not None and not held[0].closed:
                return held[0]
            self.discard(host, port)
            with trio.move_on_after(self._connect_timeout_s):
                conn, scope = await self._nursery.start(self._hold, host, port)
                self._open[key] = (conn, scope)
                return conn
            raise KafkaClientError(f"cannot connect to {host}:{port}: timed out")

    def discard(self, host: str, port: int) -> None:
        """Close the connection to host:port (after an error); the next get reconnects."""
        held = self._open.pop((host, port), None)
        if held is not None:
            held[1].cancel()

    async def _hold(
        self, host: str, port: int, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open host:port, hand (connection, scope) to the starter, keep it open until cancelled."""
        started = False
        with trio.CancelScope() as scope:
            try:
                async with connect(host, port, client_id=self._client_id) as conn:
                    started = True
                    task_status.started((conn, scope))
                    await trio.sleep_forever()
            except (KafkaClientError, BaseExceptionGroup) as exc:
                inner = single_exception(exc)
                if not isinstance(inner, KafkaClientError):
                    raise
                if not started:
                    raise inner from None
                log.warning("connection to %s:%d dropped: %s", host, port, inner)


def single_exception(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (trio wraps them)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def pooled_request(
    pool: ConnectionPool,
    address: tuple[str, int],
    api_key: int,
    body: Mapping[str, Any],
    *,
    timeout_ms: int,
    expect_response: bool = True,
) -> Data | None:
    """One request on the pool's connection to address; a failure or timeout drops it.

    Any connection problem comes out as KafkaClientError with no code, so
    callers can treat it as Kafka's retriable NETWORK_EXCEPTION.
    """
    conn = await pool.get(*address)
    with trio.move_on_after(timeout_ms / 1000):
        try:
            return await conn.request(api_key, body, expect_response=expect_response)
        except (KafkaClientError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            pool.discard(*address)
            raise KafkaClientError(f"{conn.address}: {exc}") from None
    pool.discard(*address)
    raise KafkaClientError(f"{conn.address}: no response within {timeout_ms} ms")


def as_error_code(value: int) -> ErrorCode:
    """The ErrorCode for a response's error field; codes newer than ours are unknown errors."""
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.UNKNOWN_SERVER_ERROR


class TopicMetadata(NamedTuple):
    """What Metadata said of one topic: its error, and each partition's leader (-1: none)."""

    error: ErrorCode
    leaders: tuple[int, ...]


class Cluster:
    """Brokers and partition leaders, learnt from Metadata asked of any reachable broker.

    Known brokers are tried first, then the bootstrap addresses, so the client
    keeps working when the broker it first spoke to goes away.
    """

    def __init__(
        self,
        bootstrap: list[tuple[str, int]],
        pool: ConnectionPool,
        *,
        allow_auto_topic_creation: bool,
        request_timeout_ms: int = 30000,
    ) -> None:
        self.brokers: dict[int, tuple[str, int]] = {}
        self.topics: dict[str, TopicMetadata] = {}
        self._bootstrap = bootstrap
        self._pool = pool
        self._auto_create = allow_auto_topic_creation
        self._timeout_ms = request_timeout_ms
        self._lock = trio.Lock()

    async def refresh(self, topics: Collection[str] = ()) -> None:
        """Learn the given topics and those already known; KafkaClientError if no broker answers."""
        wanted = sorted(set(topics) | set(self.topics))
        body = {
            "topics": [{"name": name} for name in wanted],
            "allow_auto_topic_creation": self._auto_create,
        }
        async with self._lock:
            problems = []
            for address in self._candidates():
                try:
                    response = await pooled_request(
                        self._pool, address, ApiKey.METADATA, body, timeout_ms=self._timeout_ms
                    )
                except KafkaClientError as exc:
                    problems.append(str(exc))
                    continue
                self._apply(response)
                return
            raise KafkaClientError(f"no broker reachable: {'; '.join(problems)}")

    async def topic(self, name: str) -> TopicMetadata:
        """The topic's metadata, fetched if not known yet (its error may be non-zero)."""
        if name not in self.topics:
            await self.refresh([name])
        return self.topics[name]

    def leader(self, topic: str, partition: int) -> tuple[int, tuple[str, int]] | None:
        """(node id, address) of the partition's leader, or None when unknown."""
        meta = self.topics.get(topic)
        if meta is None or meta.error or partition >= len(meta.leaders):
            return None
        node = meta.leaders[partition]
        address = self.brokers.get(node)
        return None if address is None else (node, address)

    def forget(self, topic: str) -> None:
        """Drop what is known of topic so the next use asks again."""
        self.topics.pop(topic, None)

    def _candidates(self) -> list[tuple[str, int]]:
        known = list(self.brokers.values())
        return known + [address for address in self._bootstrap if address not in known]

    def _apply(self, response: Data) -> None:
        self.brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        for topic in response.topics:
            leaders = [-1] * len(topic.partitions)
            for part in topic.partitions:
                if 0 <= part.partition_index < len(leaders):
                    leaders[part.partition_index] = part.leader_id if not part.error_code else -1
            self.topics[topic.name] = TopicMetadata(as_error_code(topic.error_code), tuple(leaders))
