"""The built-in channels' adapters to the conformance suite (:mod:`gateway.testing.conformance`):
how each one's local provider is made to throttle, refuse, lose an answer, and deliver replies,
button taps, forgeries and opt-outs. A unique module name on purpose (tests import it by name)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_plugins.sandbox import SandboxChannel, SandboxSettings, read_outbox
from gateway_plugins.smtp_email import SmtpEmailChannel, SmtpEmailSettings
from gateway_plugins.telegram import TelegramChannel
from gateway_plugins.twilio_sms import TwilioSmsChannel, TwilioSmsSettings
from gateway_plugins.whatsapp import WhatsAppChannel, WhatsAppSettings

from gateway import Channel
from gateway.testing.conformance import ChannelAdapter, ConformanceContext, NotApplicable
from gateway.testing.dovecot import DovecotServer
from gateway.testing.smtp_server import RecordingSmtpServer
from gateway.testing.telegram_server import ScriptedReply, TelegramBotAPIServer
from gateway.testing.twilio_server import (
    FakeTwilioServer,
    inbound_sms_form,
    sign_twilio_request,
    whatsapp_inbound_form,
)

__all__ = [
    "EmailAdapter",
    "SandboxAdapter",
    "TelegramAdapter",
    "TwilioSmsAdapter",
    "WhatsAppAdapter",
]

PUBLIC = "https://gateway.example.org"
PHONE = "+18165550199"
SENDER = "+18165550100"
#: Seconds a channel waits for its provider in the "lost answer" case (whole seconds: the
#: Telegram plugin hands aiogram an int)...
SHORT_TIMEOUT = 1
#: ...and in every other case: a busy machine must not turn a slow local answer into a failure.
TIMEOUT = 30
#: How long the provider holds a lost answer (well past the short timeout).
HOLD = 5.0


async def _mount(channel: Channel) -> TestClient:
    """The channel's webhooks on a local server, mounted as the core mounts them."""
    app = web.Application(client_max_size=1024 * 1024)
    for action, handler in channel.webhooks().items():
        app.router.add_post(f"/webhooks/{channel.name}/{action}", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


class SandboxAdapter(ChannelAdapter):
    """The sandbox: no provider, so nothing can fail and nothing comes back through it."""

    address = PHONE

    def __init__(self, folder: Path) -> None:
        self.context = ConformanceContext(name="sms", data_dir=folder)
        self.folder = folder / "outbox"
        self._channel: SandboxChannel | None = None

    async def channel(self) -> Channel:
        if self._channel is None:
            settings = SandboxSettings(plugin="sandbox", endpoint="phone", echo=False,
                                       outbox_dir=self.folder)
            self._channel = SandboxChannel("sms", settings, self.context)
            await self._channel.start()
        return self._channel

    async def provider_texts(self) -> list[str]:
        return [m["body"] for m in read_outbox(self.folder) if m["address"] == self.address]

    no_provider = "the sandbox has no provider: every message is accepted"

    async def throttle_next(self, retry_after: float) -> None:
        raise NotApplicable(self.no_provider)

    async def refuse_recipient(self) -> None:
        raise NotApplicable(self.no_provider)

    async def lose_next_answer(self) -> None:
        raise NotApplicable(self.no_provider)

    async def reply(self, text: str, provider_id: str) -> bool:
        raise NotApplicable("sandbox replies are injected by the core (gateway sandbox reply), "
                            "not through the channel")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.stop()


class _TwilioAdapter(ChannelAdapter):
    """Shared by SMS and WhatsApp: the local Twilio server and the channel's signed webhooks."""

    address = PHONE
    inbound_path: str

    def __init__(self, twilio: FakeTwilioServer, name: str) -> None:
        self.twilio = twilio
        self.context = ConformanceContext(name=name, public_base_url=PUBLIC)
        self.timeout: float = TIMEOUT
        self._channel: Channel | None = None
        self._client: TestClient | None = None

    def settings(self) -> dict[str, Any]:
        return {"account_sid": self.twilio.account_sid, "auth_token": self.twilio.auth_token,
                "api_base_url": self.twilio.url, "timeout": self.timeout}

    def build(self) -> Channel:
        raise NotImplementedError

    async def channel(self) -> Channel:
        if self._channel is None:
            self._channel = self.build()
            await self._channel.start()
            self._client = await _mount(self._channel)
        return self._channel

    @property
    def via(self) -> str:
        assert self._client is not None
        return str(self._client.make_url("/"))

    async def throttle_next(self, retry_after: float) -> None:
        self.twilio.fail_next(429, 20429, retry_after=retry_after)

    async def lose_next_answer(self) -> None:
        self.timeout = SHORT_TIMEOUT
        self.twilio.lose_answer_next(HOLD)

    def inbound_form(self, text: str, provider_id: str, **extra: Any) -> dict[str, str]:
        raise NotImplementedError

    async def _post(self, form: dict[str, str]) -> bool:
        status = await self.twilio.post_signed(PUBLIC + self.inbound_path, form, self.via)
        return 200 <= status < 300

    async def reply(self, text: str, provider_id: str) -> bool:
        return await self._post(self.inbound_form(text, provider_id))

    async def forge(self, text: str, provider_id: str) -> bool:
        form = self.inbound_form(text, provider_id)
        signature = sign_twilio_request("0" * 32, PUBLIC + self.inbound_path, form)
        assert self._client is not None
        response = await self._client.post(self.inbound_path, data=form,
                                           headers={"X-Twilio-Signature": signature})
        return 200 <= response.status < 300

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._channel is not None:
            await self._channel.stop()


class TwilioSmsAdapter(_TwilioAdapter):
    """``twilio_sms`` against the local Twilio server."""

    inbound_path = "/webhooks/sms/inbound"

    def __init__(self, twilio: FakeTwilioServer) -> None:
        super().__init__(twilio, "sms")

    def build(self) -> Channel:
        settings = TwilioSmsSettings.model_validate(
            {"plugin": "twilio_sms", "from_number": SENDER, **self.settings()}
        )
        return TwilioSmsChannel("sms", settings, self.context)

    async def provider_texts(self) -> list[str]:
        return [m.body for m in self.twilio.messages if m.to == self.address]

    async def refuse_recipient(self) -> None:
        self.twilio.fail_for(self.address, 400, 21211)

    def inbound_form(self, text: str, provider_id: str, **extra: Any) -> dict[str, str]:
        return inbound_sms_form(from_=self.address, to=SENDER, body=text,
                                account_sid=self.twilio.account_sid, message_sid=provider_id)

    async def tap_button(self, value: str, label: str, provider_id: str) -> bool:
        raise NotApplicable("SMS has no buttons: choices are numbered in the text")


class WhatsAppAdapter(_TwilioAdapter):
    """``whatsapp`` against the local Twilio server's WhatsApp sender, inside the window."""

    #: The ``whatsapp`` kind's form: what the core hands the channel and gets back.
    address = "whatsapp:" + PHONE
    inbound_path = "/webhooks/whatsapp/inbound"

    def __init__(self, twilio: FakeTwilioServer) -> None:
        super().__init__(twilio, "whatsapp")

    def build(self) -> Channel:
        settings = WhatsAppSettings.model_validate(
            {"plugin": "whatsapp", "from_number": "whatsapp:" + SENDER, **self.settings()}
        )
        return WhatsAppChannel("whatsapp", settings, self.context)

    async def prepare(self) -> None:
        """The family wrote an hour ago: the 24-hour window is open at Twilio and in the core."""
        self.twilio.open_whatsapp_window(self.address)
        self.context.inbound_times[self.address] = datetime.now(UTC)

    async def provider_texts(self) -> list[str]:
        return [m.body for m in self.twilio.messages if m.to == self.address]

    async def refuse_recipient(self) -> None:
        self.twilio.fail_for(self.address, 400, 63024)

    def inbound_form(self, text: str, provider_id: str, **extra: Any) -> dict[str, str]:
        return whatsapp_inbound_form(from_=PHONE, to=SENDER, body=text,
                                     account_sid=self.twilio.account_sid,
                                     message_sid=provider_id, **extra)

    async def tap_button(self, value: str, label: str, provider_id: str) -> bool:
        return await self._post(self.inbound_form(label, provider_id, button_payload=value,
                                                  button_text=label))


class TelegramAdapter(ChannelAdapter):
    """``telegram`` in webhook mode against the local Bot API server."""

    address = "5550004004"
    refused_endpoint_state = "opted_out"  # "bot was blocked by the user"
    reconciles = False  # the Bot API cannot be asked about a message whose answer was lost
    opt_out_marks_endpoint = True  # blocking the bot is Telegram's opt-out
    secret = "conformance_Webhook-secret"

    def __init__(self, server: TelegramBotAPIServer) -> None:
        self.server = server
        self.context = ConformanceContext(name="telegram", public_base_url=PUBLIC)
        self._channel: TelegramChannel | None = None
        self._client: TestClient | None = None
        self._updates: dict[str, dict[str, Any]] = {}
        self._message_ids = itertools.count(100)
        self.timeout = TIMEOUT

    async def channel(self) -> Channel:
        if self._channel is None:
            settings = TelegramChannel.Settings.model_validate({
                "plugin": "telegram", "token": self.server.token,
                "api_base_url": self.server.base_url, "mode": "webhook",
                "webhook_secret": self.secret, "request_timeout": self.timeout,
            })
            self._channel = TelegramChannel("telegram", settings, self.context)
            await self._channel.start()
            self._client = await _mount(self._channel)
        return self._channel

    async def provider_texts(self) -> list[str]:
        return [m.plain_text for m in self.server.sent.get(self.address, [])]

    async def throttle_next(self, retry_after: float) -> None:
        self.server.script(ScriptedReply(status=429, retry_after=int(retry_after),
                                         description=f"Too Many Requests: retry after "
                                         f"{int(retry_after)}"))

    async def refuse_recipient(self) -> None:
        self.server.fail_chat(self.address, "blocked")

    async def lose_next_answer(self) -> None:
        self.timeout = SHORT_TIMEOUT
        self.server.script(ScriptedReply(hold_answer=HOLD))

    async def _deliver(self, update: dict[str, Any], secret: str | None = None) -> bool:
        assert self._client is not None
        url = str(self._client.make_url("/webhooks/telegram/update"))
        status = await self.server.deliver_webhook(update, url=url, secret=secret or self.secret)
        return 200 <= status < 300

    async def reply(self, text: str, provider_id: str) -> bool:
        update = self._updates.get(provider_id)
        if update is None:  # a redelivery is the very same update
            update = self.server.text_message_update(self.address, text,
                                                     message_id=next(self._message_ids))
            self._updates[provider_id] = update
        return await self._deliver(update)

    async def tap_button(self, value: str, label: str, provider_id: str) -> bool:
        channel = await self.channel()
        sent = await channel.send(self.message("¿Vendrá?"))
        message_id = int(str(sent.provider_message_id).rsplit(":", 1)[-1])
        update = self.server.callback_query_update(self.address, message_id,
                                                   f"a:1:{value}")
        return await self._deliver(update)

    async def forge(self, text: str, provider_id: str) -> bool:
        update = self.server.text_message_update(self.address, text)
        return await self._deliver(update, secret="not-the-secret")

    async def opt_out(self, text: str, provider_id: str) -> bool:
        return await self._deliver(self.server.my_chat_member_update(self.address, "kicked"))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._channel is not None:
            await self._channel.stop()


class EmailAdapter(ChannelAdapter):
    """``smtp_email`` against a recording SMTP server; replies from a real Dovecot mailbox."""

    address = "amina.yusuf@families.example"
    reports_retry_after = False  # SMTP 4xx replies carry no retry-after
    reconciles = False  # SMTP cannot be asked whether a message was taken
    reply_domain = "replies.district.example"

    def __init__(self, smtp: RecordingSmtpServer, folder: Path) -> None:
        self.smtp = smtp
        self.folder = folder
        self.context = ConformanceContext(name="email")
        self._dovecot: DovecotServer | None = None
        self._channel: SmtpEmailChannel | None = None
        self.timeout: float = TIMEOUT

    def _settings(self) -> SmtpEmailSettings:
        raw: dict[str, Any] = {
            "plugin": "smtp_email",
            "smtp": {"host": "127.0.0.1", "port": self.smtp.port, "starttls": False,
                     "from_address": "liaison@district.example", "from_name": "Lincoln",
                     "reply_domain": self.reply_domain, "timeout": self.timeout},
        }
        if self._dovecot is not None:
            raw["imap"] = {"host": self._dovecot.host, "port": self._dovecot.port, "ssl": False,
                           "username": self._dovecot.user, "password": self._dovecot.password,
                           "poll_seconds": 60, "timeout": 5}
        return SmtpEmailSettings.model_validate(raw)

    async def channel(self) -> Channel:
        if self._channel is None:
            # Sends open SMTP connections on demand; IMAP is polled by the adapter, not a task.
            self._channel = SmtpEmailChannel("email", self._settings(), self.context)
        return self._channel

    async def _mailbox(self) -> SmtpEmailChannel:
        """The channel rebuilt with a Dovecot mailbox to read replies from."""
        if self._dovecot is None:
            self._dovecot = DovecotServer(self.folder / "dovecot").start()
            if self._channel is not None:
                await self._channel.stop()
            self._channel = SmtpEmailChannel("email", self._settings(), self.context)
        assert self._channel is not None
        return self._channel

    async def provider_texts(self) -> list[str]:
        texts = []
        for mail in self.smtp.messages_to(self.address):
            part = mail.message.get_body(("plain",))
            texts.append(part.get_content() if part is not None else "")
        return texts

    async def throttle_next(self, retry_after: float) -> None:
        self.smtp.defer(self.address)

    async def refuse_recipient(self) -> None:
        self.smtp.refuse(self.address)

    async def lose_next_answer(self) -> None:
        self.timeout = SHORT_TIMEOUT
        self.smtp.lose_answer_next(HOLD)

    async def _deliver(self, mail: EmailMessage) -> bool:
        channel = await self._mailbox()
        assert self._dovecot is not None
        self._dovecot.deliver(mail.as_bytes())
        return await channel.poll_once() >= 1

    def _mail(self, text: str, provider_id: str, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = f"Amina Yusuf <{self.address}>"
        mail["To"] = to
        mail["Subject"] = "Re: Taller de lectura"
        mail["Message-ID"] = f"<{provider_id}@families.example>"
        mail.set_content(text)
        return mail

    async def reply(self, text: str, provider_id: str) -> bool:
        return await self._deliver(self._mail(text, provider_id,
                                              f"reply+tok123@{self.reply_domain}"))

    async def opt_out(self, text: str, provider_id: str) -> bool:
        """A one-click unsubscribe by mail (``List-Unsubscribe: mailto:``)."""
        return await self._deliver(self._mail("Unsubscribe", provider_id,
                                              f"unsubscribe+tok123@{self.reply_domain}"))

    async def tap_button(self, value: str, label: str, provider_id: str) -> bool:
        raise NotApplicable("e-mail has no buttons: choices are numbered in the text")

    async def forge(self, text: str, provider_id: str) -> bool:
        raise NotApplicable("replies are read from the district's own mailbox over an "
                            "authenticated IMAP login: there is no request to sign")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.stop()
        if self._dovecot is not None:
            self._dovecot.stop()
