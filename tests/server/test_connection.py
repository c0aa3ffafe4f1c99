"""The trio shell's connection over in-memory streams, on a virtual clock:
ordering of pipelined responses, backpressure, limits, idle timeout, graceful stop."""

import struct

import pytest
import trio
import trio.testing

from broker.server.connection import CloseConnection, Connection, ConnectionLimits
from protocol.framing import encode_frame

LIMITS = ConnectionLimits(request_bytes_max=1024, inflight_requests_max=4, idle_timeout_s=60)


class Client:
    """The test's end of the stream: frames out, frames in."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(encode_frame(payload))

    async def receive(self) -> bytes | None:
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack_from(">i", self.buffer)
                if len(self.buffer) >= 4 + size:
                    frame = bytes(self.buffer[4 : 4 + size])
                    del self.buffer[: 4 + size]
                    return frame
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buffer += data


def delayed(payload: bytes, seconds: float):
    async def run():
        await trio.sleep(seconds)  # virtual time (autojump clock): elapses at once
        return payload

    return run


async def run_connection(nursery, dispatch, limits=LIMITS):
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = Connection(server_stream, dispatch, limits, "test")
    nursery.start_soon(connection.serve)
    return Client(client_stream), connection


async def test_pipelined_responses_come_back_in_request_order(autojump_clock):
    def dispatch(frame: bytes):
        # earlier requests take longer: completion order is the reverse of request order
        n = frame[0]
        return delayed(b"r%d" % n, 10 - n)

    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, dispatch)
        for n in range(4):
            await client.send(bytes([n]))
        assert [await client.receive() for _ in range(4)] == [b"r0", b"r1", b"r2", b"r3"]
        nursery.cancel_scope.cancel()


async def test_dispatch_sees_frames_in_arrival_order_and_none_means_no_response(autojump_clock):
    seen = []

    def dispatch(frame: bytes):
        seen.append(frame)
        return None if frame == b"quiet" else b"ok:" + frame

    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, dispatch)
        for payload in (b"a", b"quiet", b"b"):
            await client.send(payload)
        assert await client.receive() == b"ok:a"
        assert await client.receive() == b"ok:b"
        assert seen == [b"a", b"quiet", b"b"]
        nursery.cancel_scope.cancel()


async def test_inflight_limit_stops_reading(autojump_clock):
    release = trio.Event()
    dispatched = []

    def dispatch(frame: bytes):
        dispatched.append(frame)

        async def wait():
            await release.wait()
            return frame

        return wait

    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, dispatch)
        for n in range(10):
            await client.send(bytes([n]))
        await trio.sleep(1)  # virtual time (autojump clock): elapses at once
        # the writer holds one, the channel holds the limit, the reader blocks on one more
        assert len(dispatched) <= LIMITS.inflight_requests_max + 2
        release.set()
        assert [await client.receive() for _ in range(10)] == [bytes([n]) for n in range(10)]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("size", [LIMITS.request_bytes_max + 1, -1])
async def test_oversized_or_negative_frame_closes_without_reading_it(autojump_clock, size):
    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, lambda f: b"x")
        await client.stream.send_all(struct.pack(">i", size))
        assert await client.receive() is None


async def test_close_connection_from_dispatcher(autojump_clock):
    def dispatch(frame: bytes):
        if frame == b"bad":
            raise CloseConnection("bad request")
        return frame

    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, dispatch)
        await client.send(b"good")
        await client.send(b"bad")
        assert await client.receive() == b"good"
        assert await client.receive() is None


async def test_idle_connection_is_closed(autojump_clock):
    async with trio.open_nursery() as nursery:
        client, _ = await run_connection(nursery, lambda f: f)
        start = trio.current_time()
        assert await client.receive() is None
        assert trio.current_time() - start == pytest.approx(LIMITS.idle_timeout_s, abs=0.01)


async def test_stop_reading_answers_what_was_read_then_closes(autojump_clock):
    async with trio.open_nursery() as nursery:
        client, connection = await run_connection(nursery, lambda f: delayed(f, 5))
        await client.send(b"one")
        await trio.sleep(1)  # virtual time (autojump clock): elapses at once
        connection.stop_reading()
        assert await client.receive() == b"one"
        assert await client.receive() is None
