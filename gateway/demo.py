"""``gateway demo``: the embedded default end to end, with no network and no credentials.

A fresh SQLite database in a folder, sample families in nine languages across SMS, e-mail
and Telegram (all on the sandbox channel), a workshop invitation with an RSVP question, a few
replies pushed through the real inbound pipeline, then a summary.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, or_, select

from gateway.app import Gateway
from gateway.broadcasts import send_broadcast
from gateway.config import load_config
from gateway.domain.events import load_event, upcoming_event_file
from gateway.families import import_families
from gateway.inbox import list_inbox
from gateway.resources import EXAMPLE_CONFIG, SHIPPED_EXAMPLES
from gateway.sandbox_tools import inject_reply
from gateway.storage.models import Endpoint, EndpointConsent, OutboxMessage

__all__ = ["DEMO_REPLIES", "run_demo"]

EXAMPLES = SHIPPED_EXAMPLES

#: (who, address, text, what it shows)
DEMO_REPLIES: list[tuple[str, str, str, str]] = [
    ("Maria (es, SMS)", "+19135550101", "¡Sí!", "an RSVP in Spanish"),
    ("Amina (so, SMS)", "+19135550102", "haa", "an RSVP in Somali"),
    ("Lan (vi, e-mail)", "lan.nguyen@example.net", "2", "a 'no' by number"),
    ("Claire (fr, e-mail)", "claire.dubois@example.net", "peut-être", "a 'maybe' in French"),
    ("Baraka (sw, SMS)", "+19135550106", "STOP", "an opt-out"),
    ("Aung (my, SMS)", "+19135550105", "HELP", "a HELP request"),
    ("Fatima (ar, Telegram)", "552201", "هل توجد حافلة إلى الورشة؟ ليس لدينا سيارة.", "a free-text question"),
]


def write_demo_config(folder: Path) -> Path:
    """The example config, with the data folder inside ``folder`` and quiet hours off."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["paths"] = {"data_dir": "data"}
    data["http"]["public_base_url"] = "http://localhost:8080"
    data["quiet_hours"]["enabled"] = False  # so the demo sends now, whatever the hour
    data["scheduler"]["enabled"] = True
    for channel in data["channels"].values():
        channel["echo"] = False
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


async def run_demo(folder: Path | None, console: Console) -> dict[str, Any]:
    """Run the whole story and print the summary; returns the figures (for tests)."""
    temporary = folder is None
    folder = Path(tempfile.mkdtemp(prefix="gateway-demo-")) if folder is None else folder
    if folder.exists() and (folder / "data").exists():
        shutil.rmtree(folder / "data")
    folder.mkdir(parents=True, exist_ok=True)
    config = load_config(write_demo_config(folder))
    console.rule("[bold]Family-engagement gateway demo")
    console.print(f"folder: {folder}  (SQLite database, sandbox outbox)\n", highlight=False)
    gw = Gateway(config)
    try:
        await gw.migrate()
        report = await import_families(gw, EXAMPLES / "families.csv", progress=False)
        console.print(
            f"1. imported {report['families_imported']} families ({report['students']} students) "
            f"from examples/families.csv; {len(report['errors'])} errors",
            highlight=False,
        )
        # The example event, moved two weeks ahead: the demo never invites to the past.
        event_file = upcoming_event_file(EXAMPLES / "reading-workshop.yaml", folder / "event.yaml")
        summary = await send_broadcast(gw, "workshop_invitation", event_file=event_file)
        console.print(
            f"2. invitation to the Reading at Home workshop: broadcast {summary['broadcast_id']}, "
            f"{summary['families']} families, {summary['messages']} messages",
            highlight=False,
        )
        for note in summary.get("notes", []):
            console.print(f"   {note}", highlight=False)
        await gw.start_channels()
        sent = await gw.dispatcher.run_until_idle()
        console.print(f"3. dispatched through the sandbox channels: {sent.sent} sent, {sent.failed} failed\n")
        await _show_samples(gw, console, summary["broadcast_id"])
        console.print("4. replies from families, through the same inbound pipeline webhooks use:")
        outcomes = []
        for who, address, text, what in DEMO_REPLIES:
            outcome = await inject_reply(gw, address, text)
            outcomes.append(outcome)
            replies = "; ".join(r["body"].splitlines()[0][:70] for r in outcome["replies"])
            console.print(
                f"   {who}: {text!r} ({what}) → [bold]{outcome['classification']}[/]"
                + (f"\n      ↳ {replies}" if replies else ""),
                highlight=False,
            )
        console.print()
        figures = await _summary(gw, console, summary["broadcast_id"], load_event(event_file).id)
        figures["outcomes"] = outcomes
        figures["folder"] = str(folder)
        console.print(
            f"\nsandbox outbox: {folder / 'data' / 'channels'}/<channel>/outbox (one JSON file per message)",
            highlight=False,
        )
        console.print(
            "try: .venv/bin/gateway --config " + str(folder / "config.yaml") + " sandbox outbox",
            highlight=False,
        )
        return figures
    finally:
        await gw.close()
        if temporary:
            pass  # keep the folder: the newcomer may want to look at the outbox


