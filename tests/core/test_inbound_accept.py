"""Webhook replies are stored at once (group commit, deduplicated) and processed after, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.channels import InboundMessage
from gateway.storage.models import InboundRecord
from gateway.testing.harness import open_gateway


@pytest.fixture(autouse=True)
def maria(config_path: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One family, whose phone the replies come from."""
    csv = tmp_path / "f.csv"
    csv.write_text(
        "family_id,guardian_name,language,phone,school,grade,student_name\n"
        "F1,Maria Lopez,es,(913) 555-0101,Lincoln,6,Ana\n",
        encoding="utf-8",
    )
    cli(["families", "import", str(csv)], config_path)


async def test_concurrent_accepts_store_each_reply_once_and_process_later(gateway) -> None:  # type: ignore[no-untyped-def]
    messages = [
        InboundMessage(
            channel="sms", provider_message_id=f"SM{i % 40}", sender="+19135550101", text=f"hola {i}"
        )
        for i in range(100)
    ]
    stored = await asyncio.gather(*(gateway.inbound.accept(m) for m in messages))
    assert sum(stored) == 40  # 60 provider retries were recognised as duplicates
    async with gateway.db.session() as session:
        rows = list(await session.scalars(select(InboundRecord)))
    assert len(rows) == 40 and {r.classification for r in rows} == {"pending"}
    assert await gateway.inbound.accept(messages[0]) is False


async def test_pending_replies_survive_a_restart_and_are_processed_once(config_path: Path) -> None:
    async with open_gateway(config_path) as first:
        assert await first.inbound.accept(
            InboundMessage(channel="sms", provider_message_id="SM1", sender="+19135550101", text="STOP")
        )
        # the process stops here, before processing
    async with open_gateway(config_path) as second:
        assert await second.inbound.drain() == 1
        assert await second.inbound.drain() == 0
        async with second.db.session() as session:
            record = (await session.scalars(select(InboundRecord))).one()
        assert record.classification == "opt_out" and record.family_id is not None
