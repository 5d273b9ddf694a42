"""Files are named by their hash, written atomically and verified on every read."""

import hashlib

import pytest

from core.artifacts import ArtifactStore
from core.errors import IntegrityFailed, NotFound


def test_content_is_addressed_by_its_sha256(tmp_path):
    store = ArtifactStore(tmp_path)
    stored = store.put_bytes(b"hello")
    assert stored.sha256 == hashlib.sha256(b"hello").hexdigest() and stored.size == 5
    assert store.read_bytes(stored.sha256) == b"hello"
    assert store.put_bytes(b"hello").path == stored.path  # stored once
    assert list(store.iter_hashes()) == [stored.sha256]


def test_a_damaged_file_is_reported_not_used(tmp_path):
    store = ArtifactStore(tmp_path)
    stored = store.put_bytes(b"model weights")
    stored.path.write_bytes(b"model weighs")
    with pytest.raises(IntegrityFailed, match="changed or damaged"):
        store.read_bytes(stored.sha256)


def test_a_damaged_copy_is_replaced_when_the_content_is_stored_again(tmp_path):
    store = ArtifactStore(tmp_path)
    stored = store.put_bytes(b"data")
    stored.path.write_bytes(b"junk")
    store.put_bytes(b"data")
    assert store.read_bytes(stored.sha256) == b"data"


def test_a_failed_write_leaves_no_file(tmp_path):
    store = ArtifactStore(tmp_path)

    def chunks():
        yield b"first part"
        raise OSError("disk full")

    with pytest.raises(OSError):
        store._write(chunks())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_writer_that_fails_leaves_nothing_behind(tmp_path):
    store = ArtifactStore(tmp_path)

    def writer(path):
        path.write_bytes(b"half")
        raise RuntimeError("crashed")

    with pytest.raises(RuntimeError):
        store.write_with(writer, suffix=".parquet")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_missing_and_malformed_hashes(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(NotFound, match="missing"):
        store.read_bytes("a" * 64)
    with pytest.raises(NotFound):
        store.path_for("../../etc/passwd")


def test_leftovers_from_a_crash_are_removed(tmp_path):
    store = ArtifactStore(tmp_path)
    (tmp_path / ".incoming-abc").write_bytes(b"partial")
    assert store.remove_leftovers() == 1
