"""Upgrading a database with families on it: migration 0007 fills in every family's folded
search key, so an accent-free search finds families imported before the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from gateway.storage.migrate import upgrade


def test_existing_families_get_a_search_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url, "0006")
    engine = create_engine(url)
    now = datetime.now(UTC).isoformat()
    try:
        with engine.begin() as conn:
            for fid, external in ((1, "F001"), (2, "F002"), (3, "F003")):
                conn.execute(
                    text(
                        "INSERT INTO families (id, external_id, created_at, updated_at)"
                        " VALUES (:i, :e, :n, :n)"
                    ),
                    {"i": fid, "e": external, "n": now},
                )
            for fid, name in ((1, "María Hernández"), (2, "Nguyễn Thị Đặng"), (1, "José Hernández")):
                conn.execute(
                    text(
                        "INSERT INTO guardians"
                        " (family_id, name, name_key, language, timezone, timezone_assumed)"
                        " VALUES (:f, :n, :k, 'es', 'America/Chicago', 0)"
                    ),
                    {"f": fid, "n": name, "k": name.casefold()},
                )
            conn.execute(
                text(
                    "INSERT INTO students (family_id, name, name_key, school, grade, tags)"
                    " VALUES (2, 'Ahmet Işık', 'ahmet işık', 'Lincoln', '3', '[]')"
                )
            )
        upgrade(url)
        with engine.connect() as conn:
            keys = dict(conn.execute(text("SELECT external_id, search_key FROM families")).all())
    finally:
        engine.dispose()
    assert keys == {
        "F001": "f001\nmaria hernandez\njose hernandez",
        "F002": "f002\nnguyen thi dang\nahmet isik",
        "F003": "f003",
    }
