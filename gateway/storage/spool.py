"""A local, append-only, fsync'd spool of JSON records: where a reply or delivery report waits
when the database cannot take it (:mod:`gateway.intake`).

File format (``intake.jsonl`` in ``intake.spool_dir``): one record per line,
``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. A record counts once its line, newline
included, is on disk (each append is followed by ``fsync``). A line whose checksum does not
match, or a last line without its newline, is a write torn by a crash: it is set aside in
``intake.rejected`` (with the reason) for a person to look at, never replayed half-read.

Replay reads from a checkpoint (``intake.offset``, replaced atomically) in batches and moves the
checkpoint after each batch; a crash between applying a batch and moving the checkpoint applies
it again, which the consumers make harmless (replies are deduplicated by provider id, delivery
reports never move a status backwards). When everything is replayed the file is emptied.

Appends, reads and truncation take an exclusive ``flock`` on the file, so several processes
on one host (``serve`` and a ``worker`` reading IMAP) may share one spool. Every method blocks
on the disk: call them from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Spool", "SpoolEntry"]

log = logging.getLogger("gateway.spool")


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One readable record and the file offset just past it."""

    end: int
    record: dict[str, Any]


class Spool:
    """One spool file with its checkpoint and rejected-records file."""

    def __init__(self, folder: Path, name: str = "intake") -> None:
        self.folder = folder
        self.path = folder / f"{name}.jsonl"
        self.offset_path = folder / f"{name}.offset"
        self.rejected_path = folder / f"{name}.rejected"
        self._thread_lock = threading.Lock()

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        """The spool file opened for reading and appending, under an exclusive lock."""
        with self._thread_lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            with open(self.path, "a+b") as handle:
                if created:
                    _fsync_dir(self.folder)
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield handle
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- writing ---------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (returns after ``fsync``)."""
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        line = b"%08x %s\n" % (zlib.crc32(data), data)
        with self._locked() as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    # A torn last write: end its line, so it stays one (rejected) line and
                    # this record is not glued to it.
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\n")
            handle.seek(0, os.SEEK_END)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    # -- reading ---------------------------------------------------------------------------
    def has_records(self) -> bool:
        """Whether anything waits past the checkpoint (cheap: one ``stat`` while it is empty)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        return size > 0 and size > self._checkpoint()

    def read(self, limit: int = 500) -> list[SpoolEntry]:
        """Up to ``limit`` records past the checkpoint, in order. Torn or corrupt lines are set
        aside (and skipped); the checkpoint itself only moves with :meth:`consume`."""
        entries: list[SpoolEntry] = []
        with self._locked() as handle:
            size = handle.seek(0, os.SEEK_END)
            offset = min(self._checkpoint(), size)
            handle.seek(offset)
            while len(entries) < limit and offset < size:
                line = handle.readline()
                if line == b"\n":  # the line end written after a torn record
                    offset += 1
                    if not entries:
                        self._write_checkpoint(offset)
                    continue
                record, problem = _decode(line)
                if record is None:
                    if entries:  # replay what comes before it first; it is dealt with next time
                        break
                    self.set_aside(line, problem)
                    offset += len(line)
                    self._write_checkpoint(offset)
                    continue
                offset += len(line)
                entries.append(SpoolEntry(offset, record))
        return entries

    def count(self) -> int:
        """Records waiting past the checkpoint (reads the file: for metrics and tests)."""
        if not self.has_records():
            return 0
        with self._locked() as handle:
            handle.seek(min(self._checkpoint(), handle.seek(0, os.SEEK_END)))
            return sum(1 for line in handle if line.endswith(b"\n"))

    def consume(self, end: int) -> None:
        """Records up to offset ``end`` are applied: move the checkpoint there, and empty the
        file when nothing is left after it."""
        with self._locked() as handle:
            size = handle.seek(0, os.SEEK_END)
            if end >= size:
                handle.truncate(0)
                handle.flush()
                os.fsync(handle.fileno())
                self._write_checkpoint(0)
            else:
                self._write_checkpoint(end)

    # -- checkpoint and rejects ---------------------------------------------------------------
    def _checkpoint(self) -> int:
        try:
            return int(self.offset_path.read_text(encoding="ascii").strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _write_checkpoint(self, offset: int) -> None:
        temporary = self.offset_path.with_suffix(".tmp")
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.offset_path)
        _fsync_dir(self.folder)

    def set_aside(self, line: bytes, problem: str) -> None:
        """Keep a record that cannot be replayed in the rejected file, with the reason."""
        log.error("spool %s: %s; set aside in %s", self.path.name, problem, self.rejected_path.name)
        note = json.dumps({"at": datetime.now(UTC).isoformat(), "reason": problem}).encode()
        with open(self.rejected_path, "ab") as handle:
            handle.write(note + b"\n" + line.rstrip(b"\n") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())


def _decode(line: bytes) -> tuple[dict[str, Any] | None, str]:
    if not line.endswith(b"\n"):
        return None, "torn record at the end of the spool (no newline)"
    checksum, _, data = line.rstrip(b"\n").partition(b" ")
    try:
        expected = int(checksum, 16)
    except ValueError:
        return None, "record without a checksum"
    if zlib.crc32(data) != expected:
        return None, "record whose checksum does not match (torn or damaged write)"
    try:
        record = json.loads(data)
    except ValueError:
        return None, "record that is not JSON"
    if not isinstance(record, dict):
        return None, "record that is not a JSON object"
    return record, ""


def _fsync_dir(folder: Path) -> None:
    """Make a created or renamed file's directory entry durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
