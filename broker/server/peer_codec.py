"""Encoding of the messages brokers and controllers exchange among themselves.

Clients only ever see Kafka's protocol. Between trilog processes, on the
controller listener, the sans-IO cores' own message dataclasses (Raft votes
and appends, broker registration and heartbeats, ISR changes, forwarded admin
commands) travel as JSON: each dataclass is tagged with its registered name,
bytes are base64, tuples stay tuples. Metadata traffic is small; readability
of a captured frame beats a few microseconds here. Only registered types are
ever constructed from the wire.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from typing import Any

_TYPES: dict[str, type] = {}
FRAME_BYTES_MAX = 64 * 1024 * 1024


class PeerCodecError(ValueError):
    """A peer frame that is not a registered message."""


def register(*classes: type) -> None:
    """Allow these dataclasses (and enums) on the wire under their class names."""
    for cls in classes:
        existing = _TYPES.setdefault(cls.__name__, cls)
        assert existing is cls, f"two message types named {cls.__name__}"


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        assert _TYPES.get(name) is type(value), f"{name} is not a registered peer message"
        fields = {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$t": name, **fields}
    if isinstance(value, enum.Enum):
        return {"$e": type(value).__name__, "v": value.value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, tuple):
        return {"$tuple": [_to_plain(v) for v in value]}
    if isinstance(value, frozenset | set):
        return {"$set": sorted(_to_plain(v) for v in value)}
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _to_plain(v) for k, v in value.items()}
        return {"$map": [[_to_plain(k), _to_plain(v)] for k, v in value.items()]}
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$t" in value:
        cls = _TYPES.get(value["$t"])
        if cls is None or not dataclasses.is_dataclass(cls):
            raise PeerCodecError(f"unknown peer message type {value['$t']!r}")
        args = {k: _from_plain(v) for k, v in value.items() if k != "$t"}
        try:
            return cls(**args)
        except TypeError as exc:
            raise PeerCodecError(f"bad {value['$t']}: {exc}") from None
    if "$e" in value:
        cls = _TYPES.get(value["$e"])
        if cls is None or not issubclass(cls, enum.Enum):
            raise PeerCodecError(f"unknown enum {value['$e']!r}")
        return cls(value["v"])
    if "$b" in value:
        return base64.b64decode(value["$b"])
    if "$tuple" in value:
        return tuple(_from_plain(v) for v in value["$tuple"])
    if "$set" in value:
        return frozenset(_from_plain(v) for v in value["$set"])
    if "$map" in value:
        return {_from_plain(k): _from_plain(v) for k, v in value["$map"]}
    return {k: _from_plain(v) for k, v in value.items()}


def encode(message: Any) -> bytes:
    return json.dumps(_to_plain(message), separators=(",", ":")).encode()


def decode(data: bytes) -> Any:
    """Inverse of encode; PeerCodecError for anything else."""
    try:
        plain = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PeerCodecError(f"peer frame is not JSON: {exc}") from None
    return _from_plain(plain)
