"""A snapshot of the metadata image loads back to exactly the same image."""

from broker.controller.snapshot import image_from_snapshot, image_to_snapshot
from tests.controller.harness import Harness


def test_snapshot_round_trip_mid_reassignment_and_fencing():
    h = Harness()
    h.start(1, 2, 3, 4)
    h.create("orders", partitions=3, factor=3)
    h.create("audit", partitions=1, factor=2)
    h.commit(h.controller.alter_partition_reassignments("orders", 0, (2, 3, 4)))
    h.advance(20_000, silent=(1,))  # broker 1 misses its session: fenced
    image = h.committed
    assert image.brokers[1].fenced
    assert any(s.adding_replicas for s in image.topic("orders").partitions.values())
    again = image_from_snapshot(image_to_snapshot(image))
    assert again == image
    assert again.topic_by_id(image.topic("audit").topic_id).name == "audit"


def test_empty_image_round_trip():
    from broker.controller.image import MetadataImage

    assert image_from_snapshot(image_to_snapshot(MetadataImage())) == MetadataImage()
