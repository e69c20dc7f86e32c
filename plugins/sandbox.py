"""The ``sandbox`` channel: the embedded default, with no provider and no credentials.

Every outgoing message is printed to the console and written to an outbox folder, one JSON
file per message (channel, address, language, subject, body). Replies are injected with
``gateway sandbox reply`` and go through the same inbound entry point real webhooks use. The
default configuration runs ``sms``, ``email`` and ``telegram`` on this plugin, so switching one
to a real provider is a one-line change of its ``plugin:``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gateway import Channel, ChannelSettings, OutboundMessage, SendResult, hookimpl, mask_address
from gateway.sms import count_segments

__all__ = ["SandboxChannel", "SandboxSettings", "read_outbox"]

#: The plugin contract this plugin is written against (gateway.contract).
GATEWAY_CONTRACT = "2"


class SandboxSettings(ChannelSettings):
    """``outbox_dir`` (default: the channel's data folder), ``echo`` to print messages."""

    outbox_dir: Path | None = Field(default=None, description="Folder for one JSON file per message.")
    echo: bool = Field(default=True, description="Print each message to the console.")
    price_per_segment: float = 0.0


class SandboxChannel(Channel):
    """Writes messages to files instead of a provider; accepts everything instantly."""

    plugin = "sandbox"
    Settings = SandboxSettings

    def __init__(self, name: str, settings: ChannelSettings, context: Any) -> None:
        super().__init__(name, settings, context)
        assert isinstance(settings, SandboxSettings)
        self.folder = settings.outbox_dir or (context.data_dir / "outbox")

    @property
    def supports_buttons(self) -> bool:  # type: ignore[override]
        """Buttons are shown only where the channel being simulated has them (Telegram)."""
        return self.kind == "telegram"

    @property
    def supports_attachments(self) -> bool:  # type: ignore[override]
        """Files go with the message where the channel being simulated carries them (e-mail)."""
        return self.kind == "email"

    async def start(self) -> None:
        """Create the outbox folder."""
        self.folder.mkdir(parents=True, exist_ok=True)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Record the message as a file and (optionally) print it."""
        record = {
            "message_id": message.message_id,
            "broadcast_id": message.broadcast_id,
            "family_id": message.family_id,
            "channel": self.name,
            "address": message.address,
            "language": message.language,
            "subject": message.subject,
            "body": message.body,
            "html": message.html,
            "buttons": [[b.value, b.label] for b in message.buttons],
            "attachments": [
                {"name": a.filename, "type": a.content_type, "size": a.size, "url": a.url}
                for a in message.attachments
            ],
            "reply_token": message.reply_token,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{message.message_id:08d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        if self.settings.echo:  # type: ignore[attr-defined]
            _print(self.name, message)
        return SendResult(provider_message_id=f"sandbox-{message.message_id}", status="delivered")

    def preview_details(self, message: OutboundMessage) -> Mapping[str, Any]:
        """SMS segments and encoding for phone channels, as a real SMS provider would count."""
        if self.kind != "phone":
            return {}
        info = count_segments(message.body)
        price = self.settings.price_per_segment  # type: ignore[attr-defined]
        return {
            "segments": info.segments,
            "encoding": info.encoding,
            "characters": info.characters,
            "estimated_cost": round(info.segments * price, 4),
        }

    def cost_units(self, message: OutboundMessage) -> int:
        """SMS segments on phone channels, else 1."""
        return count_segments(message.body).segments if self.kind == "phone" else 1


def _print(channel: str, message: OutboundMessage) -> None:
    head = f"── {channel} → {mask_address(message.address)} [{message.language}]"
    if message.subject:
        head += f" {message.subject}"
    body = message.body if len(message.body) <= 400 else message.body[:400] + "…"
    print(f"{head}\n{body}\n", file=sys.stderr, flush=True)  # stdout is for --json alone


def read_outbox(folder: Path) -> list[dict[str, Any]]:
    """Every message a sandbox channel wrote to ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


@hookimpl
def gateway_channel_types() -> list[type[Channel]]:
    """The sandbox channel."""
    return [SandboxChannel]
