"""Delivery status notifications (RFC 3464 ``multipart/report; report-type=delivery-status``)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import parseaddr

from .smtp_pool import enhanced_status

__all__ = ["BouncedRecipient", "DeliveryReport", "is_delivery_report", "parse_delivery_report"]


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    """One per-recipient block of a DSN."""

    address: str
    action: str
    """``failed``, ``delayed``, ``delivered``, ``relayed`` or ``expanded``."""
    status: str | None
    """RFC 3463 status, e.g. ``5.1.1``."""
    diagnostic: str | None

    @property
    def hard_bounce(self) -> bool:
        """A permanent failure that says the address itself is bad (5.1.x, 5.2.1)."""
        status = self.status or ""
        return self.action == "failed" and (status.startswith("5.1.") or status == "5.2.1")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a DSN says about which message and which recipients."""

    original_message_id: str | None
    recipients: tuple[BouncedRecipient, ...]


def is_delivery_report(mail: Message) -> bool:
    """True for ``multipart/report; report-type=delivery-status``."""
    return (
        mail.get_content_type() == "multipart/report"
        and (mail.get_param("report-type") or "").lower() == "delivery-status"
    )


def _field(block: Message, name: str) -> str | None:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else None


def _typed_address(value: str | None) -> str:
    """``rfc822; someone@example.com`` → ``someone@example.com``."""
    if not value:
        return ""
    _, _, address = value.partition(";") if ";" in value else ("", "", value)
    return parseaddr(address.strip())[1].lower() or address.strip().lower()


def _original_message_id(report: Message) -> str | None:
    for part in report.walk():
        content_type = part.get_content_type()
        headers: Message | None = None
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                headers = payload[0]
        elif content_type == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            headers = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
        if headers is not None and headers.get("Message-ID"):
            return " ".join(str(headers["Message-ID"]).split())
    return None


def parse_delivery_report(report: EmailMessage) -> DeliveryReport:
    """Read the per-recipient blocks and the original Message-ID out of a DSN."""
    recipients: list[BouncedRecipient] = []
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block holds the per-message fields
            address = _typed_address(_field(block, "Final-Recipient") or _field(
                block, "Original-Recipient"))
            action = (_field(block, "Action") or "").lower()
            if not address or not action:
                continue
            diagnostic = _field(block, "Diagnostic-Code")
            status = _field(block, "Status")
            status = enhanced_status(status or "") or enhanced_status(diagnostic or "")
            recipients.append(BouncedRecipient(address, action, status, diagnostic))
    return DeliveryReport(_original_message_id(report), tuple(recipients))
