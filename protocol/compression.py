"""Compression codecs of RecordBatch v2: none, gzip, snappy, lz4, zstd.

The codec id is the low three bits of the batch attributes. A compressed batch
holds its records as one compressed block, so the broker only decompresses to
validate or to serve an old client, and a consumer to read.

Decompression is bounded: ``max_bytes`` caps the output, and a block that
would inflate past it (a decompression bomb) raises before anything larger
than the cap is allocated.

Formats, as the real clients write them:

- gzip: RFC 1952 members (possibly several, concatenated), via zlib.
- snappy: librdkafka writes a raw snappy block; the Java client (and
  kafka-python) write the xerial framing, ``b"\\x82SNAPPY\\x00"``, two int32
  (version, compatible version), then blocks of int32 length + raw snappy.
  We read both and write raw, which every client reads.
- lz4: the standard LZ4 frame format (Kafka's v2 batches fixed the old
  header-checksum quirk of magic 0/1 messages).
- zstd: a standard zstd frame.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

import cramjam

from protocol.batch import CorruptBatchError, InvalidBatchError


class Codec(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class UnsupportedCompressionError(ValueError):
    """A codec id that Kafka does not define (Kafka's UNSUPPORTED_COMPRESSION_TYPE)."""


class CorruptCompressionError(CorruptBatchError):
    """Compressed data that does not decode (Kafka's CORRUPT_MESSAGE)."""


class DecompressedTooLargeError(InvalidBatchError):
    """Compressed data that inflates past the caller's cap."""


XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16  # magic + int32 version + int32 compatible version
_INT32 = struct.Struct(">i")
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw zlib
_GZIP_LEVEL = 6
_FIRST_GUESS_BYTES = 64 * 1024
_BUFFER_FULL = "failed to write whole buffer"  # cramjam's message when the output is too small

Buffer = bytes | bytearray | memoryview


def codec_of(codec: int) -> Codec:
    """The Codec for an id, or UnsupportedCompressionError."""
    try:
        return Codec(codec)
    except ValueError:
        raise UnsupportedCompressionError(f"unknown compression codec {codec}") from None


def compress(codec: int, data: Buffer) -> bytes:
    """Compress ``data`` as one block in the format Kafka expects for ``codec``."""
    kind = codec_of(codec)
    if kind is Codec.NONE:
        return bytes(data)
    if kind is Codec.GZIP:
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return packer.compress(data) + packer.flush()
    if kind is Codec.SNAPPY:
        return bytes(cramjam.snappy.compress_raw(bytes(data)))
    if kind is Codec.LZ4:
        return bytes(cramjam.lz4.compress(bytes(data)))
    return bytes(cramjam.zstd.compress(bytes(data)))


def decompress(codec: int, data: Buffer, *, max_bytes: int) -> bytes:
    """Inflate one compressed block, refusing output beyond ``max_bytes``.

    Raises UnsupportedCompressionError for an unknown codec,
    CorruptCompressionError for data that does not decode and
    DecompressedTooLargeError when the output would exceed the cap.
    """
    kind = codec_of(codec)
    if kind is Codec.NONE:
        _check_size(len(data), max_bytes)
        return bytes(data)
    if kind is Codec.GZIP:
        return _gunzip(bytes(data), max_bytes)
    if kind is Codec.SNAPPY:
        if bytes(data[: len(XERIAL_MAGIC)]) == XERIAL_MAGIC:
            return _unsnappy_xerial(bytes(data), max_bytes)
        return _unsnappy_raw(bytes(data), max_bytes)
    module = cramjam.lz4 if kind is Codec.LZ4 else cramjam.zstd
    return _decompress_bounded(module, bytes(data), max_bytes, kind.name.lower())


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DecompressedTooLargeError(f"decompressed size exceeds {max_bytes} bytes")


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """Inflate concatenated gzip members (as GZIPInputStream reads them), capped."""
    out = bytearray()
    pending = data
    while True:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        while True:
            try:
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
            except zlib.error as exc:
                raise CorruptCompressionError(f"gzip: {exc}") from None
            _check_size(len(out), max_bytes)
            if inflater.eof or not inflater.unconsumed_tail:
                break
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise CorruptCompressionError("gzip: truncated stream")
        pending = inflater.unused_data
        if not pending:
            return bytes(out)


def _unsnappy_raw(data: bytes, max_bytes: int) -> bytes:
    """One raw snappy block; its preamble states the output size, checked first."""
    try:
        _check_size(cramjam.snappy.decompress_raw_len(data), max_bytes)
        return bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as exc:
        raise CorruptCompressionError(f"snappy: {exc}") from None


def _unsnappy_xerial(data: bytes, max_bytes: int) -> bytes:
    """The xerial framing: a 16-byte header, then int32-length-prefixed raw blocks."""
    if len(data) < _XERIAL_HEADER_SIZE:
        raise CorruptCompressionError("snappy: truncated xerial header")
    out = bytearray()
    pos = _XERIAL_HEADER_SIZE
    while pos < len(data):
        if pos + 4 > len(data):
            raise CorruptCompressionError("snappy: truncated xerial block length")
        (size,) = _INT32.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise CorruptCompressionError(f"snappy: xerial block of {size} bytes overruns")
        out += _unsnappy_raw(data[pos : pos + size], max_bytes - len(out))
        pos += size
    return bytes(out)


def _decompress_bounded(module, data: bytes, max_bytes: int, name: str) -> bytes:
    """Decode a lz4 or zstd frame into a buffer that grows by doubling up to the cap.

    cramjam refuses to write past the end of the buffer it is given, so the
    output can never outgrow the cap; a frame that fills cap + 1 bytes is a bomb.
    """
    size = min(max(_FIRST_GUESS_BYTES, 4 * len(data)), max_bytes + 1)
    while True:
        out = bytearray(size)
        try:
            written = module.decompress_into(data, out)
        except cramjam.DecompressionError as exc:
            if _BUFFER_FULL not in str(exc):
                raise CorruptCompressionError(f"{name}: {exc}") from None
            if size > max_bytes:
                raise DecompressedTooLargeError(
                    f"{name}: decompressed size exceeds {max_bytes} bytes"
                ) from None
            size = min(2 * size, max_bytes + 1)
            continue
        _check_size(written, max_bytes)
        del out[written:]
        return bytes(out)
