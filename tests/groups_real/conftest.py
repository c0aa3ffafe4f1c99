"""An in-process broker with the group coordinator, for real Kafka clients in threads.

The broker runs in the test's trio loop (the main thread); the synchronous
clients run in worker threads through ``trio.to_thread.run_sync``, each with
its own deadlines. The initial rebalance delay is lowered to 200 ms (Kafka's
3 s would only slow every test) and ``__consumer_offsets`` has 4 partitions.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from broker.coordinator import GroupConfig
from broker.server.api_groups import GroupService
from broker.server.broker import Broker, serve_broker
from tests.server.conftest import make_config

GROUP_CONFIG = GroupConfig(initial_rebalance_delay_ms=200, offsets_topic_num_partitions=4)


@asynccontextmanager
async def serving(tmp_path) -> AsyncIterator[str]:
    """Yield the bootstrap address of a broker that serves until the block exits."""
    broker = Broker(make_config(tmp_path))
    broker.groups = GroupService(broker, GROUP_CONFIG)
    async with trio.open_nursery() as nursery:
        (host, port), *_ = await nursery.start(serve_broker, broker)
        try:
            yield f"{host}:{port}"
        finally:
            nursery.cancel_scope.cancel()


def import_kafka_python() -> Any:
    """kafka-python 3.0 uses importlib.resources APIs deprecated on 3.11+ at import time;
    the project turns warnings into errors, so only those are silenced, for the import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
        kafka = importlib.import_module("kafka")
        importlib.import_module("kafka.admin")
    return kafka
