"""Focused tests: quote stripping, HTML to text, DSN parsing, settings, error mapping, logs."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy

import pytest
from email_helpers import FROM_ADDRESS, REPLY_DOMAIN, outbound, settings_for
from gateway_plugins.smtp_email.bounces import is_delivery_report, parse_delivery_report
from gateway_plugins.smtp_email.composer import make_message_id
from gateway_plugins.smtp_email.inbound_mail import (
    BounceMail,
    IgnoredMail,
    ReplyMail,
    parse_incoming_mail,
)
from gateway_plugins.smtp_email.reply_text import html_to_text, latest_reply_text
from gateway_plugins.smtp_email.smtp_pool import error_for_reply, is_bad_mailbox
from pydantic import ValidationError

from gateway import PermanentSendError, RetryableSendError

# -- quote stripping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Gmail wraps a long attribution line
        (
            "Yes.\n\nOn Tue, Mar 4, 2027 at 5:30 PM Mr. Okafor <\nliaison@district.example> "
            "wrote:\n\n> Dear family",
            "Yes.",
        ),
        # Spanish with a single space before "escribió:" (mail-parser-reply alone misses it)
        ("Sí.\n\nEl mar, 4 mar 2027 a las 17:30, Okafor <l@d.example> escribió:\n> Hola", "Sí."),
        # signature after "-- " is dropped
        ("Count me in.\n\n-- \nFatima Ali\n555-0100", "Count me in."),
        # hyphen lists are an answer, not a signature
        ("- yes\n- two children", "- yes\n- two children"),
        # German greeting signature
        ("Ja, gerne.\n\nViele Grüße\nKlaus", "Ja, gerne."),
        # French "Envoyé de mon iPhone"-style reply header of Outlook in French
        (
            "Oui.\n\nDe : Mr. Okafor <l@d.example>\nEnvoyé : mardi 4 mars 2027 17:30\n"
            "À : Famille\nObjet : Réunion\n\nChère famille",
            "Oui.",
        ),
        # no quote at all: untouched
        ("2", "2"),
        # Windows line ends
        ("1\r\n\r\nOn Tue, Mar 4, 2027 Okafor wrote:\r\n> x", "1"),
    ],
)
def test_latest_reply_text(body: str, expected: str) -> None:
    assert latest_reply_text(body) == expected


def test_bottom_posted_and_interleaved_answers_keep_only_the_family_lines() -> None:
    assert latest_reply_text("> Reply 1 or 2\n1") == "1"
    assert latest_reply_text("On Tue, Okafor wrote:\n> Reply 1 or 2\n\n2") == "2"
    assert latest_reply_text("> Coming?\nyes\n> How many?\nthree") == "yes\nthree"


def test_html_to_text_keeps_blocks_and_drops_quotes_and_scripts() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>t</title></head><body>"
        "<p>Line&nbsp;one</p><div>Line <i>two</i><br>three</div>"
        "<script>alert(1)</script><blockquote type='cite'>old text</blockquote>"
        "<div class='yahoo_quoted'>older</div></body></html>"
    )
    assert html_to_text(html) == "Line one\n\nLine two\nthree"


# -- incoming mail classification ----------------------------------------------------------


def _parse(raw: bytes):
    return parse_incoming_mail(
        raw,
        channel="email",
        reply_domain=REPLY_DOMAIN,
        own_addresses=frozenset({FROM_ADDRESS}),
    )


def test_reply_token_must_be_on_our_domain() -> None:
    raw = (
        b"From: a@families.example\r\nTo: reply+stolen@elsewhere.example\r\n"
        b"Message-ID: <m1@f.example>\r\n\r\nyes\r\n"
    )
    parsed = _parse(raw)
    assert isinstance(parsed, ReplyMail)
    assert parsed.message.reply_token is None


def test_mail_without_message_id_gets_a_stable_id() -> None:
    raw = b"From: a@families.example\r\nTo: reply+t1@" + REPLY_DOMAIN.encode() + b"\r\n\r\nyes\r\n"
    first, second = _parse(raw), _parse(raw)
    assert isinstance(first, ReplyMail) and isinstance(second, ReplyMail)
    assert first.message.provider_message_id == second.message.provider_message_id
    assert first.message.provider_message_id.startswith("<")


def test_non_standard_bounce_from_mailer_daemon_is_ignored() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: liaison@district.example\r\n"
        b"Subject: failure notice\r\n\r\nSorry, I couldn't deliver.\r\n"
    )
    assert isinstance(_parse(raw), IgnoredMail)


def test_dsn_with_full_original_message_attached() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: liaison@district.example\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type="delivery-status"; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; <Who@Families.Example>\r\nAction: failed\r\n"
        b"Status: 5.0.0\r\nDiagnostic-Code: smtp; 550 5.1.2 Host unknown\r\n\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: liaison@district.example\r\nMessage-ID: <gw9.email@replies.district.example>\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
        b"--b--\r\n"
    )
    mail = message_from_bytes(raw, policy=policy.default)
    assert is_delivery_report(mail)
    report = parse_delivery_report(mail)
    assert report.original_message_id == "<gw9.email@replies.district.example>"
    [recipient] = report.recipients
    assert recipient.address == "who@families.example"
    assert recipient.status == "5.0.0"
    parsed = _parse(raw)
    assert isinstance(parsed, BounceMail)
    assert parsed.updates[0].status == "failed"
    assert parsed.updates[0].endpoint_state is None  # 5.0.0 does not say the address is bad


# -- sending helpers -----------------------------------------------------------------------


def test_message_id_is_deterministic_and_safe() -> None:
    assert make_message_id(5, "E Mail!", "District.Example") == "<gw5.e-mail@district.example>"
    assert make_message_id(5, "email", "d.example") == make_message_id(5, "email", "d.example")


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind", "state"),
    [
        (451, "4.3.0 try later", "RCPT", RetryableSendError, None),
        (421, "4.4.2 closing", "MAIL", RetryableSendError, None),
        (550, "5.1.1 User unknown", "RCPT", PermanentSendError, "invalid"),
        (550, "Requested action not taken: mailbox unavailable", "RCPT", PermanentSendError,
         "invalid"),
        (552, "5.2.2 Mailbox full", "RCPT", PermanentSendError, None),
        (554, "5.7.1 Message rejected as spam", "DATA", PermanentSendError, None),
        (550, "5.1.1 sender unknown", "MAIL", PermanentSendError, None),
    ],
)
def test_smtp_reply_mapping(code, text, stage, kind, state) -> None:
    error = error_for_reply(code, text, stage)
    assert type(error) is kind
    assert error.code == str(code)
    assert error.endpoint_state == state


def test_is_bad_mailbox() -> None:
    assert is_bad_mailbox(550, "5.1.1 no such user")
    assert is_bad_mailbox(550, "5.2.1 mailbox disabled")
    assert not is_bad_mailbox(450, "4.1.1 try later")
    assert not is_bad_mailbox(550, "5.7.1 blocked")


# -- settings ------------------------------------------------------------------------------


def test_settings_refuse_unknown_keys_and_conflicting_tls() -> None:
    with pytest.raises(ValidationError, match="smtp.sttarttls"):
        settings_for(2525, smtp={"sttarttls": True})
    with pytest.raises(ValidationError, match="exclude each other"):
        settings_for(2525, smtp={"tls": True, "starttls": True})
    with pytest.raises(ValidationError):
        settings_for(2525, smtp={"from_address": "evil@x.example\r\nBcc: a@b.example"})


def test_settings_defaults_and_secret() -> None:
    settings = settings_for(2525, smtp={"password": "hunter2", "reply_domain": None})
    assert settings.smtp.pool_size == 2
    assert settings.smtp.effective_reply_domain == "district.example"
    assert "hunter2" not in repr(settings)
    assert settings.imap is None


# -- logs ----------------------------------------------------------------------------------


async def test_logs_never_carry_full_addresses_or_bodies(
    make_channel, smtp_server, dovecot, context, caplog
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="gateway.test")  # our own lines, even at DEBUG
    smtp_server.refuse("secret.parent@families.example")
    channel = make_channel(dovecot)
    with pytest.raises(PermanentSendError):
        await channel.send(outbound(1, address="secret.parent@families.example"))
    await channel.send(outbound(2, address="other.parent@families.example"))
    dovecot.deliver(
        b"From: secret.parent@families.example\r\nTo: reply+t@" + REPLY_DOMAIN.encode()
        + b"\r\nMessage-ID: <l1@f.example>\r\n\r\nMy private answer\r\n"
    )
    await channel.poll_once()
    assert context.received
    text = caplog.text
    assert "secret.parent@families.example" not in text
    assert "other.parent@families.example" not in text
    assert "My private answer" not in text
    assert "Fadlan ka jawaab" not in text
