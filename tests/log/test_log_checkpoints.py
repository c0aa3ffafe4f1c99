"""Checkpoint files: Kafka's text format, atomic replace, corrupt files rejected."""

import pytest

from broker.log.checkpoints import (
    CorruptCheckpointError,
    LeaderEpochCheckpointFile,
    OffsetCheckpointFile,
    read_checkpoint,
    write_checkpoint,
)


def test_offset_checkpoint_round_trip_in_kafka_format(tmp_path):
    path = tmp_path / "recovery-point-offset-checkpoint"
    f = OffsetCheckpointFile(path)
    f.write({("orders", 1): 42, ("orders", 0): 7, ("a-b", 3): 0})
    assert path.read_text() == "0\n3\na-b 3 0\norders 0 7\norders 1 42\n"
    assert f.read() == {("orders", 1): 42, ("orders", 0): 7, ("a-b", 3): 0}
    assert not (tmp_path / "recovery-point-offset-checkpoint.tmp").exists()


def test_missing_checkpoint_reads_empty(tmp_path):
    assert OffsetCheckpointFile(tmp_path / "nope").read() == {}
    assert LeaderEpochCheckpointFile(tmp_path / "nope").read() == []
    assert read_checkpoint(tmp_path / "nope", 0, lambda f: f) is None


def test_leader_epoch_checkpoint_round_trip(tmp_path):
    path = tmp_path / "leader-epoch-checkpoint"
    LeaderEpochCheckpointFile(path).write([(0, 0), (2, 150), (5, 900)])
    assert path.read_text() == "0\n3\n0 0\n2 150\n5 900\n"
    assert LeaderEpochCheckpointFile(path).read() == [(0, 0), (2, 150), (5, 900)]


def test_empty_checkpoint_is_valid(tmp_path):
    f = OffsetCheckpointFile(tmp_path / "c")
    f.write({})
    assert (tmp_path / "c").read_text() == "0\n0\n"
    assert f.read() == {}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0\n",
        "1\n0\n",
        "0\n2\nt 0 5\n",
        "0\n1\nt 0 5\nt 1 6\n",
        "0\n1\nt 0\n",
        "0\n1\nt x 5\n",
        "0\n1\nt 0 -5\n",
        "0\n1\nt  0 5\n",
        "zero\n0\n",
        "\xff\xfe",
    ],
)
def test_corrupt_offset_checkpoint_raises(tmp_path, text):
    path = tmp_path / "c"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptCheckpointError, match=str(path)):
        OffsetCheckpointFile(path).read()


@pytest.mark.parametrize("text", ["0\n1\n1\n", "0\n1\n-1 5\n", "0\n1\n1 2 3\n"])
def test_corrupt_epoch_checkpoint_raises(tmp_path, text):
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError):
        LeaderEpochCheckpointFile(path).read()


def test_write_replaces_atomically_and_leaves_no_tmp(tmp_path):
    path = tmp_path / "c"
    write_checkpoint(path, 0, ["a 0 1"])
    write_checkpoint(path, 0, ["b 0 2", "c 1 3"])
    assert path.read_text() == "0\n2\nb 0 2\nc 1 3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
