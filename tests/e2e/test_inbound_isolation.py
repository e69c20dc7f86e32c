"""One reply whose processing raises does not hold up the others: signed Twilio webhooks bring a
poison reply and 100 good ones; the background processor works through all 100 while the poison
waits for its retry; after its last attempt it is marked failed and shown to staff."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from e2e_support import live_gateway, write_families
from sqlalchemy import update

from gateway.storage.models import InboundRecord, utcnow
from gateway.testing.twilio_server import inbound_sms_form, sign_twilio_request

ACCOUNT = "AC" + "1" * 32
TOKEN = "t" * 32
FROM = "+18165550100"
MARIA = "+19135550101"
POISON = "this reply breaks the classifier"


def _channels(base_url: str) -> dict[str, Any]:
    return {
        "sms": {
            "plugin": "twilio_sms",
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "from_number": FROM,
            "api_base_url": "http://127.0.0.1:9",  # nothing is sent in this test
        }
    }


async def _post(http: aiohttp.ClientSession, base_url: str, sid: str, body: str) -> int:
    url = f"{base_url}/webhooks/sms/inbound"
    form = inbound_sms_form(from_=MARIA, to=FROM, body=body, account_sid=ACCOUNT, message_sid=sid)
    headers = {"X-Twilio-Signature": sign_twilio_request(TOKEN, url, form)}
    async with http.post(url, data=form, headers=headers) as response:
        return response.status


async def test_poison_reply_is_retried_then_failed_while_100_good_ones_are_processed(
    tmp_path: Path, db_url: str, cli: Any, monkeypatch: Any
) -> None:
    families = write_families(
        tmp_path / "families.csv",
        [{"family_id": "F1", "guardian_name": "Maria Lopez", "language": "en", "phone": MARIA,
          "preferred_channel": "sms", "student_name": "Ana"}],
    )
    async with live_gateway(tmp_path / "gw", cli, _channels, db_url=db_url) as live:
        assert (await live.run("families", "import", str(families), "--json")).json()["errors"] == []
        # Two attempts; the retry waits an hour, so only the test moves it forward.
        live.gw.config.inbound.max_attempts = 2
        live.gw.config.inbound.retry_base_seconds = 3600
        pipeline = live.gw.inbound
        original = pipeline._classify_and_act

        async def classify(session: Any, message: Any, record: Any, match: Any) -> Any:
            if message.text == POISON:
                raise RuntimeError("classifier bug")
            return await original(session, message, record, match)

        monkeypatch.setattr(pipeline, "_classify_and_act", classify)
        stop = asyncio.Event()
        processor = asyncio.create_task(pipeline.run_processor(stop))
        try:
            async with aiohttp.ClientSession() as http:
                assert await _post(http, live.base_url, "SM" + "0" * 32, POISON) == 200
                answers = await asyncio.gather(
                    *(_post(http, live.base_url, f"SM{i:032d}", f"question {i}") for i in range(1, 101))
                )
            assert answers == [200] * 100

            async def settled() -> list[InboundRecord]:
                deadline = time.monotonic() + 60
                while True:
                    records = await live.inbound()
                    done = [r for r in records if r.text != POISON and r.classification != "pending"]
                    poison = [r for r in records if r.text == POISON and r.attempts >= 1]
                    if len(done) == 100 and poison:
                        return records
                    assert time.monotonic() < deadline, [(r.id, r.classification) for r in records]
                    await asyncio.sleep(0.05)

            records = await settled()
            [poison] = [r for r in records if r.text == POISON]
            # The 100 replies behind it were processed while it waits for its retry.
            assert poison.classification == "pending" and poison.attempts == 1
            assert "RuntimeError" in (poison.last_error or "")
            assert sorted(r.classification for r in records if r.text != POISON) == ["free_text"] * 100

            # The hour passes: the second attempt fails too, and it goes before staff.
            async with live.gw.db.session() as session:
                await session.execute(
                    update(InboundRecord)
                    .where(InboundRecord.id == poison.id)
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1))
                )
                await session.commit()
            pipeline._pending.set()
            deadline = time.monotonic() + 30
            while (await live.inbound())[0].classification == "pending":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await processor
        inbox = (await live.run("inbox", "--json")).json()
        [failed] = [item for item in inbox if item["id"] == poison.id]
        assert failed["classification"] == "failed"
        assert failed["family_id"] == "F1"
        assert "could not process this reply (2 tries, RuntimeError)" in failed["note"]
        assert len([item for item in inbox if item["classification"] == "free_text"]) == 100
        async with aiohttp.ClientSession() as http, http.get(f"{live.base_url}/metrics") as response:
            metrics = await response.text()
        assert 'gateway_inbound_processing_failed_total{channel="sms"} 1.0' in metrics
        assert 'gateway_inbound_processing_retries_total{channel="sms"} 1.0' in metrics
