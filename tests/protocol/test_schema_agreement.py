"""The construct declaration (the reference) and the compiled codec agree.

Message.struct(version) is built from protocol/primitives.py; Message.encode
and Message.decode are the closures the broker runs. Same bytes out, same
values back, for every message at every version.
"""

from __future__ import annotations

import pytest
from protocol_samples import sample

from protocol.api import MESSAGES
from protocol.schema import Message

ALL_VERSIONS = [
    pytest.param(message, version, id=f"{message.name}-v{version}")
    for pair in MESSAGES.values()
    for message in pair
    for version in message.valid_versions
]


@pytest.mark.parametrize(("message", "version"), ALL_VERSIONS)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_construct_and_compiled_agree(message: Message, version: int, nulls: bool) -> None:
    body = sample(message, version, nulls=nulls)
    reference = message.struct(version)
    wire = message.encode(body, version)
    assert reference.build(body) == wire
    assert reference.parse(wire) == message.decode(wire, version)[0]


@pytest.mark.parametrize(("message", "version"), ALL_VERSIONS)
def test_construct_fills_defaults_too(message: Message, version: int) -> None:
    assert message.struct(version).build({}) == message.encode({}, version)
