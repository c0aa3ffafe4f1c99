"""An in-process broker on an ephemeral port, and a protocol-level client to poke it."""

from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio

from broker.config import BrokerConfig
from broker.server.broker import Broker, serve_broker
from producer.client import connect


def make_config(tmp_path, **log_overrides) -> BrokerConfig:
    base = BrokerConfig()
    return replace(
        base,
        broker=replace(base.broker, data_dir=str(tmp_path / "data")),
        network=replace(base.network, listeners="PLAINTEXT://127.0.0.1:0"),
        log=replace(base.log, **log_overrides),
        base_dir=str(tmp_path),
    )


@asynccontextmanager
async def running_broker(config: BrokerConfig, *, broker_out: list | None = None):
    """Yield (host, port) of a broker serving config until the block exits.

    broker_out, when given, receives the Broker object so a test can observe it.
    """
    broker = Broker(config)
    if broker_out is not None:
        broker_out.append(broker)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_broker, broker)
        try:
            yield bound[0]
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def broker_client(config: BrokerConfig, *, broker_out: list | None = None):
    async with (
        running_broker(config, broker_out=broker_out) as (host, port),
        connect(host, port) as conn,
    ):
        yield conn


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)
