"""Representative values for any schema at any version, for round-trip tests.

``sample(message, version)`` sets every field the version has (tagged ones
included) to a non-default value, so a field the codec drops or misplaces
shows up as a difference; ``nulls=True`` sets every nullable field to None.
``strategy(message, version)`` is the same walk as a hypothesis strategy.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hypothesis import strategies as st

from protocol.schema import Field, Message

_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
}


def sample(message: Message, version: int, *, nulls: bool = False) -> dict[str, Any]:
    """A dict with every field of ``message`` at ``version`` set to a distinct value."""
    counter = itertools.count(1)
    return _struct(message.fields, version, counter, nulls)


def _struct(fields, version, counter, nulls) -> dict[str, Any]:
    return {f.py_name: _field(f, version, counter, nulls) for f in fields if version in f.versions}


def _field(f: Field, version: int, counter, nulls: bool) -> Any:
    if nulls and f.nullable_in(version):
        return None
    if f.is_array:
        return [_element(f, version, counter, nulls) for _ in range(2)]
    return _element(f, version, counter, nulls)


def _element(f: Field, version: int, counter, nulls: bool) -> Any:
    if f.is_struct:
        return _struct(f.fields, version, counter, nulls)
    n = next(counter)
    kind = f.element
    if kind in _RANGES:
        low, high = _RANGES[kind]
        return low + (n * 7919) % (high - low)
    return {
        "float64": n + 0.25,
        "bool": n % 2 == 1,
        "uuid": uuid.UUID(int=n * 0x1234567890ABCDEF),
        "string": f"{f.py_name}-{n}-é",
        "bytes": bytes(range(n % 7, n % 7 + 5)),
        "records": b"\x00" * 12 + bytes([n % 256]) * 20,
    }[kind]


def strategy(message: Message, version: int) -> st.SearchStrategy[dict[str, Any]]:
    """Hypothesis strategy for bodies of ``message`` at ``version``."""
    return _struct_strategy(message.fields, version)


def _struct_strategy(fields, version):
    return st.fixed_dictionaries(
        {f.py_name: _field_strategy(f, version) for f in fields if version in f.versions}
    )


def _field_strategy(f: Field, version: int):
    element = _struct_strategy(f.fields, version) if f.is_struct else _scalar_strategy(f)
    value = st.lists(element, max_size=3) if f.is_array else element
    return st.none() | value if f.nullable_in(version) else value


def _scalar_strategy(f: Field):
    kind = f.element
    if kind in _RANGES:
        return st.integers(*_RANGES[kind])
    return {
        "float64": st.floats(allow_nan=False),
        "bool": st.booleans(),
        "uuid": st.uuids(),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=20),
        "records": st.binary(max_size=64),
    }[kind]
