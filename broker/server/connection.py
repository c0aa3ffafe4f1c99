"""One client connection: frames in, responses out in request order.

The reader task only moves bytes into a sans-IO FrameDecoder and hands each
whole frame to the dispatcher *in arrival order*; the dispatcher does the
synchronous part of a request (validation, log append) at once, so two
Produce requests on one connection append in the order they were sent. What
must wait (acks=all, Fetch long polling) comes back as an awaitable that runs
in the connection's nursery while later requests are read: pipelining. The
writer task sends responses strictly in request order, which Kafka clients
rely on. The bounded in-flight queue is the backpressure: at its limit the
reader stops reading the socket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from protocol.framing import NEED_DATA, FrameDecoder, FrameTooLargeError, encode_frame

log = logging.getLogger(__name__)

RECEIVE_BYTES = 256 * 1024


class CloseConnection(Exception):
    """Raised by a dispatcher when Kafka would close the connection (bad request)."""


Reply = bytes | Callable[[], Awaitable[bytes | None]] | None
"""What a dispatcher returns for one frame: the response payload now, an async
function that produces it later, or None for requests with no response
(Produce with acks=0)."""

Dispatcher = Callable[[bytes], Reply]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    request_bytes_max: int
    inflight_requests_max: int
    idle_timeout_s: float


class _Pending:
    """A response slot, filled by a delayed request task."""

    __slots__ = ("done", "payload")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.payload: bytes | None = None


class Connection:
    def __init__(
        self,
        stream: trio.SocketStream | trio.abc.Stream,
        dispatch: Dispatcher,
        limits: ConnectionLimits,
        peer: str,
    ) -> None:
        self.stream = stream
        self.dispatch = dispatch
        self.limits = limits
        self.peer = peer
        self.decoder = FrameDecoder(limits.request_bytes_max)
        self._send, self._receive = trio.open_memory_channel[_Pending | bytes](
            limits.inflight_requests_max
        )
        self._read_scope = trio.CancelScope()

    def stop_reading(self) -> None:
        """Graceful shutdown: read no more requests, answer those already read, close."""
        self._read_scope.cancel()

    async def serve(self) -> None:
        """Run until the peer closes, a request is refused, or we are cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_responses, nursery.cancel_scope)
                drop = False  # stays False when stop_reading() ends the read: drain then
                try:
                    with self._read_scope:
                        drop = await self._read_requests(nursery)
                finally:
                    self._send.close()
                if drop:  # the peer left (or must go): pending answers have nobody to read
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            log.debug("connection %s dropped", self.peer)
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _read_requests(self, nursery: trio.Nursery) -> bool:
        """Read and dispatch until the peer closes or goes idle (True: drop the
        connection and its pending answers; Kafka treats end of input as a
        disconnect) or sends what we refuse (False: answer earlier requests first)."""
        timeout_s = self.limits.idle_timeout_s
        # one scope for the connection's life, its deadline pushed on by every read
        # (a scope per receive cost ~8% of broker CPU under load)
        with trio.CancelScope(deadline=trio.current_time() + timeout_s) as idle:
            while True:
                data = await self.stream.receive_some(RECEIVE_BYTES)
                if not data:
                    return True
                idle.deadline = trio.current_time() + timeout_s
                try:
                    self.decoder.receive_data(data)
                    while (frame := self.decoder.next_frame()) is not NEED_DATA:
                        await self._handle_frame(frame, nursery)
                except (FrameTooLargeError, CloseConnection) as exc:
                    log.warning("closing connection %s: %s", self.peer, exc)
                    return False  # answer what came before the bad request, then close
        log.info("closing idle connection %s", self.peer)
        return True

    async def _handle_frame(self, frame: bytes, nursery: trio.Nursery) -> None:
        reply = self.dispatch(frame)
        if reply is None:
            return
        if isinstance(reply, bytes):
            await self._send.send(reply)
            return
        pending = _Pending()
        await self._send.send(pending)
        nursery.start_soon(self._complete, reply, pending)

    @staticmethod
    async def _complete(make_reply: Callable[[], Awaitable[bytes | None]], slot: _Pending) -> None:
        try:
            slot.payload = await make_reply()
        finally:
            slot.done.set()

    async def _write_responses(self, cancel_scope: trio.CancelScope) -> None:
        async for item in self._receive:
            if isinstance(item, _Pending):
                await item.done.wait()
                payload = item.payload
                if payload is None:
                    continue
            else:
                payload = item
            await self.stream.send_all(encode_frame(payload))
        cancel_scope.cancel()
