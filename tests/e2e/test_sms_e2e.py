"""SMS through the whole gateway: CLI → planner → outbox → dispatcher → real ``twilio`` client →
FakeTwilioServer, and back: signed status callbacks and inbound replies → web app → core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from e2e_support import LiveGateway, live_gateway, write_event, write_families, write_survey
from sqlalchemy import select

from gateway.storage.models import StatusEvent
from gateway.testing.twilio_server import FakeTwilioServer, inbound_sms_form, sign_twilio_request

FROM = "+18165550100"
MARIA = "+19135550101"  # Spanish
SARAH = "+19135550109"  # English
OPTED_OUT = "+19135550177"  # Twilio answers 21610: she texted STOP to the carrier
BAD_NUMBER = "+19135550188"  # Twilio answers 21211


def _families(folder: Path) -> Path:
    return write_families(
        folder / "families.csv",
        [
            {
                "family_id": "F1",
                "guardian_name": "Maria Hernández",
                "language": "es",
                "phone": "(913) 555-0101",
                "preferred_channel": "sms",
                "student_name": "Sofía Hernández",
            },
            {
                "family_id": "F2",
                "guardian_name": "Sarah Johnson",
                "language": "en",
                "phone": "913-555-0109",
                "preferred_channel": "sms",
                "student_name": "Emma Johnson",
            },
            {
                "family_id": "F3",
                "guardian_name": "Amina Warsame",
                "language": "so",
                "phone": "+1 913 555 0177",
                "preferred_channel": "sms",
                "student_name": "Omar Warsame",
            },
            {
                "family_id": "F4",
                "guardian_name": "Aung Htay",
                "language": "my",
                "phone": "913 555 0188",
                "preferred_channel": "sms",
                "student_name": "Thiri Htay",
            },
        ],
    )


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioServer]:
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


def _sms_channels(twilio: FakeTwilioServer) -> Callable[[str], dict[str, Any]]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "sms": {
                "plugin": "twilio_sms",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM,
                "api_base_url": twilio.url,
                "timeout": 5,
                "price_per_segment": 0.01,
            }
        }

    return channels


async def _post_inbound(
    live: LiveGateway, twilio: FakeTwilioServer, form: dict[str, str], signature: str | None
) -> tuple[int, str]:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{live.base_url}/webhooks/sms/inbound", data=form, headers=headers) as r:
            return r.status, await r.text()


def _signed(twilio: FakeTwilioServer, live: LiveGateway, form: dict[str, str]) -> str:
    return sign_twilio_request(twilio.auth_token, f"{live.base_url}/webhooks/sms/inbound", form)


async def test_invitation_statuses_replies_and_provider_errors(
    tmp_path: Path, db_url: str, cli: Any, twilio: FakeTwilioServer
) -> None:
    """The whole SMS story on SQLite and PostgreSQL."""
    async with live_gateway(tmp_path / "gw", cli, _sms_channels(twilio), db_url=db_url) as live:
        imported = (await live.run("families", "import", str(_families(tmp_path)), "--json")).json()
        assert imported["families_imported"] == 4 and imported["errors"] == []

        twilio.fail_for(OPTED_OUT, 400, 21610)
        twilio.fail_for(BAD_NUMBER, 400, 21211)
        twilio.fail_next(429, 20429)  # the first create is throttled, its retry goes through
        event = write_event(tmp_path)
        sent = (
            await live.run("broadcast", "send", "workshop_invitation", "--event", str(event), "--json")
        ).json()
        assert sent["messages"] == 4 and sent["by_channel"] == {"sms": 4}
        broadcast_id = sent["broadcast_id"]
        await live.drain()

        # Each reachable family got exactly one SMS from our number, with a status callback.
        accepted = {m.to: m for m in twilio.messages}
        assert sorted(m.to for m in twilio.messages) == [MARIA, SARAH]
        assert twilio.requests == 5  # 4 creations + the retry after 429
        assert sum(r.attempts for r in await live.outbox(broadcast_id=broadcast_id)) == 5
        maria_sms = accepted[MARIA]
        assert maria_sms.from_ == FROM
        assert maria_sms.status_callback == f"{live.base_url}/webhooks/sms/status"
        assert "Family Math Night" in maria_sms.body
        rows = {r.address: r for r in await live.outbox(broadcast_id=broadcast_id)}
        assert rows[MARIA].provider_message_id == maria_sms.sid
        assert rows[MARIA].status == "sent" and rows[MARIA].attempts in (1, 2)
        assert rows[OPTED_OUT].status == "failed" and rows[OPTED_OUT].error_code == "21610"
        assert rows[BAD_NUMBER].status == "failed" and rows[BAD_NUMBER].error_code == "21211"
        opted_out = await live.state("phone", OPTED_OUT, "sms")
        invalid = await live.state("phone", BAD_NUMBER, "sms")
        assert opted_out.opted_out and not opted_out.invalid and not opted_out.everywhere
        assert invalid.invalid and not invalid.opted_out and not invalid.everywhere

        # Status callbacks, signed by the fake Twilio against the public URL.
        assert await twilio.post_status_callbacks(maria_sms.sid, ["queued", "sent", "delivered"]) == [
            204,
            204,
            204,
        ]
        # Out of order and repeated: never backwards, applied once.
        assert await twilio.post_status_callbacks(maria_sms.sid, ["sent", "delivered"]) == [204, 204]
        await twilio.post_status_callbacks(accepted[SARAH].sid, ["failed"], error_code=30008)
        rows = {r.address: r for r in await live.outbox(broadcast_id=broadcast_id)}
        assert rows[MARIA].status == "delivered"
        assert rows[SARAH].status == "failed" and rows[SARAH].error_code == "30008"
        assert "unknown delivery error" in (rows[SARAH].error_reason or "")
        async with live.gw.db.session() as session:
            events = list(
                await session.scalars(
                    select(StatusEvent.status).where(StatusEvent.message_id == rows[MARIA].id)
                )
            )
        assert events.count("delivered") == 1 and "queued" not in events[1:]

        status = (await live.run("broadcast", "status", str(broadcast_id), "--json")).json()
        assert status["by_status"] == {"delivered": 1, "failed": 3}
        assert status["by_language"] == {"en": 1, "es": 1, "my": 1, "so": 1}

        # Unsigned and wrongly signed replies: 403, nothing stored.
        reply = inbound_sms_form(from_=MARIA, to=FROM, body="sí", account_sid=twilio.account_sid)
        assert (await _post_inbound(live, twilio, reply, None))[0] == 403
        assert (await _post_inbound(live, twilio, reply, "bm90IGEgc2lnbmF0dXJl"))[0] == 403
        forged = dict(reply, Body="no")
        assert (await _post_inbound(live, twilio, forged, _signed(twilio, live, reply)))[0] == 403
        assert await live.inbound() == []

        # A signed "sí" from the Spanish family answers the RSVP; the same MessageSid again is a no-op.
        status_code, body = await _post_inbound(live, twilio, reply, _signed(twilio, live, reply))
        assert status_code == 200 and "<Response></Response>" in body
        assert (await _post_inbound(live, twilio, reply, _signed(twilio, live, reply)))[0] == 200
        records = await live.inbound()
        assert len(records) == 1  # stored once, before Twilio got its answer
        assert await live.gw.inbound.drain() == 1  # then processed in the background, once
        assert await live.gw.inbound.drain() == 0
        records = await live.inbound()
        assert records[0].classification == "rsvp" and records[0].provider_message_id == reply["MessageSid"]

        results = (await live.run("survey", "results", "rsvp-math-night", "--format", "json")).json()
        rsvp = results["questions"][0]
        assert rsvp["answers"] == {"yes": 1} and rsvp["by_language"] == {"es": {"yes": 1}}
        assert results["respondents"] == 1

        # The confirmation is a conversation: it goes out at once, in Spanish, through Twilio.
        before = len(twilio.messages)
        await live.drain()
        confirmations = [m for m in twilio.messages[before:] if m.to == MARIA]
        assert len(confirmations) == 1

        # Later broadcasts skip the opted-out and the invalid number; nothing reaches Twilio for them.
        survey = (await live.run("survey", "send", str(write_survey(tmp_path)), "--json")).json()
        assert survey["messages"] == 2
        skipped = {s["family_id"] for s in survey["skipped"]}
        assert skipped == {"F3", "F4"}
        await live.drain()
        assert not [m for m in twilio.messages if m.to in (OPTED_OUT, BAD_NUMBER)]
        listed = (await live.run("families", "list", "--json")).json()
        amina = next(f for f in listed if f["family_id"] == "F3")
        assert amina["guardians"][0]["endpoints"][0]["opted_out"] is True


async def test_dry_run_and_preview_show_segments_and_encoding_per_language(
    tmp_path: Path, sqlite_url: str, cli: Any, twilio: FakeTwilioServer
) -> None:
    """Spanish goes as UCS-2 (more, shorter segments); nothing reaches Twilio in a dry run."""
    async with live_gateway(tmp_path / "gw", cli, _sms_channels(twilio), db_url=sqlite_url) as live:
        await live.run("families", "import", str(_families(tmp_path)), "--json")
        event = write_event(tmp_path)
        dry = (
            await live.run(
                "broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run", "--json"
            )
        ).json()
        assert dry["status"] == "dry-run" and dry["messages"] == 4
        spanish, english = dry["preview"]["es"]["sms"], dry["preview"]["en"]["sms"]
        assert spanish["encoding"] == "UCS-2" and english["encoding"] == "GSM-7"
        assert spanish["segments"] > english["segments"] >= 1
        assert spanish["estimated_cost"] == round(spanish["segments"] * 0.01, 6)
        assert twilio.requests == 0 and await live.outbox() == []

        table = await live.run("broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run")
        assert table.exit_code == 0
        assert f"sms: {spanish['segments']} seg UCS-2" in table.stdout

        previews = (
            await live.run(
                "preview",
                "workshop_invitation",
                "--event",
                str(event),
                "--language",
                "es",
                "--language",
                "en",
                "--channel",
                "sms",
                "--json",
            )
        ).json()
        by_language = {p["language"]: p for p in previews}
        assert by_language["es"]["details"]["encoding"] == "UCS-2"
        assert by_language["en"]["details"]["encoding"] == "GSM-7"
        assert by_language["es"]["details"]["segments"] == spanish["segments"]
