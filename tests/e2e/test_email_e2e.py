"""E-mail through the whole gateway: CLI → planner → outbox → dispatcher → aiosmtplib →
RecordingSmtpServer; replies and bounces delivered into a real Dovecot and read by the channel's
IMAP poller → inbound pipeline; RFC 8058 one-click unsubscribe through the web app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from e2e_support import LiveGateway, live_gateway, write_event, write_families, write_survey

from gateway.testing.dovecot import DovecotServer
from gateway.testing.smtp_server import ReceivedMail, RecordingSmtpServer

FROM = "liaison@district.example"
REPLY_DOMAIN = "replies.district.example"
MARIA = "maria.hernandez@example.net"  # Spanish, replies from Gmail
TOM = "tom.baker@example.net"  # English, a name with <script>, replies from Outlook at work
CLAIRE = "claire.dubois@example.net"  # French, replies from Apple Mail
FATIMA = "fatima@example.net"  # Arabic: right-to-left HTML
REFUSED = "nobody@example.net"  # the SMTP server answers 550 5.1.1 at RCPT
GONE = "gone@example.net"  # accepted, then a bounce comes back


def _families(folder: Path) -> Path:
    rows = [
        ("E1", "Maria Hernández", "es", MARIA),
        ("E2", "Tom <script>alert(1)</script> Baker", "en", TOM),
        ("E3", "Claire Dubois", "fr", CLAIRE),
        ("E4", "Fatima Al-Sayed", "ar", FATIMA),
        ("E5", "Nobody Here", "en", REFUSED),
        ("E6", "Gone Away", "en", GONE),
    ]
    return write_families(
        folder / "families.csv",
        [
            {
                "family_id": fid,
                "guardian_name": name,
                "language": lang,
                "email": address,
                "preferred_channel": "email",
                "student_name": f"Kid {fid}",
            }
            for fid, name, lang, address in rows
        ],
    )


@pytest.fixture
def smtp_server() -> Iterator[RecordingSmtpServer]:
    with RecordingSmtpServer() as server:
        yield server


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path) as server:
        yield server


def _email_channels(smtp: RecordingSmtpServer, dovecot: DovecotServer) -> Callable[[str], dict[str, Any]]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "email": {
                "plugin": "smtp_email",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "starttls": False,
                    "from_address": FROM,
                    "from_name": "Lincoln Middle School",
                    "reply_domain": REPLY_DOMAIN,
                    "timeout": 5,
                },
                # One poll at start; the test polls explicitly afterwards.
                "imap": {
                    "host": dovecot.host,
                    "port": dovecot.port,
                    "ssl": False,
                    "idle": False,
                    "username": dovecot.user,
                    "password": dovecot.password,
                    "poll_seconds": 600,
                    "timeout": 5,
                },
            }
        }

    return channels


def _only(mails: list[ReceivedMail]) -> EmailMessage:
    assert len(mails) == 1, [m.rcpt_tos for m in mails]
    return mails[0].message


def _reply(
    sender: str, original: EmailMessage, text: str, *, html: str | None = None, client: str = ""
) -> bytes:
    """A family's reply to ``original``, addressed to its Reply-To, threading headers set."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["Date"] = format_datetime(datetime.now(UTC))
    reply["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply["References"] = str(original["Message-ID"])
    if client:
        reply["X-Mailer"] = client
    reply.set_content(text)
    if html is not None:
        reply.add_alternative(html, subtype="html")
    return bytes(reply)


def _gmail_spanish(original: EmailMessage) -> bytes:
    text = (
        "Sí, ahí estaremos\n\n"
        "El lun, 7 dic 2026 a las 10:00, Lincoln Middle School (<liaison@district.example>)\n"
        "escribió:\n\n"
        "> Hola Maria Hernández,\n"
        "> Le invitamos a Family Math Night.\n"
        "> ¿Va a venir? Responda 1 para sí, 2 para no, 3 para tal vez.\n"
    )
    html = (
        '<div dir="ltr">Sí, ahí estaremos</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">El lun, 7 dic 2026 a las 10:00, Lincoln Middle School escribió:<br></div>'
        '<blockquote class="gmail_quote">Responda 1 para sí, 2 para no, 3 para tal vez.</blockquote></div>'
    )
    return _reply(MARIA, original, text, html=html)


def _outlook_english(original: EmailMessage) -> bytes:
    text = (
        "No, sorry, we have a family dinner that night.\n\n"
        "Tom Baker\nSent from my work laptop\n\n"
        "________________________________\n"
        "From: Lincoln Middle School <liaison@district.example>\n"
        "Sent: Monday, December 7, 2026 10:00 AM\n"
        "To: tom.baker@example.net\n"
        "Subject: Invitation: Family Math Night\n\n"
        "Hello Tom,\nYou are invited to Family Math Night.\n"
        "Will you come? Reply 1 for yes, 2 for no, 3 for maybe.\n"
    )
    # Answered from his office address: the Reply-To token still ties it to his message.
    return _reply("t.baker@office.example.com", original, text, client="Microsoft Outlook 16.0")


def _apple_french(original: EmailMessage) -> bytes:
    text = (
        "Oui\n\n"
        "Claire\n\n"
        "> Le 7 déc. 2026 à 10:00, Lincoln Middle School <liaison@district.example> a écrit :\n"
        "> \n"
        "> Bonjour Claire Dubois,\n"
        "> Vous êtes invité à Family Math Night.\n"
        "> Répondez 1 pour oui, 2 pour non, 3 pour peut-être.\n"
    )
    return _reply(CLAIRE, original, text, client="Apple Mail (2.3774.500.171.1.1)")


def _bounce(original: EmailMessage, recipient: str) -> bytes:
    """An RFC 3464 delivery status notification for ``original``."""
    boundary = "DSN-BOUNDARY-42"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {FROM}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.net')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered to one or more recipients.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original['Message-ID']}\r\n"
        f"From: {FROM}\r\nTo: {recipient}\r\nSubject: Invitation\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


async def _http(live: LiveGateway, method: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, live.base_url + path, allow_redirects=False) as response:
            return response.status, await response.text()


async def test_invitation_replies_unsubscribe_and_bounces(
    tmp_path: Path, db_url: str, cli: Any, smtp_server: RecordingSmtpServer, dovecot: DovecotServer
) -> None:
    channels = _email_channels(smtp_server, dovecot)
    async with live_gateway(tmp_path / "gw", cli, channels, db_url=db_url) as live:
        imported = (await live.run("families", "import", str(_families(tmp_path)), "--json")).json()
        assert imported["families_imported"] == 6 and imported["errors"] == []
        smtp_server.refuse(REFUSED, 550, "5.1.1 User unknown")

        sent = (
            await live.run(
                "broadcast", "send", "workshop_invitation", "--event", str(write_event(tmp_path)), "--json"
            )
        ).json()
        assert sent["messages"] == 6 and sent["by_channel"] == {"email": 6}
        await live.drain()

        # The 550 for one recipient did not stop the others.
        assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == sorted(
            [MARIA, TOM, CLAIRE, FATIMA, GONE]
        )
        rows = {r.address: r for r in await live.outbox(broadcast_id=sent["broadcast_id"])}
        assert rows[REFUSED].status == "failed" and rows[REFUSED].error_code == "550"
        refused = await live.state("email", REFUSED, "email")
        assert refused.invalid
        assert {rows[a].status for a in (MARIA, TOM, CLAIRE, FATIMA, GONE)} == {"sent"}

        # What Maria received: multipart text + HTML, reply token, one-click unsubscribe, lang/dir.
        maria = _only(smtp_server.messages_to(MARIA))
        token = rows[MARIA].reply_token
        assert maria.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in maria.iter_parts()] == ["text/plain", "text/html"]
        assert str(maria["Reply-To"]) == f"reply+{token}@{REPLY_DOMAIN}"
        unsubscribe = "".join(str(maria["List-Unsubscribe"]).split())
        assert (
            unsubscribe
            == f"<{live.base_url}/unsubscribe/{token}>,<mailto:unsubscribe+{token}@{REPLY_DOMAIN}>"
        )
        assert str(maria["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert rows[MARIA].provider_message_id == str(maria["Message-ID"])
        html = maria.get_body(preferencelist=("html",)).get_content()
        assert 'lang="es"' in html and 'dir="ltr"' in html
        assert "Family Math Night" in maria.get_body(preferencelist=("plain",)).get_content()
        fatima_html = _only(smtp_server.messages_to(FATIMA)).get_body(preferencelist=("html",)).get_content()
        assert 'lang="ar"' in fatima_html and 'dir="rtl"' in fatima_html
        tom = _only(smtp_server.messages_to(TOM))
        tom_html = tom.get_body(preferencelist=("html",)).get_content()
        assert "<script>" not in tom_html and "Tom &lt;script&gt;alert(1)&lt;/script&gt; Baker" in tom_html
        assert "Tom <script>alert(1)</script> Baker" in tom.get_body(preferencelist=("plain",)).get_content()

        # Replies in three clients' styles, quoted history in Spanish, English and French.
        claire = _only(smtp_server.messages_to(CLAIRE))
        for raw in (_gmail_spanish(maria), _outlook_english(tom), _apple_french(claire)):
            dovecot.deliver(raw)
        gone = _only(smtp_server.messages_to(GONE))
        dovecot.deliver(_bounce(gone, GONE))
        assert await live.gw.channel("email").poll_once() == 4
        assert dovecot.message_count(query="UNSEEN") == 0
        assert await live.gw.channel("email").poll_once() == 0  # a re-poll reads nothing again

        records = await live.inbound()
        assert [r.classification for r in records] == ["rsvp", "rsvp", "rsvp"]
        assert [r.text.splitlines()[0] for r in records] == [
            "Sí, ahí estaremos",
            "No, sorry, we have a family dinner that night.",
            "Oui",
        ]
        for record in records:  # quoted history and attribution lines are gone
            assert not any(w in record.text for w in (">", "escribió", "a écrit", "From:", "Responda"))
        results = (await live.run("survey", "results", "rsvp-math-night", "--format", "json")).json()
        answers = results["questions"][0]
        assert answers["answers"] == {"yes": 2, "no": 1}
        assert answers["by_language"] == {"en": {"no": 1}, "es": {"yes": 1}, "fr": {"yes": 1}}

        # The bounce: message failed, address invalid.
        rows = {r.address: r for r in await live.outbox(broadcast_id=sent["broadcast_id"])}
        assert rows[GONE].status == "failed" and rows[GONE].error_code == "5.1.1"
        assert (await live.state("email", GONE, "email")).invalid

        # RFC 8058: a prefetching GET changes nothing, a forged token is refused, the POST opts out.
        claire_token = rows[CLAIRE].reply_token
        status, page = await _http(live, "GET", f"/unsubscribe/{claire_token}")
        assert status == 200 and "<form method='post'" in page
        endpoint = await live.endpoint("email", CLAIRE)
        assert endpoint is not None and not endpoint.opted_out
        forged = await _http(live, "POST", "/unsubscribe/" + "A" * len(claire_token))
        malformed = await _http(live, "POST", "/unsubscribe/x")
        assert forged[0] == malformed[0] == 404 and forged[1] == malformed[1]
        status, _ = await _http(live, "POST", f"/unsubscribe/{claire_token}")
        assert status == 200
        assert (await live.state("email", CLAIRE, "email")).opted_out

        # After the RSVP confirmations, a new survey reaches Maria, Tom and Fatima only.
        await live.drain()
        before = len(smtp_server.messages)
        survey = (await live.run("survey", "send", str(write_survey(tmp_path)), "--json")).json()
        await live.drain()
        new = sorted(r for m in smtp_server.messages[before:] for r in m.rcpt_tos)
        assert new == sorted([MARIA, TOM, FATIMA])
        assert survey["messages"] == 3
        assert {s["family_id"] for s in survey["skipped"]} == {"E3", "E5", "E6"}
