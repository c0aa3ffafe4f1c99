"""An in-process broker on a fixed free port, for the producer and consumer libraries.

The port is chosen up front (not 0) because the broker advertises its
configured listener in Metadata, and clients connect to what it advertises.
"""

import importlib
import socket
import warnings
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from producer.client import connect
from protocol.api import ApiKey
from tests.server.conftest import make_config, running_broker


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client_config(tmp_path, **log_overrides):
    config = make_config(tmp_path, **log_overrides)
    listeners = f"PLAINTEXT://127.0.0.1:{free_port()}"
    return replace(config, network=replace(config.network, listeners=listeners))


@asynccontextmanager
async def cluster(config, topics=None):
    """Run the broker, create {topic: partitions}, yield the bootstrap string."""
    async with running_broker(config) as (host, port):
        if topics:
            async with connect(host, port) as conn:
                body = {
                    "topics": [
                        {"name": name, "num_partitions": count, "replication_factor": 1}
                        for name, count in topics.items()
                    ],
                    "timeout_ms": 5000,
                }
                response = await conn.request(ApiKey.CREATE_TOPICS, body)
                assert all(t.error_code == 0 for t in response.topics), response
        yield f"{host}:{port}"


@pytest.fixture
def config(tmp_path):
    return client_config(tmp_path)


def import_kafka_python():
    """kafka-python, imported with its import-time read_text/open_text deprecations silenced
    (the project turns warnings into errors; these come from kafka-python 3.0 on 3.11+)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
        return importlib.import_module("kafka")
