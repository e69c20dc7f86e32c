"""Channels as first-class plugins, below the user-level test of a third-party package
(tests/e2e/test_third_party_channel.py): declared address kinds and their errors, routing by
channel on shared addresses, capabilities read by the core (per-channel template blocks,
titles, buttons, the maximum length refused before anything is written), consent per channel
and the migration that keeps existing opt-outs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from gateway import (
    PHONE,
    AddressKind,
    Channel,
    ChannelCapabilities,
    OutboundMessage,
    SendResult,
    hookimpl,
    normalize_phone,
)
from gateway.addresses import AddressKinds
from gateway.domain.family_csv import parse_families_csv
from gateway.errors import ConfigError, PluginError, StaffFacingError
from gateway.families import import_families
from gateway.outbox.planner import BroadcastRequest
from gateway.resources import SHIPPED_TEMPLATES
from gateway.sandbox_tools import inject_reply
from gateway.storage.endpoints import endpoint_state
from gateway.storage.migrate import upgrade
from gateway.storage.models import Broadcast, Endpoint, OutboxMessage
from gateway.testing.harness import open_gateway, write_config

PAGER = AddressKind(
    name="pager",
    normalise=lambda raw: "pg:" + normalize_phone(raw.removeprefix("pg:")),
    mask=lambda address: "pg:…" + address[-2:],
    defaults_from="phone",
    to_default=lambda address: address.removeprefix("pg:"),
)


class PagerChannel(Channel):
    """Short messages with a title and two buttons, on phone numbers."""

    plugin: ClassVar[str] = "pager"
    address_kind = PAGER
    capabilities = ChannelCapabilities(subject=True, buttons=2, max_length=60)
    sent: ClassVar[list[OutboundMessage]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        PagerChannel.sent.append(message)
        return SendResult(provider_message_id=f"pg-{message.message_id}")


class PagerPlugin:
    @hookimpl
    def gateway_channel_types(self) -> list[type]:
        return [PagerChannel]


def _config(tmp_path: Path, **sections: Any) -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(SHIPPED_TEMPLATES, templates)
    (templates / "notice.j2").write_text(
        "{% block sms %}SMS: {{ text }}{% endblock %}\n"
        "{% block pager %}PAGER: {{ text }}{% endblock %}\n"
        "{% block beeper_title %}Notice{% endblock %}\n"
        "{% block email_subject %}Subject line{% endblock %}\n",
        encoding="utf-8",
    )
    channels = {
        "sms": {"plugin": "sandbox", "endpoint": "phone", "echo": False},
        "beeper": {"plugin": "pager"},
        "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
    }
    return write_config(
        tmp_path / "gw",
        paths={"data_dir": str(tmp_path / "gw" / "data"), "templates": str(templates)},
        channels=channels,
        **sections,
    )


FAMILIES = (
    "family_id,guardian_name,language,phone,email,preferred_channel\n"
    "F1,Maria Lopez,en,+19135550101,maria@example.org,beeper\n"
    "F2,Amina Ali,en,+19135550102,amina@example.org,phone\n"
    "F3,Sarah Smith,en,+19135550103,sarah@example.org,email\n"
)


async def _gateway_with_families(tmp_path: Path, **sections: Any) -> Any:
    path = tmp_path / "families.csv"
    path.write_text(FAMILIES, encoding="utf-8")
    return path


async def test_routing_templates_capabilities_and_consent_per_channel(tmp_path: Path) -> None:
    PagerChannel.sent.clear()
    families = await _gateway_with_families(tmp_path)
    async with open_gateway(_config(tmp_path), extra_plugins=(PagerPlugin(),)) as gw:
        report = await import_families(gw, families, progress=False)
        assert report["errors"] == []
        # An address kind given as preferred_channel means the first channel of that kind.
        [note] = [w for w in report["warnings"] if w["column"] == "preferred_channel"]
        assert note["line"] == 3 and "stored as channel 'sms'" in note["reason"]

        # Policy "all": every address once, on the first channel that may write to it (the
        # preferred one first), never SMS and the pager both on one number.
        everyone = BroadcastRequest(template="notice", context={"text": "Bus late"}, policy="all")
        planned = await gw.planner.plan(everyone, dry_run=True)
        assert planned.by_channel == {"beeper": 1, "sms": 2, "email": 3}

        summary = await gw.planner.plan(BroadcastRequest(template="notice", context={"text": "Bus late"}))
        assert summary.by_channel == {"beeper": 1, "sms": 1, "email": 1}
        await gw.dispatcher.run_until_idle()
        [paged] = PagerChannel.sent
        # The channel's own block, on the phone number in the pager kind's form, with a title
        # from the <channel>_title block.
        assert (paged.address, paged.body, paged.subject) == ("pg:+19135550101", "PAGER: Bus late", "Notice")
        async with gw.db.session() as session:
            rows = {r.channel: r for r in await session.scalars(select(OutboxMessage))}
        assert rows["sms"].body == "SMS: Bus late" and rows["sms"].subject is None
        assert rows["email"].subject == "Subject line"
        assert rows["beeper"].payload["fallback"] == [
            ["sms", rows["beeper"].endpoint_id],
            ["email", rows["beeper"].endpoint_id + 1],
        ]

        # STOP on the pager: the SMS on the same number stays; the next broadcast goes by SMS.
        await inject_reply(gw, "+19135550101", "STOP", channel="beeper")
        async with gw.db.session() as session:
            phone = await session.scalar(select(Endpoint).where(Endpoint.address == "+19135550101"))
            assert phone is not None
            assert (await endpoint_state(session, phone.id, "beeper")).opted_out
            assert (await endpoint_state(session, phone.id, "sms")).usable
        again = await gw.planner.plan(BroadcastRequest(template="notice", context={"text": "Snow day"}))
        assert again.by_channel == {"sms": 2, "email": 1}

        # Too long for the pager: refused before anything is written, naming channel,
        # language and length.
        await inject_reply(gw, "+19135550101", "START", channel="beeper")
        async with gw.db.session() as session:
            before = await session.scalar(select(func.count(Broadcast.id)))
        with pytest.raises(
            StaffFacingError, match=r"channel beeper: the en message is 7\d characters, more than the 60"
        ) as caught:
            await gw.planner.plan(BroadcastRequest(template="notice", context={"text": "x" * 70}))
        # Staff read it in their interface language.
        spanish = caught.value.note.text(lambda m, **p: gw.ui_catalogs.gettext("es", m, **p))
        assert spanish.startswith("canal beeper: el mensaje en en tiene 7")
        async with gw.db.session() as session:
            assert await session.scalar(select(func.count(Broadcast.id))) == before


def test_capabilities_of_the_built_in_channels_and_buttons() -> None:
    from gateway_plugins.smtp_email import SmtpEmailChannel
    from gateway_plugins.telegram import TelegramChannel
    from gateway_plugins.twilio_sms import TwilioSmsChannel

    assert TwilioSmsChannel.capabilities == ChannelCapabilities(max_length=1600)
    assert SmtpEmailChannel.capabilities is not None and SmtpEmailChannel.capabilities.subject
    assert TelegramChannel.capabilities is not None and TelegramChannel.capabilities.buttons >= 10
    with pytest.raises(ValueError, match="buttons"):
        ChannelCapabilities(buttons=-1)


async def test_buttons_only_when_the_channel_has_enough(tmp_path: Path) -> None:
    from gateway.rendering.composer import shows_buttons

    async with open_gateway(_config(tmp_path), extra_plugins=(PagerPlugin(),)) as gw:
        pager = gw.channels["beeper"]
        two = {"choices": [{"value": "yes"}, {"value": "no"}]}
        three = {"choices": [{"value": "yes"}, {"value": "no"}, {"value": "maybe"}]}
        assert shows_buttons(pager, two) and not shows_buttons(pager, three)
        assert not shows_buttons(gw.channels["sms"], two)


def test_unknown_kinds_are_named(tmp_path: Path) -> None:
    parsed = parse_families_csv(b"family_id,guardian_name,language,address:fax\nF1,Ann,en,123\n")
    assert [(p.line, p.column) for p in parsed.errors] == [(1, "address:fax")]
    assert "unknown address kind 'fax' (declared: phone, email, telegram" in parsed.errors[0].reason
    kinds = AddressKinds([(PAGER, "pager plugin")])
    parsed = parse_families_csv(
        b"family_id,guardian_name,language,address:pager\nF1,Ann,en,(913) 555-0101\nF2,Bo,en,12\n",
        kinds=kinds,
    )
    assert parsed.families["F1"].guardians["ann"].endpoints == {"pager": ["pg:+19135550101"]}
    assert [(p.line, p.column) for p in parsed.errors] == [(3, "address:pager")]

    clash = AddressKind(name="pager", normalise=str)
    with pytest.raises(PluginError, match="address kind 'pager' is declared by both pager plugin and other"):
        AddressKinds([(PAGER, "pager plugin"), (clash, "other")])
    orphan = AddressKind(name="fax", normalise=str, defaults_from="telex")
    with pytest.raises(PluginError, match="defaults from 'telex'"):
        AddressKinds([(orphan, "fax plugin")])
    with pytest.raises(PluginError, match="address kind 'Bad Name'"):
        AddressKind(name="Bad Name", normalise=str)
    assert PHONE.parse("(913) 555-0101") == "+19135550101"
    assert PHONE.parse("020 7946 0018", region="GB") == "+442079460018"


async def test_unknown_kind_in_a_channel_config_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw", channels={"fax": {"plugin": "sandbox", "endpoint": "fax"}})
    with pytest.raises(
        ConfigError, match=r"channels\.fax\.endpoint: unknown address kind 'fax' \(declared: phone"
    ):
        async with open_gateway(config):
            pass


def test_migration_keeps_existing_opt_outs_on_every_channel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url, "0006")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO families (id, external_id, created_at, updated_at) "
                    "VALUES (1, 'F1', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO guardians "
                    "(id, family_id, name, name_key, language, timezone, timezone_assumed) "
                    "VALUES (1, 1, 'Maria', 'maria', 'es', 'America/Chicago', 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO endpoints (id, guardian_id, kind, address, opted_out, invalid) "
                    "VALUES (1, 1, 'phone', '+19135550101', 1, 0)"
                )
            )
        upgrade(url)
        with Session(engine) as session:
            endpoint = session.get(Endpoint, 1)
            assert endpoint is not None and endpoint.opted_out
            assert session.execute(text("SELECT count(*) FROM endpoint_consents")).scalar() == 0
    finally:
        engine.dispose()
