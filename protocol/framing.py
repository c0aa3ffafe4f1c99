"""Kafka's frame layer, sans-IO: a 4-byte big-endian size, then that many bytes.

``FrameDecoder`` is fed whatever the socket returned and hands out whole
frames; the connection task only moves bytes. A length prefix above the cap
(or negative) is refused the moment its 4 bytes arrive, before any of the
body is buffered, so a peer cannot make us hold more than
``max_frame_bytes`` plus one read.
"""

from __future__ import annotations

import struct
from typing import Final

from protocol.errors import ProtocolError

_SIZE = struct.Struct(">i")
SIZE_PREFIX_BYTES: Final = _SIZE.size


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
LARGE_FRAME_BYTES = 64 * 1024
"""Frames at least this big are received into a buffer of their own."""
"""Returned by ``FrameDecoder.next_frame`` until a whole frame has arrived."""


class FrameTooLargeError(ProtocolError):
    """A length prefix above the cap, or negative: the connection must close."""

    def __init__(self, size_bytes: int, max_frame_bytes: int) -> None:
        super().__init__(f"frame of {size_bytes} bytes refused (limit {max_frame_bytes})")
        self.size_bytes = size_bytes
        self.max_frame_bytes = max_frame_bytes


class FrameDecoder:
    """Splits a byte stream into frames (without their size prefix)."""

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes <= 0:
            raise ValueError(f"max_frame_bytes must be positive, not {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._start = 0  # bytes at the front of _buffer already handed out
        self._body_bytes: int | None = None  # size of the frame being received
        self._large: bytearray | None = None  # a big frame's own buffer, filled in place
        self._filled = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buffer) - self._start + self._filled

    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the peer. Raises FrameTooLargeError on a bad prefix.

        The buffer holds at most one partial frame plus what the caller feeds
        in one call: the caller reads with a bounded receive size and must call
        ``next_frame`` until NEED_DATA before feeding more (else RuntimeError).
        """
        if self._frame_ready():
            raise RuntimeError("receive_data called while a whole frame is waiting")
        if self._large is not None:
            view = memoryview(data)
            take = min(len(view), len(self._large) - self._filled)
            self._large[self._filled : self._filled + take] = view[:take]
            self._filled += take
            self._buffer += view[take:]
            return
        self._buffer += data
        if self._check_prefix() and self._body_bytes >= LARGE_FRAME_BYTES:
            self._start_large_frame()

    def _start_large_frame(self) -> None:
        """Give a big frame a buffer of its own: one copy of its bytes, not three."""
        body_start = self._start + SIZE_PREFIX_BYTES
        have = min(len(self._buffer) - body_start, self._body_bytes)
        self._large = bytearray(self._body_bytes)
        self._large[:have] = memoryview(self._buffer)[body_start : body_start + have]
        self._filled = have
        del self._buffer[: body_start + have]
        self._start = 0

    def next_frame(self) -> bytes | bytearray | _NeedData:
        """The next whole frame's payload, or NEED_DATA."""
        if self._large is not None:
            if self._filled < len(self._large):
                return NEED_DATA
            frame, self._large, self._filled = self._large, None, 0
            self._body_bytes = None
            if self._check_prefix() and self._body_bytes >= LARGE_FRAME_BYTES:
                self._start_large_frame()
            return frame
        if self._body_bytes is None and not self._check_prefix():
            return NEED_DATA
        end = self._start + SIZE_PREFIX_BYTES + self._body_bytes
        if len(self._buffer) < end:
            return NEED_DATA
        with memoryview(self._buffer) as view:  # one copy; released before any resize
            frame = bytes(view[self._start + SIZE_PREFIX_BYTES : end])
        self._start = end
        self._body_bytes = None
        self._compact()
        if self._check_prefix() and self._body_bytes >= LARGE_FRAME_BYTES:
            self._start_large_frame()
        return frame

    def _frame_ready(self) -> bool:
        if self._large is not None:
            return self._filled == len(self._large)
        if not self._check_prefix():
            return False
        return len(self._buffer) - self._start >= SIZE_PREFIX_BYTES + self._body_bytes

    def _check_prefix(self) -> bool:
        """Read the next size prefix if all 4 bytes are here; refuse bad sizes."""
        if self._body_bytes is not None:
            return True
        if len(self._buffer) - self._start < SIZE_PREFIX_BYTES:
            return False
        (size,) = _SIZE.unpack_from(self._buffer, self._start)
        if size < 0 or size > self.max_frame_bytes:
            raise FrameTooLargeError(size, self.max_frame_bytes)
        self._body_bytes = size
        return True

    def _compact(self) -> None:
        """Drop consumed bytes once they are at least half the buffer (amortized O(1))."""
        if self._start and self._start * 2 >= len(self._buffer):
            del self._buffer[: self._start]
            self._start = 0


def encode_frame(payload: bytes) -> bytes:
    """``payload`` with its 4-byte big-endian size prefix."""
    return _SIZE.pack(len(payload)) + payload
