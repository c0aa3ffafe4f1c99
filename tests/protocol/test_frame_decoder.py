"""FrameDecoder: whole frames out of arbitrary deliveries, with a hard byte cap."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.framing import NEED_DATA, FrameDecoder, FrameTooLargeError, encode_frame


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        frames.append(frame)
    return frames


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_empty_decoder_needs_data() -> None:
    assert FrameDecoder(100).next_frame() is NEED_DATA


def test_byte_by_byte_delivery() -> None:
    payloads = [b"hello", b"", b"x" * 300]
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(1000)
    frames = []
    for i in range(len(stream)):
        decoder.receive_data(stream[i : i + 1])
        frames += drain(decoder)
    assert frames == payloads
    assert decoder.buffered_bytes == 0


def test_many_frames_in_one_delivery() -> None:
    payloads = [bytes([i]) * i for i in range(50)]
    decoder = FrameDecoder(100)
    decoder.receive_data(b"".join(encode_frame(p) for p in payloads))
    assert drain(decoder) == payloads


@given(
    payloads=st.lists(st.binary(max_size=40), max_size=8),
    cuts=st.lists(st.integers(1, 30), max_size=50),
)
def test_arbitrary_splits(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(64)
    frames, pos = [], 0
    for cut in [*cuts, len(stream)]:
        decoder.receive_data(stream[pos : pos + cut])
        pos += cut
        frames += drain(decoder)
    assert frames == payloads


def test_oversize_prefix_refused_before_body() -> None:
    decoder = FrameDecoder(1024)
    with pytest.raises(FrameTooLargeError) as info:
        decoder.receive_data(struct.pack(">i", 1025))
    assert info.value.size_bytes == 1025
    assert info.value.max_frame_bytes == 1024


def test_oversize_prefix_refused_when_split() -> None:
    decoder = FrameDecoder(1024)
    decoder.receive_data(b"\x00\x00")
    assert decoder.next_frame() is NEED_DATA
    with pytest.raises(FrameTooLargeError):
        decoder.receive_data(b"\x10\x00")


def test_oversize_second_frame_refused_after_first() -> None:
    decoder = FrameDecoder(10)
    decoder.receive_data(encode_frame(b"ok") + struct.pack(">i", 11))
    with pytest.raises(FrameTooLargeError):
        decoder.next_frame()


def test_negative_length_refused() -> None:
    with pytest.raises(FrameTooLargeError):
        FrameDecoder(10).receive_data(struct.pack(">i", -1))


def test_frame_at_cap_accepted() -> None:
    decoder = FrameDecoder(10)
    decoder.receive_data(encode_frame(b"0123456789"))
    assert decoder.next_frame() == b"0123456789"


def test_feeding_with_a_frame_waiting_is_a_caller_bug() -> None:
    decoder = FrameDecoder(10)
    decoder.receive_data(encode_frame(b"a"))
    with pytest.raises(RuntimeError):
        decoder.receive_data(encode_frame(b"b"))


def test_buffer_does_not_keep_consumed_bytes() -> None:
    decoder = FrameDecoder(1 << 16)
    for _ in range(1000):
        decoder.receive_data(encode_frame(b"z" * 1000))
        assert decoder.next_frame() == b"z" * 1000
    assert decoder.buffered_bytes == 0
    assert len(decoder._buffer) <= 2 * 1004


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(0)


def test_large_and_small_frames_mixed_with_random_splits():
    import random

    from protocol.framing import LARGE_FRAME_BYTES, NEED_DATA, FrameDecoder, encode_frame

    rng = random.Random(5)
    payloads = [
        rng.randbytes(rng.choice([0, 10, LARGE_FRAME_BYTES - 1, LARGE_FRAME_BYTES, 300_000]))
        for _ in range(40)
    ]
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(1 << 20)
    got = []
    pos = 0
    while pos < len(stream):
        step = rng.randint(1, 200_000)
        decoder.receive_data(stream[pos : pos + step])
        pos += step
        while (frame := decoder.next_frame()) is not NEED_DATA:
            got.append(bytes(frame))
    assert got == payloads
    assert decoder.buffered_bytes == 0
