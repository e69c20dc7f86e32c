"""Delivery reports that arrive before the send returned: a provider that calls back at once.

The local Twilio server posts each message's signed ``sent`` and ``delivered`` callbacks to the
gateway's webhook *before* it answers the ``201`` carrying the SID, so the gateway cannot know
the SID yet. Every report is kept and applied once the dispatcher stores the SID; repeats
change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from e2e_support import live_gateway, write_event, write_families
from sqlalchemy import func, select

from gateway.storage.models import PendingStatusReport, StatusEvent
from gateway.testing.twilio_server import FakeTwilioServer

FROM = "+18165550100"
FAMILIES = 22


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioServer]:
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


def _channels(twilio: FakeTwilioServer) -> Any:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "sms": {
                "plugin": "twilio_sms",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM,
                "api_base_url": twilio.url,
                "timeout": 10,
            }
        }

    return channels


async def test_every_report_posted_before_the_send_returned_is_applied_once(
    tmp_path: Path, db_url: str, cli: Any, twilio: FakeTwilioServer
) -> None:
    rows = [
        {
            "family_id": f"F{i}",
            "guardian_name": f"Guardian {i}",
            "language": "en",
            "phone": f"+1913555{1000 + i:04d}",
            "preferred_channel": "sms",
            "student_name": f"Student {i}",
        }
        for i in range(FAMILIES)
    ]
    async with live_gateway(tmp_path / "gw", cli, _channels(twilio), db_url=db_url) as live:
        families = write_families(tmp_path / "families.csv", rows)
        assert (await live.run("families", "import", str(families), "--json")).json()["errors"] == []
        twilio.call_back_before_answering(("sent", "delivered"))
        event = write_event(tmp_path)
        sent = (
            await live.run("broadcast", "send", "workshop_invitation", "--event", str(event), "--json")
        ).json()
        assert sent["messages"] == FAMILIES
        await live.drain()

        assert twilio.early_callback_errors == []
        # Each callback was answered with success while its SID was still unknown to the gateway.
        assert [code for _, _, code in twilio.callback_results] == [204] * (2 * FAMILIES)
        messages = await live.outbox()
        assert len(messages) == FAMILIES
        assert {m.provider_message_id for m in messages} == {r.sid for r in twilio.messages}
        assert [m.status for m in messages] == ["delivered"] * FAMILIES

        async def history() -> list[tuple[int, str]]:
            async with live.gw.db.session() as session:
                found = await session.execute(
                    select(StatusEvent.message_id, StatusEvent.status).order_by(StatusEvent.id)
                )
                return [(m, s) for m, s in found]

        events = await history()
        for message in messages:
            mine = [s for m, s in events if m == message.id]
            assert mine == ["sent", "delivered"], (message.id, mine)  # in order, each once
        async with live.gw.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(PendingStatusReport)) == 0

        # Twilio retries a callback: answered with success, nothing changes.
        assert await twilio.post_status_callbacks(twilio.messages[0].sid, ["sent", "delivered"]) == [204, 204]
        assert await history() == events
        # The dispatcher recorded "sent" itself; each kept "delivered" was applied late.
        async with aiohttp.ClientSession() as http, http.get(f"{live.base_url}/metrics") as response:
            metrics = await response.text()
        assert f'gateway_status_reports_applied_late_total{{channel="sms"}} {float(FAMILIES)}' in metrics
        assert f'gateway_status_reports_deferred_total{{channel="sms"}} {float(2 * FAMILIES)}' in metrics
