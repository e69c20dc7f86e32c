"""Storage on SQLite and PostgreSQL: migrations, claims that never overlap, status history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from gateway.storage.migrate import alembic_config, current
from gateway.storage.models import Base, OutboxMessage, StatusEvent
from gateway.testing.harness import open_gateway


def test_db_upgrade_reaches_head_with_every_table(cli, config_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(["db", "upgrade"], config_path)
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert f"revision {head}" in result.output
    assert current(db_url) == head

    async def tables() -> set[str]:
        async with open_gateway(config_path, start=False) as gw, gw.db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    assert set(Base.metadata.tables) <= asyncio.run(tables())


async def test_two_dispatchers_never_claim_the_same_message(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gateway.outbox.dispatcher import OutboxDispatcher
    from gateway.storage.models import utcnow

    async with gateway.db.session() as session:
        session.add_all(
            OutboxMessage(
                channel="sms",
                address=f"+1913555{i:04d}",
                language="en",
                body=f"m{i}",
                status="queued",
                due_at=utcnow(),
            )
            for i in range(300)
        )
        await session.commit()
    first, second = OutboxDispatcher(gateway), OutboxDispatcher(gateway)
    claims = await asyncio.gather(*(d.claim(60) for d in (first, second, first, second, first)))
    ids = [row.id for batch in claims for row in batch]
    assert len(ids) == len(set(ids)) == 300
    assert {row.lease_owner for row in claims[0]} == {first.worker_id}


async def test_send_records_status_history(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.storage.models import utcnow

    async with gateway.db.session() as session:
        session.add(
            OutboxMessage(
                channel="email",
                address="a@example.net",
                language="en",
                body="hi",
                subject="s",
                status="queued",
                due_at=utcnow(),
            )
        )
        await session.commit()
    result = await gateway.dispatcher.run_until_idle()
    assert result.sent == 1
    async with gateway.db.session() as session:
        row = (await session.scalars(select(OutboxMessage))).one()
        assert row.status == "delivered" and row.provider_message_id == f"sandbox-{row.id}"
        assert row.sent_at is not None and row.sent_at.tzinfo is not None
        events = await session.scalar(
            select(func.count(StatusEvent.id)).where(StatusEvent.message_id == row.id)
        )
        assert events == 1


def test_sandbox_writes_one_file_per_message(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "f.csv"
    csv.write_text(
        "family_id,guardian_name,language,phone,email,school,grade,student_name\n"
        "F1,Maria,es,(913) 555-0101,,Lincoln,6,Ana\nF2,Lan,vi,,lan@example.net,Lincoln,6,Minh\n"
    )
    cli(["families", "import", str(csv)], sqlite_config)
    cli(["broadcast", "send", "opt_in_confirmation"], sqlite_config)

    async def go() -> None:
        async with open_gateway(sqlite_config) as gw:
            await gw.dispatcher.run_until_idle()

    asyncio.run(go())
    files = sorted((sqlite_config.parent / "data" / "channels").rglob("*.json"))
    records = [json.loads(p.read_text()) for p in files]
    assert {(r["channel"], r["address"], r["language"]) for r in records} == {
        ("sms", "+19135550101", "es"),
        ("email", "lan@example.net", "vi"),
    }
    assert all(r["body"] for r in records)


async def test_start_up_skips_alembic_only_when_the_schema_is_at_the_shipped_head(tmp_path: Path) -> None:
    from gateway.storage.db import Database
    from gateway.storage.migrate import schema_is_current, shipped_head, upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert shipped_head() == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    db = Database(url)
    try:
        assert not await schema_is_current(db.engine)  # no alembic_version table yet
        await upgrade_async(url, "0001")
        assert not await schema_is_current(db.engine)  # behind: Alembic must run
        await upgrade_async(url)
        assert await schema_is_current(db.engine)
    finally:
        await db.close()


def test_sqlite_database_is_in_wal_mode_from_its_first_migration(tmp_path: Path) -> None:
    """Switching the journal mode takes an exclusive lock that SQLite refuses at once, without
    its busy timeout, while another connection writes: two limiters opening their first
    connections together failed with "database is locked" (CI). Migrations switch it first."""
    import sqlite3

    from gateway.storage.migrate import upgrade

    path = tmp_path / "fresh.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connection_waits_for_a_writer_to_switch_an_old_database_to_wal(tmp_path: Path) -> None:
    """A database made before WAL (rollback journal) being written to while a new connection
    opens: the new connection waits for the write instead of failing."""
    import sqlite3
    import threading

    from gateway.storage.db import sqlite_pragmas

    path = tmp_path / "old.db"
    writer = sqlite3.connect(path, check_same_thread=False)
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.commit()
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.3, writer.commit).start()

    newcomer = sqlite3.connect(path)
    sqlite_pragmas(newcomer, 5_000)  # before: "database is locked" at once
    assert newcomer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert newcomer.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert newcomer.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    newcomer.close()
    writer.close()


async def test_a_claim_walks_the_queue_in_order_without_sorting_it(config_path: Path) -> None:
    """A claim takes the oldest due messages, (due_at, id) first. With a broadcast's messages
    all due at one moment, an index on (status, due_at) alone made PostgreSQL read and sort
    every queued row for each claim of 200 (150 ms at 500,000 rows): the query plan must take
    that order from the index on both databases."""
    from datetime import timedelta

    from sqlalchemy import insert

    from gateway.outbox.dispatcher import due_candidates
    from gateway.storage.models import utcnow

    async with open_gateway(config_path, start=False) as gw:
        due = utcnow() - timedelta(minutes=1)
        rows = [
            {"channel": "sms", "address": f"+1913555{i:04d}", "language": "en", "body": "hi",
             "status": "queued" if i % 5 else "sent", "due_at": due, "attempts": 0,
             "created_at": due, "updated_at": due, "conversation": False, "payload": {},
             "cost_units": 1}
            for i in range(3000)
        ]
        async with gw.db.engine.begin() as conn:
            await conn.execute(insert(OutboxMessage.__table__), rows)
        query = due_candidates(["sms", "email"], utcnow()).limit(200)
        compiled = query.compile(dialect=gw.db.engine.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.params
        args = tuple(params[name] for name in compiled.positiontup) if compiled.positiontup else params
        async with gw.db.engine.connect() as conn:
            if gw.db.is_sqlite:
                await conn.exec_driver_sql("ANALYZE")
                plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), args)).all()
                text = " | ".join(str(row[-1]) for row in plan)
                assert "ix_outbox_due" in text and "TEMP B-TREE" not in text, text
            else:
                await conn.exec_driver_sql("ANALYZE outbox_messages")
                # As the planner would choose at a million rows, where a sequential scan loses.
                await conn.exec_driver_sql("SET enable_seqscan = off")
                plan = (await conn.exec_driver_sql("EXPLAIN " + str(compiled), args)).all()
                text = " | ".join(str(row[0]) for row in plan)
                assert "ix_outbox_due" in text and "Sort" not in text, text
            claimed = (await conn.execute(query)).scalars().all()
        assert claimed == sorted(claimed) and len(claimed) == 200


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_bulk_import_and_a_large_broadcast_refresh_postgresql_statistics(  # type: ignore[no-untyped-def]
    cli, config_path: Path, tmp_path: Path, db_url: str
) -> None:
    """With autovacuum off (this machine's PostgreSQL) or not yet round, statistics from an
    empty table made every claim of a 1,000,000-message broadcast read the whole queue. A
    families import and a broadcast of at least BULK_WRITE_ROWS refresh them."""
    from gateway.storage.db import BULK_WRITE_ROWS

    families = tmp_path / "families.csv"
    lines = ["family_id,guardian_name,language,phone,school,grade,student_name"]
    lines += [f"F{i:05d},Parent {i},es,+1913555{i:04d},Lincoln,6,Child {i}" for i in range(BULK_WRITE_ROWS)]
    families.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def analyzed() -> dict[str, int]:
        async def read() -> dict[str, int]:
            async with open_gateway(config_path, start=False) as gw, gw.db.engine.connect() as conn:
                rows = await conn.exec_driver_sql(
                    "SELECT relname, analyze_count FROM pg_stat_user_tables "
                    "WHERE relname IN ('families', 'endpoints', 'outbox_messages')"
                )
                return {name: int(count) for name, count in rows}

        return asyncio.run(read())

    before = analyzed()
    result = cli(["families", "import", str(families)], config_path)
    assert result.exit_code == 0, result.output
    after_import = analyzed()
    assert after_import["families"] > before["families"]
    assert after_import["endpoints"] > before["endpoints"]
    assert after_import["outbox_messages"] == before["outbox_messages"]

    announcement = ["broadcast", "send", "announcement", "--title", "Hi", "--body", "Hello", "--json"]
    result = cli(announcement, config_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["messages"] >= BULK_WRITE_ROWS
    assert analyzed()["outbox_messages"] > after_import["outbox_messages"]


async def test_refreshing_statistics_never_fails_the_write_before_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The import or broadcast it follows is committed: a database that cannot be reached for
    ANALYZE is a warning, not an error reported for a broadcast that was queued."""
    import logging

    from gateway.storage.db import BROADCAST_TABLES, BULK_WRITE_ROWS, Database
    from gateway.testing import free_port

    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.storage"):
            await db.refresh_statistics(BROADCAST_TABLES, BULK_WRITE_ROWS)
    finally:
        await db.close()
    assert "could not refresh statistics of outbox_messages, survey_sessions" in caplog.text
