"""Links between trilog processes over the controller listener.

Two kinds of traffic share one length-prefixed framing (protocol/framing.py):

- one-way messages (Raft votes and appends): best effort, like a UDP packet.
  Each PeerLink has a bounded outbox; when it is full the newest message is
  dropped and counted: Raft retries by itself, and a slow peer must never
  grow our memory.
- requests with responses (broker registration, heartbeats, ISR changes,
  forwarded admin commands): matched by id; a request fails with PeerError if
  the link drops or the caller's deadline passes (callers use trio's
  move_on_after / fail_after).

Envelopes are dicts: {"k": "m", "from": id, "m": msg} for one-way messages,
{"k": "q", "id": n, "m": msg} for requests and {"k": "r", "id": n, "m": msg}
for responses; messages are encoded with peer_codec.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from broker.server import peer_codec
from protocol.framing import NEED_DATA, FrameDecoder, FrameTooLargeError, encode_frame

log = logging.getLogger(__name__)

OUTBOX_MAX = 1024
UNREACHABLE_WAIT_S = 0.3
PEER_REQUESTS_CONCURRENT_MAX = 64
RECONNECT_BACKOFF_S = (0.05, 1.0)
READ_BYTES = 1 << 20


class PeerError(Exception):
    """A request to a peer could not be completed (link down, bad answer)."""


OneWayHandler = Callable[[int, Any], None]
RequestHandler = Callable[[Any], Awaitable[Any]]


async def _read_frames(stream: trio.abc.Stream, decoder: FrameDecoder):
    """Yield decoded envelopes from the stream until it closes."""
    while True:
        data = await stream.receive_some(READ_BYTES)
        if not data:
            return
        decoder.receive_data(data)
        while (frame := decoder.next_frame()) is not NEED_DATA:
            yield peer_codec.decode(frame)


class PeerLink:
    """Our side of the link to one peer node: an outbox and pending requests."""

    def __init__(self, local_id: int, peer_id: int, host: str, port: int) -> None:
        self.local_id = local_id
        self.peer_id = peer_id
        self.address = (host, port)
        self._out_send, self._out_receive = trio.open_memory_channel[bytes](OUTBOX_MAX)
        self._pending: dict[int, tuple[trio.Event, list]] = {}
        self._ids = itertools.count(1)
        self.dropped = 0
        self.connected = False
        self._up = trio.Event()

    def send(self, message: Any) -> None:
        """Queue a one-way message; dropped (and counted) if the outbox is full."""
        envelope = {"k": "m", "from": self.local_id, "m": message}
        try:
            self._out_send.send_nowait(encode_frame(peer_codec.encode(envelope)))
        except trio.WouldBlock:
            self.dropped += 1

    async def request(self, message: Any) -> Any:
        """Send a request and wait for its response (no timeout of its own, but a
        peer we cannot reach fails fast: the caller should try another)."""
        if not self.connected:
            with trio.move_on_after(UNREACHABLE_WAIT_S):
                await self._up.wait()
            if not self.connected:
                raise PeerError(f"node {self.peer_id} at {self.address} is unreachable")
        request_id = next(self._ids)
        done = trio.Event()
        slot: list = []
        self._pending[request_id] = (done, slot)
        try:
            frame = encode_frame(peer_codec.encode({"k": "q", "id": request_id, "m": message}))
            await self._out_send.send(frame)
            await done.wait()
        finally:
            self._pending.pop(request_id, None)
        if not slot:
            raise PeerError(f"link to node {self.peer_id} dropped during a request")
        return slot[0]

    def _fail_pending(self) -> None:
        for done, _ in self._pending.values():
            done.set()

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a connection up, writing the outbox and reading responses."""
        task_status.started()
        backoff = RECONNECT_BACKOFF_S[0]
        while True:
            try:
                stream = await trio.open_tcp_stream(*self.address)
            except OSError:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_BACKOFF_S[1])
                continue
            backoff = RECONNECT_BACKOFF_S[0]
            self.connected = True
            self._up.set()
            try:
                async with stream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, stream, nursery.cancel_scope)
                    await self._read(stream)
                    nursery.cancel_scope.cancel()
            except* (
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
                FrameTooLargeError,
                peer_codec.PeerCodecError,
            ) as group:
                log.debug("link to node %d lost: %s", self.peer_id, group.exceptions[0])
            finally:
                self.connected = False
                self._up = trio.Event()
                self._fail_pending()

    async def _write(self, stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        try:
            async for frame in self._out_receive:
                await stream.send_all(frame)
        finally:
            scope.cancel()

    async def _read(self, stream: trio.abc.Stream) -> None:
        async for envelope in _read_frames(stream, FrameDecoder(peer_codec.FRAME_BYTES_MAX)):
            if envelope.get("k") == "r" and envelope.get("id") in self._pending:
                done, slot = self._pending[envelope["id"]]
                slot.append(envelope["m"])
                done.set()


async def serve_peer_connection(
    stream: trio.abc.Stream, on_message: OneWayHandler, on_request: RequestHandler
) -> None:
    """The accepting side: deliver one-way messages, answer requests concurrently."""
    send_lock = trio.Lock()
    slots = trio.Semaphore(PEER_REQUESTS_CONCURRENT_MAX)

    async def answer(request_id: int, message: Any) -> None:
        try:
            response = await on_request(message)
        finally:
            slots.release()
        frame = encode_frame(peer_codec.encode({"k": "r", "id": request_id, "m": response}))
        async with send_lock:
            await stream.send_all(frame)

    try:
        async with stream, trio.open_nursery() as nursery:
            decoder = FrameDecoder(peer_codec.FRAME_BYTES_MAX)
            async for envelope in _read_frames(stream, decoder):
                kind = envelope.get("k") if isinstance(envelope, dict) else None
                if kind == "m":
                    on_message(envelope["from"], envelope["m"])
                elif kind == "q":
                    await slots.acquire()  # at the limit, stop reading: backpressure
                    nursery.start_soon(answer, envelope["id"], envelope["m"])
                else:
                    log.warning("closing peer connection: unexpected envelope %r", kind)
                    return
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
        log.debug("peer connection closed: %s", group.exceptions[0])
    except* (FrameTooLargeError, peer_codec.PeerCodecError) as group:
        log.warning("closing peer connection after a bad frame: %s", group.exceptions[0])