async def _show_samples(gw: Gateway, console: Console, broadcast_id: int) -> None:
    async with gw.db.session() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.broadcast_id == broadcast_id)
                .order_by(OutboxMessage.id)
            )
        )
    shown: set[str] = set()
    for row in rows:
        if row.language in shown or row.language in ("en",) or len(shown) >= 3:
            continue
        shown.add(row.language)
        console.rule(f"{row.channel} · {row.language}", style="dim")
        if row.subject:
            console.print(f"Subject: {row.subject}", highlight=False, markup=False)
        console.print(row.body, highlight=False, markup=False)
    console.rule(style="dim")
    console.print()


async def _summary(gw: Gateway, console: Console, broadcast_id: int, event_id: str) -> dict[str, Any]:
    async with gw.db.session() as session:
        by = list(
            await session.execute(
                select(OutboxMessage.language, OutboxMessage.channel, func.count(OutboxMessage.id))
                .where(OutboxMessage.broadcast_id == broadcast_id)
                .group_by(OutboxMessage.language, OutboxMessage.channel)
            )
        )
        # Addresses opted out of at least one channel (or of every channel).
        opted_out = await session.scalar(
            select(func.count(Endpoint.id)).where(
                or_(
                    Endpoint.opted_out,
                    Endpoint.id.in_(select(EndpointConsent.endpoint_id).where(EndpointConsent.opted_out)),
                )
            )
        )
    table = Table("language", "channel", "messages", title="Invitation messages")
    for language, channel, count in sorted(by):
        table.add_row(language, channel, str(count))
    console.print(table)
    rsvp = await gw.inbound.surveys.rsvp_counts(event_id)
    console.print(f"RSVPs: yes {rsvp.get('yes', 0)}, no {rsvp.get('no', 0)}, maybe {rsvp.get('maybe', 0)}")
    console.print(f"opt-outs: {opted_out}")
    items = await list_inbox(gw)
    console.print(f"inbox: {len(items)} item(s)")
    for item in items:
        console.print(
            f"  #{item['id']} family {item['family_id']} ({item['language']}, {item['channel']}): "
            f"{item['text']}",
            highlight=False,
        )
        if item["translation"]:
            console.print(f"     English: {item['translation']}", highlight=False)
        elif item["translation_note"]:
            console.print(f"     ({item['translation_note']})", highlight=False)
            console.print(
                f"     to read {item['language']} replies in English, install an engine: "
                f"gateway translate install {item['language']}  (Argos, from its package index) "
                "or gateway translate install --model DIR  (NLLB-200 / MADLAD-400)",
                highlight=False,
            )
    translation = await gw.translation.status()
    engines = [e.name for e in gw.engines if e.available() and e.language_pairs()]
    console.print(
        f"machine translation: {', '.join(engines) or 'no engine installed'}; memory "
        f"{translation['memory_entries']} entries, {translation['engine_calls']} engine calls, "
        f"{translation['hits']} hits, {translation['misses']} misses"
        + ("" if engines else " (free text stays in English, with a note saying so)"),
        highlight=False,
    )
    return {
        "translation": translation,
        "by_language_channel": [(lang, ch, n) for lang, ch, n in by],
        "rsvp": rsvp,
        "opted_out": opted_out,
        "inbox": items,
    }
