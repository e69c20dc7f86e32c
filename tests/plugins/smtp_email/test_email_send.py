"""Sending e-mail through the smtp_email channel to a real (recording) SMTP server."""

from __future__ import annotations

import asyncio

import pytest
from email_helpers import FROM_ADDRESS, REPLY_DOMAIN, outbound
from gateway_plugins.smtp_email import SmtpEmailChannel, gateway_channel_types

from gateway import EMAIL, DeliveryUnknownError, PermanentSendError, RetryableSendError
from gateway.testing import FakeChannelContext, free_port
from gateway.testing.smtp_server import RecordingSmtpServer


def _squash(value: object) -> str:
    return "".join(str(value).split())


async def test_multipart_message_carries_every_header(make_channel, smtp_server) -> None:
    channel = make_channel()
    result = await channel.send(outbound(42))

    [mail] = smtp_server.messages
    assert mail.mail_from == FROM_ADDRESS
    assert mail.rcpt_tos == ("amina.yusuf@families.example",)
    msg = mail.message
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Fadlan ka jawaab 1 ama 2."
    assert html.get_content_type() == "text/html"
    assert 'lang="so" dir="ltr"' in html.get_content()
    assert msg["Subject"] == "Shirka waalidka"
    assert msg["To"] == "amina.yusuf@families.example"
    assert msg["From"].addresses[0].addr_spec == FROM_ADDRESS
    assert msg["From"].addresses[0].display_name == "Lincoln Elementary"
    assert msg["Reply-To"] == f"reply+tok123@{REPLY_DOMAIN}"
    assert _squash(msg["List-Unsubscribe"]) == (
        f"<https://gateway.example.org/u/tok123>,<mailto:unsubscribe+tok123@{REPLY_DOMAIN}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Content-Language"] == "so"
    assert result.provider_message_id == msg["Message-ID"]
    assert result.provider_message_id.startswith("<") and REPLY_DOMAIN in result.provider_message_id


async def test_message_id_is_the_same_on_retry_and_differs_per_message(
    make_channel, smtp_server
) -> None:
    channel = make_channel()
    first = await channel.send(outbound(7))
    retry = await channel.send(outbound(7, attempt=2))
    other = await channel.send(outbound(8))

    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert ids[0] == ids[1] == first.provider_message_id == retry.provider_message_id
    assert ids[2] == other.provider_message_id != ids[0]


async def test_html_part_is_passed_through_untouched(make_channel, smtp_server) -> None:
    # The renderer already escaped the family name; the channel must neither re-escape nor alter.
    html = (
        '<html lang="ar" dir="rtl"><body><p>مرحبا Tom &lt;script&gt; Baker &amp; family</p>'
        '<a href="https://x.example/?a=1&amp;b=2">رابط</a></body></html>'
    )
    await make_channel().send(
        outbound(1, language="ar", html=html, body="مرحبا Tom <script> Baker", subject="اجتماع")
    )
    msg = smtp_server.messages[0].message
    plain, html_part = msg.get_payload()
    assert html_part.get_content().rstrip("\r\n") == html
    assert plain.get_content().rstrip("\r\n") == "مرحبا Tom <script> Baker"
    assert msg["Subject"] == "اجتماع"
    assert msg["Content-Language"] == "ar"
    # 7-bit transfer encoding on the wire, so any relay accepts it
    assert all(byte < 128 for byte in smtp_server.messages[0].raw)


async def test_without_html_or_token_it_is_plain_text_without_reply_headers(
    make_channel, smtp_server
) -> None:
    await make_channel().send(outbound(3, html=None, reply_token=None, unsubscribe_url=None))
    msg = smtp_server.messages[0].message
    assert msg.get_content_type() == "text/plain"
    assert msg["Reply-To"] is None
    assert msg["List-Unsubscribe"] is None
    assert msg["List-Unsubscribe-Post"] is None


async def test_unsubscribe_url_without_token_has_only_the_https_link(
    make_channel, smtp_server
) -> None:
    await make_channel().send(outbound(4, reply_token=None))
    msg = smtp_server.messages[0].message
    assert _squash(msg["List-Unsubscribe"]) == "<https://gateway.example.org/u/tok123>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_many_concurrent_sends_share_pool_size_connections(
    make_channel, smtp_server
) -> None:
    channel = make_channel(smtp={"pool_size": 2})
    results = await asyncio.gather(
        *(channel.send(outbound(i, address=f"parent{i}@families.example")) for i in range(60))
    )
    assert len(smtp_server.messages) == 60
    assert {r.provider_message_id for r in results} == {
        m.message["Message-ID"] for m in smtp_server.messages
    }
    assert 1 <= smtp_server.connection_count <= 2


