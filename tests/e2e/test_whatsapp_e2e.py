"""WhatsApp through the whole gateway: CLI → planner → outbox → dispatcher → real ``twilio``
client → the local Twilio server's WhatsApp sender, and back through the web app's signed
webhooks: the window a reply opens (stored by the core), the approved template outside it, the
fallback to the next channel when no template exists (e-mail, or SMS on the same number when
``channel_order`` has it), quick-reply buttons answering an RSVP, ``read``; consent kept per
channel on a number SMS and WhatsApp share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import LiveGateway, live_gateway, write_event, write_families
from gateway_plugins.sandbox import read_outbox
from gateway_plugins.whatsapp.errors import NO_TEMPLATE_CODE

from gateway.outbox.planner import BroadcastRequest
from gateway.testing.twilio_server import FakeTwilioServer
from gateway.web.queries import family_detail

SENDER = "+18165550100"
MARIA = "+19135550101"  # Spanish: an approved Spanish template exists
AMINA = "+19135550177"  # Somali: no approved Somali template
WA_MARIA, WA_AMINA = "whatsapp:" + MARIA, "whatsapp:" + AMINA


@pytest.fixture
async def twilio():
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


def _channels(twilio: FakeTwilioServer, template: str, quick: str) -> Callable[[str], dict]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "whatsapp": {
                "plugin": "whatsapp",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": "whatsapp:" + SENDER,
                "api_base_url": twilio.url,
                "timeout": 5,
                "templates": {"default": {"es": {
                    "content_sid": template, "variables": {"1": "first_line"}}}},
                "quick_replies": {3: quick},
            },
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
        }

    return channels


async def _family_writes(live: LiveGateway, twilio: FakeTwilioServer, number: str, **kw: Any):
    status, form = await twilio.post_whatsapp_inbound(
        f"{live.base_url}/webhooks/whatsapp/inbound", from_=number, to=SENDER, **kw
    )
    assert status == 200
    await live.gw.inbound.drain()
    return form


async def test_window_templates_fallback_buttons_and_read(
    tmp_path: Path, db_url: str, cli: Any, twilio: FakeTwilioServer
) -> None:
    """The whole WhatsApp story on SQLite and PostgreSQL."""
    template = twilio.add_content("Hola, la escuela le escribe: {{1}}. Responda para leer más.")
    quick = twilio.add_content(
        "{{1}}", approved=False, actions=[("{{2}}", "{{3}}"), ("{{4}}", "{{5}}"), ("{{6}}", "{{7}}")]
    )
    families = write_families(tmp_path / "families.csv", [
        {"family_id": "F1", "guardian_name": "Maria Hernández", "language": "es", "phone": MARIA,
         "email": "maria@families.example", "preferred_channel": "whatsapp",
         "student_name": "Sofía Hernández"},
        {"family_id": "F2", "guardian_name": "Amina Warsame", "language": "so", "phone": AMINA,
         "email": "amina@families.example", "preferred_channel": "whatsapp",
         "student_name": "Omar Warsame"},
    ])
    channels = _channels(twilio, template, quick)
    async with live_gateway(tmp_path / "gw", cli, channels, db_url=db_url) as live:
        assert (await live.run("families", "import", str(families), "--json")).json()[
            "families_imported"] == 2

        # 1. Nobody wrote yet: the windows are closed.
        first = (await live.run("broadcast", "send", "workshop_invitation", "--event",
                                str(write_event(tmp_path)), "--channels", "whatsapp,email",
                                "--json")).json()
        await live.drain()
        # The families have no WhatsApp address of their own: their phone numbers, in the
        # whatsapp kind's form.
        rows = {r.address: r for r in await live.outbox(broadcast_id=first["broadcast_id"])}
        # Maria: the approved Spanish template, by Content SID, never free-form.
        [to_maria] = twilio.messages
        assert to_maria.to == WA_MARIA and to_maria.content_sid == template
        assert to_maria.pending_error is None and "Body" not in to_maria.form
        assert rows[WA_MARIA].channel == "whatsapp" and rows[WA_MARIA].status == "sent"
        assert rows[WA_MARIA].provider_message_id == to_maria.sid
        # Amina: no Somali template → a clear skip, and the message falls back to e-mail.
        assert rows[WA_AMINA].status == "failed" and rows[WA_AMINA].error_code == NO_TEMPLATE_CODE
        assert "'so'" in (rows[WA_AMINA].error_reason or "")
        fallback = await live.outbox(address="amina@families.example")
        assert [(r.channel, r.status) for r in fallback] == [("email", "delivered")]
        mails = read_outbox(live.gw.data_dir / "channels" / "email" / "outbox")
        assert [m["address"] for m in mails] == ["amina@families.example"]

        # 2. Maria writes on WhatsApp: the core stores it under the WhatsApp sender, binds it
        # to her family through her phone endpoint, and her window is open.
        await _family_writes(live, twilio, MARIA, body="Hola, ¿a qué hora es?")
        [record] = await live.inbound()
        assert record.channel == "whatsapp" and record.sender == WA_MARIA
        phone = await live.endpoint("phone", MARIA)
        assert phone is not None and record.endpoint_id == phone.id
        channel = live.gw.channels["whatsapp"]
        assert await channel.context.last_inbound_at(WA_MARIA) == record.received_at
        assert await channel.context.last_inbound_at(WA_AMINA) is None
        assert await channel.window_open(WA_MARIA) and not await channel.window_open(WA_AMINA)

        # 3. The next invitation goes free-form, its RSVP as three quick-reply buttons.
        before = len(twilio.messages)
        second = (await live.run("broadcast", "send", "workshop_invitation", "--event",
                                 str(write_event(tmp_path, event_id="reading-night")),
                                 "--channels", "whatsapp,email", "--json")).json()
        await live.drain()
        [invitation] = [m for m in twilio.messages[before:] if m.to == WA_MARIA]
        assert invitation.content_sid == quick and invitation.pending_error is None
        assert [ident for _, ident in invitation.buttons] == ["yes", "no", "maybe"]

        # 4. She taps "yes": the button payload answers the RSVP.
        title = invitation.buttons[0][0]
        await _family_writes(live, twilio, MARIA, body=title, button_payload="yes",
                             button_text=title)
        results = (await live.run("survey", "results", "rsvp-reading-night", "--format",
                                  "json")).json()
        assert results["questions"][0]["answers"] == {"yes": 1}

        # 5. Twilio reports the invitation read.
        assert await twilio.post_status_callbacks(
            invitation.sid, ("sent", "delivered", "read")) == [204, 204, 204]
        [row] = [r for r in await live.outbox(broadcast_id=second["broadcast_id"])
                 if r.address == WA_MARIA]
        assert row.status == "read"


CLAIRE = "+19135550103"  # chose SMS
SARAH = "+19135550104"  # chose WhatsApp; her number is not on WhatsApp
LUIS = "+19135550105"  # chose WhatsApp, Spanish


def _with_sms(twilio: FakeTwilioServer, templates: dict[str, Any]) -> Callable[[str], dict]:
    """WhatsApp and SMS on the same local Twilio account (the same numbers), then e-mail."""

    def channels(base_url: str) -> dict[str, Any]:
        account = {"account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                   "api_base_url": twilio.url, "timeout": 5}
        return {
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
            "sms": {"plugin": "twilio_sms", "from_number": SENDER, **account},
            "whatsapp": {"plugin": "whatsapp", "from_number": "whatsapp:" + SENDER,
                         "templates": templates, **account},
        }

    return channels


async def _consent(live: LiveGateway, family_id: str) -> dict[str, str]:
    """``channel → state`` over the family's first guardian's addresses (the family page)."""
    family = await family_detail(live.gw, family_id, None)
    assert family is not None
    return {c["channel"]: c["state"]
            for e in family["guardians"][0]["endpoints"] for c in e["channels"]}


async def _announce(live: LiveGateway, text: str) -> dict[str, Any]:
    summary = await live.gw.planner.plan(BroadcastRequest(
        template="announcement", context={"title": "Early release", "body": text}))
    await live.drain()
    return summary.as_dict()


async def test_whatsapp_and_sms_share_a_number_each_family_gets_its_channel(
    tmp_path: Path, db_url: str, cli: Any, twilio: FakeTwilioServer
) -> None:
    """``channel_order: [whatsapp, sms, email]``: no approved template → SMS on the same number,
    not e-mail; a family that chose SMS gets SMS; STOP and an invalid number on WhatsApp mark
    WhatsApp only; an approved template named after the gateway template wins over default."""
    default = twilio.add_content("La escuela le escribe: {{1}}. Responda para leer más.")
    invitation = twilio.add_content("Invitación: {{1}}. Responda para ver los detalles.")
    templates = {
        "default": {"es": {"content_sid": default, "variables": {"1": "first_line"}}},
        "workshop_invitation": {"es": {"content_sid": invitation, "variables": {"1": "first_line"}}},
    }
    families = write_families(tmp_path / "families.csv", [
        {"family_id": "F1", "guardian_name": "Maria Hernández", "language": "es", "phone": MARIA,
         "email": "maria@families.example", "preferred_channel": "whatsapp",
         "student_name": "Sofía Hernández"},
        {"family_id": "F2", "guardian_name": "Amina Warsame", "language": "so", "phone": AMINA,
         "email": "amina@families.example", "preferred_channel": "whatsapp",
         "student_name": "Omar Warsame"},
        {"family_id": "F3", "guardian_name": "Claire Dubois", "language": "es", "phone": CLAIRE,
         "email": "claire@families.example", "preferred_channel": "sms",
         "student_name": "Luc Dubois"},
        {"family_id": "F4", "guardian_name": "Sarah Rojas", "language": "es", "phone": SARAH,
         "preferred_channel": "whatsapp", "student_name": "Ben Rojas"},
        {"family_id": "F5", "guardian_name": "Luis Pérez", "language": "es", "phone": LUIS,
         "preferred_channel": "whatsapp", "student_name": "Ana Pérez"},
    ])
    twilio.fail_for("whatsapp:" + SARAH, 400, 63003)  # not on WhatsApp
    order = ["whatsapp", "sms", "email"]
    async with live_gateway(tmp_path / "gw", cli, _with_sms(twilio, templates), db_url=db_url,
                            channel_order=order) as live:
        assert (await live.run("families", "import", str(families), "--json")).json()[
            "families_imported"] == 5

        first = (await live.run("broadcast", "send", "workshop_invitation", "--event",
                                str(write_event(tmp_path)), "--json")).json()
        await live.drain()
        rows = await live.outbox(broadcast_id=first["broadcast_id"])
        went = {(r.channel, r.address): r for r in rows if r.status != "failed"}
        assert set(went) == {("whatsapp", WA_MARIA), ("whatsapp", "whatsapp:" + LUIS),
                             ("sms", AMINA), ("sms", CLAIRE), ("sms", SARAH)}
        # Maria and Luis: the template approved for the invitation, not the default one.
        on_whatsapp = [m for m in twilio.messages if m.to.startswith("whatsapp:")]
        assert {m.to: m.content_sid for m in on_whatsapp if m.pending_error is None} == {
            WA_MARIA: invitation, "whatsapp:" + LUIS: invitation}
        assert all("Body" not in m.form for m in on_whatsapp)
        # Amina: no Somali template → SMS on the same number, never her e-mail.
        failed = {r.address: r for r in rows if r.status == "failed"}
        assert failed[WA_AMINA].error_code == NO_TEMPLATE_CODE
        [to_amina] = [m for m in twilio.messages if m.to == AMINA]
        assert to_amina.body and to_amina.content_sid is None
        assert await live.outbox(address="amina@families.example") == []
        assert read_outbox(live.gw.data_dir / "channels" / "email" / "outbox") == []
        # Claire chose SMS on the same kind of number: nothing went to her on WhatsApp.
        assert not [m for m in twilio.messages if m.to == "whatsapp:" + CLAIRE]
        # Sarah: 63003 marks her number invalid on WhatsApp only, and the invitation goes by SMS.
        assert failed["whatsapp:" + SARAH].error_code == "63003"
        assert await _consent(live, "F4") == {"whatsapp": "invalid", "sms": "subscribed"}

        # Maria sends STOP on WhatsApp: WhatsApp stops, SMS and e-mail stay subscribed.
        before = len(twilio.messages)
        await _family_writes(live, twilio, MARIA, body="STOP")
        await live.drain()
        # The confirmation answers on WhatsApp, free-form (her STOP opened the window).
        [confirmation] = twilio.messages[before:]
        assert confirmation.to == WA_MARIA and confirmation.content_sid is None
        assert "START" in confirmation.body
        assert await _consent(live, "F1") == {
            "whatsapp": "opted_out", "sms": "subscribed", "email": "subscribed"}

        # An announcement (no template of its own at WhatsApp): Luis gets the default one;
        # Maria (STOP) and Sarah (invalid) get SMS straight away, Amina SMS after the skip.
        before = len(twilio.messages)
        second = await _announce(live, "School closes at noon on Friday.")
        assert second["by_channel"] == {"whatsapp": 2, "sms": 3}
        sent = {m.to: m for m in twilio.messages[before:]}
        assert set(sent) == {"whatsapp:" + LUIS, MARIA, AMINA, CLAIRE, SARAH}
        assert sent["whatsapp:" + LUIS].content_sid == default
        assert not {MARIA, SARAH} & {
            r.address.removeprefix("whatsapp:")
            for r in await live.outbox(broadcast_id=second["broadcast_id"], channel="whatsapp")}
        assert await _consent(live, "F4") == {"whatsapp": "invalid", "sms": "subscribed"}
