"""Sorting a raw incoming mail into a family reply, an unsubscribe, a bounce, or noise.

:func:`parse_incoming_mail` is bounded work (see :mod:`.reply_text`), yet meant to run in a
worker thread; :func:`raw_reply` is the fallback when it fails or takes too long: the sender and
ids from the headers alone, and the body's text as it came, so the reply is still stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from gateway import InboundMessage, StatusUpdate

from .bounces import is_delivery_report, parse_delivery_report
from .reply_text import REPLY_LANGUAGES, html_to_text, latest_reply_text

__all__ = [
    "IgnoredMail",
    "ParsedMail",
    "ReplyMail",
    "BounceMail",
    "parse_incoming_mail",
    "raw_reply",
]

#: Bytes of a body taken as text by :func:`raw_reply`.
RAW_TEXT_BYTES = 64_000

_TOKEN_ADDRESS = re.compile(r"^(reply|unsubscribe)\+([A-Za-z0-9_.=-]{1,128})@(.+)$", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
_AUTOMATED_SENDERS = re.compile(r"^(mailer-daemon|postmaster)@", re.IGNORECASE)
_AUTOMATED_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


@dataclass(frozen=True, slots=True)
class ReplyMail:
    """A reply (or an unsubscribe request) for the inbound pipeline."""

    message: InboundMessage
    unsubscribe: bool = False


@dataclass(frozen=True, slots=True)
class BounceMail:
    """A delivery report: status updates for the original message."""

    updates: tuple[StatusUpdate, ...]


@dataclass(frozen=True, slots=True)
class IgnoredMail:
    """Mail that is neither a reply nor a usable report (auto-reply, our own mail...)."""

    reason: str


ParsedMail = ReplyMail | BounceMail | IgnoredMail


def _header(mail: EmailMessage, name: str) -> str:
    value = mail.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _message_ids(value: str) -> tuple[str, ...]:
    return tuple(_MESSAGE_ID.findall(value))


def _provider_message_id(mail: EmailMessage, raw: bytes) -> str:
    found = _message_ids(_header(mail, "Message-ID"))
    if found:
        return found[0]
    # No Message-ID: a stable stand-in so a re-read is still recognised as a duplicate.
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id.invalid>"


def _token(mail: EmailMessage, reply_domain: str) -> tuple[str, str] | None:
    """``("reply"|"unsubscribe", TOKEN)`` from the first recipient header that has one."""
    for header in _RECIPIENT_HEADERS:
        for _, address in getaddresses([str(v) for v in mail.get_all(header, [])]):
            match = _TOKEN_ADDRESS.match(address.strip())
            if match and match.group(3).lower() == reply_domain:
                return match.group(1).lower(), match.group(2)
    return None


def _is_automated(mail: EmailMessage) -> bool:
    auto_submitted = _header(mail, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _header(mail, "Precedence").lower() in _AUTOMATED_PRECEDENCE:
        return True
    return any(mail.get(name) for name in ("X-Autoreply", "X-Autorespond"))


def _body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken encoding
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content


def _bounce(mail: EmailMessage, channel: str) -> ParsedMail:
    report = parse_delivery_report(mail)
    if report.original_message_id is None:
        return IgnoredMail("delivery report without the original Message-ID")
    updates: list[StatusUpdate] = []
    for recipient in report.recipients:
        if recipient.action == "failed":
            status = "failed"
        elif recipient.action in ("delivered", "relayed", "expanded"):
            status = "delivered"
        else:  # "delayed": the server keeps trying; nothing has changed yet
            continue
        failed = status == "failed"
        updates.append(
            StatusUpdate(
                channel=channel,
                provider_message_id=report.original_message_id,
                status=status,
                error_code=(recipient.status or "bounce") if failed else None,
                error_reason=(recipient.diagnostic or "")[:500] or None if failed else None,
                endpoint_state="invalid" if recipient.hard_bounce else None,
            )
        )
    if not updates:
        return IgnoredMail("delivery report without a final status")
    return BounceMail(tuple(updates))


def parse_incoming_mail(
    raw: bytes,
    *,
    channel: str,
    reply_domain: str,
    own_addresses: frozenset[str] = frozenset(),
    languages: tuple[str, ...] = REPLY_LANGUAGES,
) -> ParsedMail:
    """Classify one raw RFC 5322 message from the reply mailbox."""
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    if is_delivery_report(mail):
        return _bounce(mail, channel)
    senders = getaddresses([str(v) for v in mail.get_all("From", [])])
    sender = senders[0][1].strip().lower() if senders else ""
    if "@" not in sender:
        return IgnoredMail("no sender address")
    if sender in own_addresses:
        return IgnoredMail("sent by the gateway itself")
    if _AUTOMATED_SENDERS.match(sender):
        return IgnoredMail("non-standard bounce or server notice")
    token = _token(mail, reply_domain.lower())
    provider_id = _provider_message_id(mail, raw)
    references = _message_ids(_header(mail, "In-Reply-To")) + _message_ids(
        _header(mail, "References")
    )
    in_reply_to = tuple(dict.fromkeys(references))
    subject = _header(mail, "Subject")
    if token is not None and token[0] == "unsubscribe":
        return ReplyMail(
            InboundMessage(
                channel=channel,
                provider_message_id=provider_id,
                sender=sender,
                text="STOP",
                reply_token=token[1],
                provider_in_reply_to=in_reply_to,
                raw={"kind": "unsubscribe", "subject": subject[:200]},
            ),
            unsubscribe=True,
        )
    if _is_automated(mail):
        return IgnoredMail("automatic reply (Auto-Submitted / Precedence)")
    text = latest_reply_text(_body_text(mail), languages)
    return ReplyMail(
        InboundMessage(
            channel=channel,
            provider_message_id=provider_id,
            sender=sender,
            text=text,
            reply_token=token[1] if token else None,
            provider_in_reply_to=in_reply_to,
            raw={"kind": "reply", "subject": subject[:200]},
        )
    )


def raw_reply(raw: bytes, *, channel: str, reply_domain: str) -> ReplyMail | None:
    """A reply built from the headers alone and the body's bytes as text (no MIME decoding,
    no quote stripping), or None without a sender address. For a mail whose parse failed or
    ran out of time: better a raw reply in the inbox than a lost one."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    assert isinstance(headers, EmailMessage)  # policy.default builds EmailMessage objects
    senders = getaddresses([str(v) for v in headers.get_all("From", [])])
    sender = senders[0][1].strip().lower() if senders else ""
    if "@" not in sender:
        return None
    body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
    token = _token(headers, reply_domain.lower())
    references = _message_ids(_header(headers, "In-Reply-To")) + _message_ids(
        _header(headers, "References")
    )
    return ReplyMail(
        InboundMessage(
            channel=channel,
            provider_message_id=_provider_message_id(headers, raw),
            sender=sender,
            text=body[:RAW_TEXT_BYTES].decode("utf-8", "replace").strip(),
            reply_token=token[1] if token and token[0] == "reply" else None,
            provider_in_reply_to=tuple(dict.fromkeys(references)),
            raw={"kind": "reply", "subject": _header(headers, "Subject")[:200], "unparsed": True},
        )
    )
