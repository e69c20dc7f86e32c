"""The inbound pipeline and the staff inbox: one reply delivered twice is processed once, urgent
replies go to the top and alert the on-call staff, staff answers go back on the family's channel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from twoway_support import EXAMPLES, ON_CALL, jcall, reply, sent_to, text_call, twoway_config

from gateway.families import import_families
from gateway.sandbox_tools import inject_reply
from gateway.storage.endpoints import endpoint_state
from gateway.storage.models import Endpoint, InboundRecord, OutboxMessage
from gateway.testing.harness import open_gateway

MARIA, SARAH, BARAKA_MAIL, BARAKA_SMS = (
    "+19135550101",
    "+19135550109",
    "baraka@example.net",
    "+19135550106",
)
INBOX_KEYS = {
    "id",
    "family_id",
    "channel",
    "received_at",
    "text",
    "language",
    "translation",
    "classification",
    "urgent",
}


async def _count(gw: Any, model: Any, *where: Any) -> int:
    async with gw.db.session() as session:
        return int(await session.scalar(select(func.count(model.id)).where(*where)) or 0)


async def test_same_inbound_twice_is_stored_and_processed_once(db_url: str, tmp_path: Path) -> None:
    config = twoway_config(tmp_path / "gw", db_url)
    async with open_gateway(config) as gw:
        await import_families(gw, EXAMPLES / "families.csv", progress=False)
        first = await inject_reply(gw, MARIA, "STOP", provider_id="SM0001")
        second = await inject_reply(gw, MARIA, "STOP", provider_id="SM0001")
        assert (first["duplicate"], second["duplicate"]) == (False, True)
        assert second["inbound_id"] == first["inbound_id"] and second["replies"] == []
        assert await _count(gw, InboundRecord) == 1
        confirmations = await _count(gw, OutboxMessage, OutboxMessage.address == MARIA)
        assert confirmations == 1

        # Delivered twice at the same moment (two webhook retries racing): still once.
        results = await asyncio.gather(
            *(inject_reply(gw, SARAH, "HELP", provider_id="SM0002", dispatch=False) for _ in range(2))
        )
        assert sorted(r["duplicate"] for r in results) == [False, True]
        assert await _count(gw, InboundRecord) == 2
        assert await _count(gw, OutboxMessage, OutboxMessage.address == SARAH) == 1

        # The same provider id on another channel is another message.
        other = await inject_reply(gw, BARAKA_MAIL, "HELP", provider_id="SM0001")
        assert other["duplicate"] is False and other["classification"] == "help"
        async with gw.db.session() as session:
            maria = await session.scalar(select(Endpoint.id).where(Endpoint.address == MARIA))
            on_sms = await endpoint_state(session, maria, "sms")
        assert on_sms.opted_out is True and not on_sms.everywhere


def test_urgent_reply_tops_the_inbox_and_alerts_on_call(cli: Any, families: Path) -> None:
    config = families
    calm = reply(cli, config, MARIA, "¿A qué hora sale el autobús de la excursión mañana?")
    assert calm["classification"] == "free_text" and calm["replies"] == []
    urgent = reply(cli, config, SARAH, "A boy threatened my son with a knife at the bus stop today")
    assert urgent["classification"] == "free_text"
    urgent_es = reply(cli, config, MARIA, "Un niño trajo un cuchillo a la escuela hoy")
    unknown = reply(cli, config, "+19135559999", "Who is this? Why do you text me?")
    assert unknown["classification"] == "unknown_sender" and unknown["replies"] == []

    items = jcall(cli, ["inbox", "--json"], config)
    assert all(INBOX_KEYS <= set(item) for item in items)
    assert [i["urgent"] for i in items] == [True, True, False, False]
    assert {i["id"] for i in items[:2]} == {urgent["inbound_id"], urgent_es["inbound_id"]}
    by_id = {i["id"]: i for i in items}
    assert by_id[calm["inbound_id"]]["language"] == "es" and by_id[calm["inbound_id"]]["family_id"] == "F001"
    assert by_id[unknown["inbound_id"]]["family_id"] is None
    assert by_id[unknown["inbound_id"]]["classification"] == "unknown_sender"

    # Each urgent reply alerted the on-call address at once (sent through the sandbox e-mail).
    alerts = sent_to(cli, config, ON_CALL)
    assert len(alerts) == 2
    assert all(a["channel"] == "email" and "URGENT" in (a["subject"] or "") for a in alerts)
    assert any(f"inbox item {urgent['inbound_id']}" in a["body"] for a in alerts)
    table = text_call(cli, ["inbox"], config)
    assert "URGENT" in table


def test_staff_reply_goes_on_the_channel_the_family_used(cli: Any, families: Path) -> None:
    config = families
    # Baraka prefers SMS but wrote by e-mail: the answer goes by e-mail — in English with the
    # Swahili note (no engine for Swahili here), and the command says so, not "in sw".
    asked = reply(cli, config, BARAKA_MAIL, "Je, kuna basi kwenda kwenye warsha ya kusoma?")
    assert asked["classification"] == "free_text"
    out = text_call(
        cli, ["reply", str(asked["inbound_id"]), "Yes, bus 12 stops at your street at 5 pm."], config
    )
    assert "on email to a family reading Swahili (sw): English, with a note in their language" in " ".join(
        out.split()
    )
    [answer] = sent_to(cli, config, BARAKA_MAIL)
    assert answer["channel"] == "email" and answer["language"] == "sw"
    assert "bus 12" in answer["body"]  # no engine for sw: the English text, with a note
    assert sent_to(cli, config, BARAKA_SMS) == []

    sms = reply(cli, config, MARIA, "¿Hay transporte para la reunión del jueves por la tarde?")
    text_call(cli, ["reply", str(sms["inbound_id"]), "Yes, there is a bus."], config)
    [to_maria] = sent_to(cli, config, MARIA)
    assert to_maria["channel"] == "sms" and to_maria["language"] == "es"

    items = {i["id"]: i for i in jcall(cli, ["inbox", "--json"], config)}
    assert items[asked["inbound_id"]]["answered"] is True
    unread = jcall(cli, ["inbox", "--unread", "--json"], config)
    assert asked["inbound_id"] not in {i["id"] for i in unread}

    missing = cli(["reply", "9999", "hello"], config)
    assert missing.exit_code == 2 and "9999" in missing.output


def test_staff_reply_to_a_family_that_opted_out_is_refused(cli: Any, families: Path) -> None:
    config = families
    asked = reply(cli, config, MARIA, "¿Hay transporte para la reunión del jueves?")
    assert reply(cli, config, MARIA, "STOP")["classification"] == "opt_out"
    before = len(sent_to(cli, config, MARIA))
    refused = cli(["reply", str(asked["inbound_id"]), "Yes, there is a bus."], config)
    assert refused.exit_code == 2
    assert "cannot be written to on sms" in refused.output and "Nothing was sent." in refused.output
    assert len(sent_to(cli, config, MARIA)) == before
    items = {i["id"]: i for i in jcall(cli, ["inbox", "--json"], config)}
    assert items[asked["inbound_id"]]["answered"] is False


def test_language_detection_of_free_text() -> None:
    from gateway.inbound.detect import LanguageDetector

    detector = LanguageDetector()
    assert detector.detect("¿Cuándo es la próxima reunión sobre el autobús escolar?") == "es"
    assert detector.detect("هل توجد حافلة إلى الورشة؟ ليس لدينا سيارة.") == "ar"
    assert detector.detect("Wiilkaygu wuu jiran yahay maanta") == "so"
    assert detector.detect("Mon fils est malade aujourd'hui, il ne pourra pas venir à l'école.") == "fr"
    assert detector.detect("ok") is None  # too short to tell
    # A short reply is unclear among all languages, yet plain between the two expected: the
    # family's and the staff's (an English reply from a Burmese-reading guardian is English,
    # not a job for a Burmese interpreter).
    assert detector.detect("I can't come, my son is sick") is None
    assert detector.detect("I can't come, my son is sick", ("my", "en")) == "en"
    assert detector.detect("¿A qué hora termina?", ("es", "en")) == "es"
    assert detector.detect("Hola, no puedo ir", ("vi", "en")) is None  # neither expected one
    # Haitian Creole is not a language the detector knows: nothing to weigh English against.
    assert detector.detect("Eske gen bis pou atelye a?", ("ht", "en")) is None


def test_an_english_question_from_a_spanish_reading_family_is_not_sent_to_an_interpreter(
    cli: Any, families: Path
) -> None:
    asked = reply(cli, families, MARIA, "Which bus does my son take? He is new this year.")
    assert asked["classification"] == "free_text"
    [item] = [i for i in jcall(cli, ["inbox", "--json"], families) if i["id"] == asked["inbound_id"]]
    assert item["language"] == "en"
    assert not item.get("translation_note")  # staff read it as it is: no "flag it for an interpreter"
