"""``gateway demo`` shows two-way engagement: RSVP counts, a STOP, a HELP and an inbox item."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from gateway.demo import run_demo


async def test_demo_shows_rsvps_stop_help_and_inbox(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    figures = await run_demo(tmp_path / "demo", console)
    output = buffer.getvalue()

    classifications = [o["classification"] for o in figures["outcomes"]]
    assert classifications.count("rsvp") == 4
    assert {"opt_out", "help", "free_text"} <= set(classifications)

    assert figures["rsvp"] == {"yes": 2, "no": 1, "maybe": 1}
    assert "RSVPs: yes 2, no 1, maybe 1" in output
    assert figures["opted_out"] == 1 and "opt-outs: 1" in output

    [item] = figures["inbox"]
    assert item["family_id"] == "F004" and item["language"] == "ar" and item["channel"] == "telegram"
    assert "inbox: 1 item(s)" in output and item["text"] in output
    # No engine installed for Arabic: the original text and how to install one.
    assert item["translation"] is None and "gateway translate install" in output

    # Every reply that asks for an answer got one, in the family's language and channel.
    by_text = {o["classification"]: o for o in figures["outcomes"]}
    [help_reply] = by_text["help"]["replies"]
    assert help_reply["language"] == "my" and help_reply["channel"] == "sms"
    [stop_reply] = by_text["opt_out"]["replies"]
    assert stop_reply["language"] == "sw" and stop_reply["status"] == "delivered"

    # The sandbox outbox folder holds one JSON file per message sent: 11 invitations, 4 RSVP
    # confirmations, the opt-out confirmation and the HELP text (nothing to the free text).
    files = sorted((tmp_path / "demo" / "data" / "channels").glob("*/outbox/*.json"))
    assert len(files) == 11 + 4 + 1 + 1
    sent = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    help_file = [m for m in sent if m["message_id"] == help_reply["message_id"]]
    assert help_file and help_file[0]["address"] == "+19135550105"
