"""The intake spool file: records come back in order, a torn last write or a damaged record is
set aside (never replayed half-read), the checkpoint survives a reopen, and a fully replayed
spool is emptied."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.storage.spool import Spool


def _records(spool: Spool) -> list[dict]:  # type: ignore[type-arg]
    return [entry.record for entry in spool.read()]


def test_records_come_back_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not spool.has_records() and spool.read() == []
    for index in range(5):
        spool.append({"kind": "inbound", "n": index, "text": "hola\x00 ñ"})
    entries = spool.read(limit=2)
    assert [e.record["n"] for e in entries] == [0, 1]
    spool.consume(entries[-1].end)
    reopened = Spool(tmp_path)  # another process, or after a restart
    assert [r["n"] for r in _records(reopened)] == [2, 3, 4]
    assert reopened.count() == 3
    reopened.consume(reopened.read()[-1].end)
    assert not reopened.has_records()
    assert reopened.path.stat().st_size == 0  # emptied once everything was applied


def test_a_torn_last_write_is_set_aside_and_the_next_record_is_intact(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append({"n": 1})
    with open(spool.path, "ab") as handle:  # the process died in the middle of a write
        handle.write(b'1234abcd {"n": 2, "text": "half')
    spool.append({"n": 3})
    assert [r["n"] for r in _records(spool)] == [1]  # what comes before the damage first
    spool.consume(spool.read()[-1].end)
    assert [r["n"] for r in _records(spool)] == [3]
    rejected = spool.rejected_path.read_text(encoding="utf-8").splitlines()
    assert "checksum" in json.loads(rejected[0])["reason"]
    assert '"half' in rejected[1]


def test_a_torn_write_at_the_very_end_is_detected(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append({"n": 1})
    data = spool.path.read_bytes()
    spool.path.write_bytes(data + data[:-5])  # a second copy cut short, no newline
    entries = spool.read()
    assert [e.record["n"] for e in entries] == [1]
    spool.consume(entries[-1].end)
    assert spool.read() == []
    assert "no newline" in spool.rejected_path.read_text(encoding="utf-8")


def test_a_damaged_record_in_the_middle_is_set_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for index in range(3):
        spool.append({"n": index})
    lines = spool.path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"n":1', b'"n":7')  # a flipped byte
    spool.path.write_bytes(b"\n".join(lines))
    seen = []
    while entries := spool.read():
        seen += [e.record["n"] for e in entries]
        spool.consume(entries[-1].end)
    assert seen == [0, 2]
    assert '"n":7' in spool.rejected_path.read_text(encoding="utf-8")