async def test_451_deferral_is_retryable(make_channel, smtp_server) -> None:
    smtp_server.defer("later@families.example")
    with pytest.raises(RetryableSendError) as caught:
        await make_channel().send(outbound(1, address="later@families.example"))
    assert caught.value.code == "451"
    assert caught.value.retryable
    assert smtp_server.messages == []


async def test_550_unknown_mailbox_is_permanent_and_others_still_go_out(
    make_channel, smtp_server
) -> None:
    smtp_server.refuse("nobody@families.example", 550, "5.1.1 <nobody@families.example>: User unknown")
    channel = make_channel(smtp={"pool_size": 1})
    await channel.send(outbound(1, address="first@families.example"))
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(2, address="nobody@families.example"))
    await channel.send(outbound(3, address="after@families.example"))

    assert caught.value.code == "550"
    assert caught.value.endpoint_state == "invalid"
    assert not caught.value.retryable
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ("first@families.example",),
        ("after@families.example",),
    ]
    assert smtp_server.connection_count == 1  # the refusal did not cost the connection


async def test_policy_rejection_is_permanent_without_marking_the_address(
    make_channel, smtp_server
) -> None:
    smtp_server.refuse("blocked@families.example", 554, "5.7.1 Relay access denied")
    with pytest.raises(PermanentSendError) as caught:
        await make_channel().send(outbound(1, address="blocked@families.example"))
    assert caught.value.code == "554"
    assert caught.value.endpoint_state is None


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Meeting\r\nBcc: victim@example.com"},
        {"subject": "Meeting\nBcc: victim@example.com"},
        {"reply_token": "tok\r\nBcc: victim@example.com"},
        {"address": "a@families.example\r\nBcc: victim@example.com"},
        {"unsubscribe_url": "https://x.example/u\r\nBcc: victim@example.com"},
        {"language": "en\nBcc: victim@example.com"},
    ],
)
async def test_header_injection_is_refused_and_nothing_is_sent(
    make_channel, smtp_server, fields
) -> None:
    with pytest.raises(PermanentSendError):
        await make_channel().send(outbound(1, **fields))
    assert smtp_server.messages == []
    assert smtp_server.connection_count == 0


async def test_malformed_address_is_permanent_and_invalid(make_channel, smtp_server) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await make_channel().send(outbound(1, address="not-an-address"))
    assert caught.value.endpoint_state == "invalid"
    assert smtp_server.messages == []


async def test_reconnects_after_the_server_dropped_the_connection(
    make_channel, smtp_server
) -> None:
    channel = make_channel(smtp={"pool_size": 1})
    await channel.send(outbound(1))
    smtp_server.drop_connections()
    await asyncio.sleep(0.05)
    await channel.send(outbound(2))
    assert len(smtp_server.messages) == 2
    assert smtp_server.connection_count == 2


async def test_unreachable_server_is_retryable(context: FakeChannelContext) -> None:
    from email_helpers import settings_for

    channel = SmtpEmailChannel("email", settings_for(free_port()), context)
    try:
        with pytest.raises(RetryableSendError) as caught:
            await channel.send(outbound(1))
        assert caught.value.code == "connect"
    finally:
        await channel.stop()


async def test_server_vanishing_mid_data_is_delivery_unknown(
    make_channel, smtp_server, monkeypatch
) -> None:
    channel = make_channel(smtp={"pool_size": 1})
    await channel.send(outbound(1))
    client = channel.pool._slots[0].client
    assert client is not None

    async def hang_up(*_args, **_kwargs):
        client.close()
        raise ConnectionResetError("peer went away")

    monkeypatch.setattr(client, "data", hang_up)
    with pytest.raises(DeliveryUnknownError):
        await channel.send(outbound(2))
    monkeypatch.undo()
    await channel.send(outbound(3))  # a fresh connection replaces the broken one
    assert [m.message["Message-ID"] for m in smtp_server.messages][-1].startswith("<gw3.")


async def test_stop_quits_every_connection(make_channel, smtp_server) -> None:
    channel = make_channel(smtp={"pool_size": 2})
    await asyncio.gather(*(channel.send(outbound(i)) for i in range(4)))
    await channel.stop()
    for _ in range(50):
        if smtp_server.open_connections == 0:
            break
        await asyncio.sleep(0.02)
    assert smtp_server.open_connections == 0


def test_plugin_hook_offers_the_channel() -> None:
    assert gateway_channel_types() == [SmtpEmailChannel]
    assert SmtpEmailChannel.plugin == "smtp_email"
    assert SmtpEmailChannel.declared_kind() == "email" and SmtpEmailChannel.address_kind is EMAIL


def test_recording_server_can_be_restarted_cleanly() -> None:
    server = RecordingSmtpServer().start()
    try:
        assert server.connection_count == 0
    finally:
        server.stop()
