"""The artifact store: files named by their SHA-256, written atomically and verified on every read.

Data, models and reports are files here; the database keeps only their hash, size and meaning. A file
is written to a temporary name and renamed into place, so a crash never leaves half a file under a
real name, and reading re-hashes it, so a changed or damaged file is reported, never silently used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import IntegrityFailed, NotFound

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    path: Path


class ArtifactStore:
    """Content-addressed files under ``root`` (``root/ab/abcdef...``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
            raise NotFound(f"{sha256!r} is not an artifact hash.")
        return self.root / sha256[:2] / sha256

    def _write(self, chunks: Iterable[bytes]) -> StoredArtifact:
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            sha256 = digest.hexdigest()
            target = self.path_for(sha256)
            target.parent.mkdir(exist_ok=True)
            if target.exists() and self._hash_file(target) == sha256:
                os.unlink(tmp_name)  # the same content is already stored
            else:
                os.replace(tmp_name, target)
            return StoredArtifact(sha256, size, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_bytes(self, data: bytes) -> StoredArtifact:
        """Store ``data``; storing the same content twice keeps one file."""
        return self._write([data])

    def put_stream(self, stream: BinaryIO) -> StoredArtifact:
        return self._write(iter(lambda: stream.read(_CHUNK), b""))

    def put_file(self, path: Path) -> StoredArtifact:
        with open(path, "rb") as stream:
            return self.put_stream(stream)

    def write_with(self, writer: Callable[[Path], None], suffix: str = "") -> StoredArtifact:
        """Let ``writer`` produce a file (e.g. Parquet, a model), then store it under its hash."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".build-") as folder:
            path = Path(folder) / f"artifact{suffix}"
            writer(path)
            return self.put_file(path)

    @staticmethod
    def _hash_file(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def verified_path(self, sha256: str) -> Path:
        """The file's path, after checking that its content still has the recorded hash."""
        path = self.path_for(sha256)
        if not path.exists():
            raise NotFound(f"The stored file {sha256[:12]}… is missing from the artifact store.")
        actual = self._hash_file(path)
        if actual != sha256:
            raise IntegrityFailed(
                f"The stored file {sha256[:12]}… was changed or damaged on disk (its content now hashes to "
                f"{actual[:12]}…). It was not used. Ask an administrator to restore it from a backup."
            )
        return path

    def read_bytes(self, sha256: str) -> bytes:
        path = self.verified_path(sha256)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:  # changed between the check and the read
            raise IntegrityFailed(f"The stored file {sha256[:12]}… changed while it was being read.")
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def iter_hashes(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("??/*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.name

    def remove_leftovers(self) -> int:
        """Delete temporary files a crashed write left behind; returns how many."""
        count = 0
        for path in list(self.root.glob(".incoming-*")):
            path.unlink(missing_ok=True)
            count += 1
        return count
