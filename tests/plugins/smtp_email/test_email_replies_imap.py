"""Reading replies, unsubscribes and bounces from a real Dovecot IMAP mailbox."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from email_helpers import FROM_ADDRESS, REPLY_DOMAIN

from gateway.testing.dovecot import DovecotServer
from gateway.testing.waiting import wait_for

ORIGINAL_ID = f"<gw41.email@{REPLY_DOMAIN}>"
QUOTED_BODY = "Dear family,\nThe parent conference is on Thursday.\nReply 1 for yes, 2 for no."


def reply_mail(
    text: str,
    *,
    sender: str = "Amina Yusuf <Amina.Yusuf@Families.Example>",
    to: str = f"reply+tok123@{REPLY_DOMAIN}",
    html: str | None = None,
    message_id: str | None = None,
    **headers: str,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = "Re: Parent conference"
    mail["Message-ID"] = message_id or make_msgid(domain="families.example")
    mail["In-Reply-To"] = ORIGINAL_ID
    mail["References"] = f"<earlier@{REPLY_DOMAIN}> {ORIGINAL_ID}"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    return mail.as_bytes()


def quoted(body: str = QUOTED_BODY, prefix: str = "> ") -> str:
    return "\n".join(prefix + line for line in body.split("\n"))


REPLY_STYLES = {
    "gmail": (
        "Yes, two of us will come.\n\n"
        "On Tue, Mar 4, 2027 at 5:30 PM Mr. Okafor <liaison@district.example> wrote:\n\n"
        + quoted()
    ),
    "outlook": (
        "Yes, I will be there.\n\n"
        "Thanks,\nJohn Baker\n\n"
        "From: Mr. Okafor <liaison@district.example>\n"
        "Sent: Tuesday, March 4, 2027 5:30 PM\n"
        "To: John Baker <john@families.example>\n"
        "Subject: Parent conference\n\n" + QUOTED_BODY
    ),
    "outlook_original_message": (
        "Yes, I will be there.\n\n"
        "-----Original Message-----\n"
        "From: Mr. Okafor <liaison@district.example>\n"
        "Sent: Tuesday, March 4, 2027 5:30 PM\n"
        "Subject: Parent conference\n\n" + QUOTED_BODY
    ),
    "apple_mail": (
        "1\n\nSent from my iPhone\n\n"
        "> On 4 Mar 2027, at 17:30, Mr. Okafor <liaison@district.example> wrote:\n>\n"
        + quoted()
    ),
    "spanish": (
        "Sí, vamos a ir los dos.\n\n"
        "El mar, 4 mar 2027 a las 17:30, Mr. Okafor (<liaison@district.example>) escribió:\n"
        + quoted("Estimada familia,\nLa reunión es el jueves.")
    ),
    "french": (
        "Oui, nous serons là.\n\n"
        "Le mar. 4 mars 2027 à 17:30, Mr. Okafor <liaison@district.example> a écrit :\n"
        + quoted("Chère famille,\nLa réunion est jeudi.")
    ),
    "german": (
        "Ja, wir kommen gerne.\n\n"
        "Am Di., 4. März 2027 um 17:30 Uhr schrieb Mr. Okafor <liaison@district.example>:\n"
        + quoted("Liebe Familie,\ndie Konferenz ist am Donnerstag.")
    ),
}

EXPECTED_TEXT = {
    "gmail": "Yes, two of us will come.",
    "outlook": "Yes, I will be there.",
    "outlook_original_message": "Yes, I will be there.",
    "apple_mail": "1",
    "spanish": "Sí, vamos a ir los dos.",
    "french": "Oui, nous serons là.",
    "german": "Ja, wir kommen gerne.",
}


@pytest.mark.parametrize("style", sorted(REPLY_STYLES))
async def test_reply_style_yields_only_the_new_text(
    style, make_channel, dovecot: DovecotServer, context
) -> None:
    dovecot.deliver(reply_mail(REPLY_STYLES[style], message_id="<r1@families.example>"))
    channel = make_channel(dovecot)

    assert await channel.poll_once() == 1

    [inbound] = context.received
    assert inbound.text == EXPECTED_TEXT[style]
    assert inbound.reply_token == "tok123"
    assert inbound.sender == "amina.yusuf@families.example"
    assert inbound.provider_message_id == "<r1@families.example>"
    assert inbound.provider_in_reply_to == (ORIGINAL_ID, f"<earlier@{REPLY_DOMAIN}>")
    assert inbound.channel == "email"
    # flagged \Seen on the server, so a second poll (or a restart) hands nothing new
    assert dovecot.message_count(query="UNSEEN") == 0
    assert await channel.poll_once() == 0
    assert len(context.received) == 1


async def test_html_only_gmail_reply_drops_the_quote(make_channel, dovecot, context) -> None:
    html = (
        '<div dir="ltr">Haa, <b>waan</b> imanayaa &amp; mahadsanid</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Mar 4, 2027 at '
        "5:30 PM Mr. Okafor &lt;liaison@district.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Dear family</blockquote></div>'
    )
    mail = EmailMessage()
    mail["From"] = "hodan@families.example"
    mail["To"] = f"Lincoln <reply+tokHTML@{REPLY_DOMAIN}>"
    mail["Subject"] = "Re: x"
    mail["Message-ID"] = "<html1@families.example>"
    mail.set_content(html, subtype="html")
    dovecot.deliver(mail.as_bytes())

    await make_channel(dovecot).poll_once()
    [inbound] = context.received
    assert inbound.text == "Haa, waan imanayaa & mahadsanid"
    assert inbound.reply_token == "tokHTML"


async def test_token_is_found_in_delivered_to_when_to_is_rewritten(
    make_channel, dovecot, context
) -> None:
    dovecot.deliver(
        reply_mail(
            "2",
            to="Lincoln Elementary <liaison@district.example>",
            Delivered_To=f"reply+tokDT@{REPLY_DOMAIN}",
        )
    )
    await make_channel(dovecot).poll_once()
    assert context.received[0].reply_token == "tokDT"


async def test_reply_without_token_still_arrives(make_channel, dovecot, context) -> None:
    dovecot.deliver(reply_mail("yes", to=FROM_ADDRESS))
    await make_channel(dovecot).poll_once()
    [inbound] = context.received
    assert inbound.reply_token is None
    assert inbound.text == "yes"


async def test_unsubscribe_mail_becomes_stop_with_the_token(make_channel, dovecot, context) -> None:
    mail = EmailMessage()
    mail["From"] = "Parent <Parent@Families.example>"
    mail["To"] = f"unsubscribe+tok999@{REPLY_DOMAIN}"
    mail["Subject"] = "Unsubscribe"
    mail["Message-ID"] = "<unsub1@families.example>"
    mail.set_content("This message was automatically generated by Gmail.")
    dovecot.deliver(mail.as_bytes())

    await make_channel(dovecot).poll_once()
    [inbound] = context.received
    assert inbound.text == "STOP"
    assert inbound.reply_token == "tok999"
    assert inbound.sender == "parent@families.example"


def delivery_status_notification(status: str, diagnostic: str, action: str = "failed") -> bytes:
    failed = "gone@families.example"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.district.example>\r\n"
        f"To: {FROM_ADDRESS}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.district.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r\n'
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--BOUND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.district.example\r\n"
        "Arrival-Date: Tue, 4 Mar 2027 17:30:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\n"
        f"Original-Recipient: rfc822;{failed}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.families.example\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        "--BOUND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: Lincoln Elementary <{FROM_ADDRESS}>\r\n"
        f"To: {failed}\r\n"
        "Subject: Parent conference\r\n"
        f"Message-ID: {ORIGINAL_ID}\r\n\r\n"
        "--BOUND--\r\n"
    ).encode()


async def test_hard_bounce_fails_the_original_message_and_marks_the_address(
    make_channel, dovecot, context
) -> None:
    dovecot.deliver(
        delivery_status_notification("5.1.1", "550 5.1.1 <gone@families.example>: User unknown")
    )
    channel = make_channel(dovecot)
    assert await channel.poll_once() == 1

    assert context.received == []  # a bounce is not a reply
    [update] = context.statuses
    assert update.status == "failed"
    assert update.provider_message_id == ORIGINAL_ID
    assert update.error_code == "5.1.1"
    assert update.endpoint_state == "invalid"
    assert "User unknown" in (update.error_reason or "")
    assert update.channel == "email"
    assert await channel.poll_once() == 0


async def test_soft_bounce_fails_without_marking_and_delay_is_ignored(
    make_channel, dovecot, context
) -> None:
    dovecot.deliver(delivery_status_notification("5.2.2", "552 5.2.2 Mailbox full"))
    dovecot.deliver(delivery_status_notification("4.4.1", "Connection timed out", "delayed"))
    await make_channel(dovecot).poll_once()
    [update] = context.statuses
    assert update.error_code == "5.2.2"
    assert update.endpoint_state is None
    assert dovecot.message_count(query="UNSEEN") == 0


async def test_auto_replies_and_own_mail_are_not_replies(make_channel, dovecot, context) -> None:
    dovecot.deliver(reply_mail("I am out of the office until Monday.", Auto_Submitted="auto-replied"))
    dovecot.deliver(reply_mail("loop", sender=FROM_ADDRESS))
    await make_channel(dovecot).poll_once()
    assert context.received == []
    assert dovecot.message_count(query="UNSEEN") == 0


async def test_processed_folder_receives_handled_mail(make_channel, dovecot, context) -> None:
    dovecot.deliver(reply_mail("1"))
    channel = make_channel(dovecot, imap={"processed_folder": "Processed"})
    assert await channel.poll_once() == 1
    assert dovecot.message_count("INBOX") == 0
    assert dovecot.message_count("Processed") == 1
    assert await channel.poll_once() == 0


async def test_mail_stays_unseen_when_the_core_fails(make_channel, dovecot, context) -> None:
    dovecot.deliver(reply_mail("1"))
    calls = 0
    original = context.receive

    async def failing_once(message):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database unavailable")
        return await original(message)

    context.receive = failing_once  # type: ignore[method-assign]
    channel = make_channel(dovecot)
    assert await channel.poll_once() == 0
    assert dovecot.message_count(query="UNSEEN") == 1
    assert await channel.poll_once() == 1
    assert [m.text for m in context.received] == ["1"]


async def _wait_for(predicate, within: float = 30.0) -> None:
    await wait_for(predicate, deadline=within)


@pytest.mark.parametrize("idle", [True, False])
async def test_background_reader_picks_up_new_mail(
    idle, make_channel, dovecot, context
) -> None:
    channel = make_channel(dovecot, imap={"idle": idle, "poll_seconds": 20 if idle else 0.3})
    await channel.start()
    assert channel.reader is not None
    reader = channel.reader
    # the reader is connected (and idling) before mail arrives
    await _wait_for(reader.idling.is_set if idle else (lambda: reader.connected))
    dovecot.deliver(reply_mail("1", message_id="<bg1@families.example>"))
    # with IDLE the server pushes the news long before the 20 s poll interval
    await _wait_for(lambda: len(context.received) == 1, within=8)
    if idle:
        assert channel.reader.supports_idle
    await channel.stop()
    assert context.received[0].provider_message_id == "<bg1@families.example>"


async def test_reader_survives_a_server_restart(make_channel, dovecot, context) -> None:
    channel = make_channel(dovecot, imap={"idle": False, "poll_seconds": 0.2})
    await channel.start()
    assert channel.reader is not None
    reader = channel.reader
    await _wait_for(lambda: reader.connected)
    dovecot.stop()
    await _wait_for(lambda: not reader.connected)  # the next poll found the server gone
    dovecot.start()
    dovecot.deliver(reply_mail("2", message_id="<after-restart@families.example>"))
    await _wait_for(lambda: len(context.received) == 1, within=15)
    await channel.stop()
