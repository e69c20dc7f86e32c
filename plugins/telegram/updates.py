"""What the bot does with each incoming update (the same for long polling and webhooks).

* ``/start <token>`` links the chat to a family (deep link) and greets it in its language;
  a bad or used token gets a polite refusal; a bare ``/start`` from a known chat opts back in.
* ``/stop`` is handed to the core as the text ``STOP`` (the keyword logic opts out and confirms).
* ``/language`` shows a language picker; a tap is handed to the core as ``/language xx``.
* Any other text is handed to the core as a reply.
* A survey-button tap is answered at once, handed to the core as a choice, and the keyboard is
  replaced by ``✓ <label>`` under the message.
* ``my_chat_member`` with status ``kicked`` (the user blocked the bot) opts the chat out.
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import TelegramMethod
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, TelegramObject, Update

from gateway import ChannelContext, InboundMessage, InboundOutcome, mask_address

from .html_split import TELEGRAM_TEXT_LIMIT, utf16_length
from .keyboards import AnswerCallback, language_keyboard, parse_answer, parse_language

__all__ = ["RawGetUpdates", "RecentUpdates", "TelegramUpdateHandlers"]

MSG_WELCOME = "Welcome, %(name)s! You will now receive school messages here."
MSG_BAD_LINK = "Sorry, this link is not valid any more. Please ask your school for a new one."
MSG_OPTED_IN = "You will receive school messages here again."
MSG_UNKNOWN_CHAT = "Hello! Please open the link your school sent you to connect this chat."
MSG_CHOOSE_LANGUAGE = "Choose your language:"

_START_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RawGetUpdates(TelegramMethod[list[dict[str, Any]]]):
    """``getUpdates`` answered as plain JSON objects: the poller parses each update on its own,
    so one that aiogram's models refuse cannot fail the batch (and every update after it)."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class RecentUpdates:
    """Outer middleware dropping an update whose ``update_id`` was seen recently.

    Telegram re-sends a webhook update it got no 2xx for, and a restarted poller may get the
    last unconfirmed batch again. The set is bounded; the core also dedupes on provider ids.
    An update whose handling raised is forgotten, so Telegram's retry of it is processed.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[int, None] = OrderedDict()

    def seen(self, update_id: int) -> bool:
        """True when ``update_id`` is being or was processed."""
        return update_id in self._seen

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """Let ``event`` through once."""
        if not isinstance(event, Update):
            return await handler(event, data)
        if event.update_id in self._seen:
            return UNHANDLED
        self._seen[event.update_id] = None
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        try:
            return await handler(event, data)
        except BaseException:
            self._seen.pop(event.update_id, None)
            raise


class TelegramUpdateHandlers:
    """The bot's handlers for one channel, registered on an aiogram :class:`Router`."""

    def __init__(self, channel_name: str, context: ChannelContext) -> None:
        self.channel_name = channel_name
        self.context = context
        self.log = context.logger
        self.router = Router(name=f"gateway-telegram-{channel_name}")
        self._register()

    def _register(self) -> None:
        router = self.router
        router.message.register(self.on_start, CommandStart(ignore_case=True))
        router.message.register(self.on_stop, Command("stop", ignore_case=True))
        router.message.register(self.on_language_command, Command("language", ignore_case=True))
        router.message.register(self.on_text, F.text | F.caption)
        router.callback_query.register(self.on_language_choice, F.data.startswith("lang:"))
        router.callback_query.register(self.on_callback)
        router.my_chat_member.register(self.on_membership)

    # ------------------------------------------------------------------ messages

    async def on_start(self, message: Message, command: CommandObject, bot: Bot) -> None:
        """``/start [token]``: redeem a deep-link token, or opt a known chat back in."""
        chat_id = str(message.chat.id)
        token = (command.args or "").strip()
        if token:
            link = None
            if _START_TOKEN.match(token):
                link = await self.context.link_endpoint(token, chat_id)
            if link is None:
                self.log.info("telegram: refused onboarding token for chat %s", mask_address(chat_id))
                language = await self._language(chat_id, message)
                await self._reply(bot, chat_id, await self.context.text(language, MSG_BAD_LINK))
                return
            await self.context.set_endpoint_state(chat_id, None, "start")
            self.log.info("telegram: linked chat %s to a family", mask_address(chat_id))
            greeting = await self.context.text(link.language, MSG_WELCOME, name=link.guardian_name)
            await self._reply(bot, chat_id, greeting)
            return
        known_language = await self.context.endpoint_language(chat_id)
        if known_language is None:
            language = await self._language(chat_id, message)
            await self._reply(bot, chat_id, await self.context.text(language, MSG_UNKNOWN_CHAT))
            return
        await self.context.set_endpoint_state(chat_id, None, "start")
        await self._reply(bot, chat_id, await self.context.text(known_language, MSG_OPTED_IN))

    async def on_stop(self, message: Message) -> None:
        """``/stop``: the core's STOP keyword opts the chat out and confirms."""
        await self._hand_over(message, "STOP")

    async def on_language_command(self, message: Message, bot: Bot) -> None:
        """``/language``: show the language picker."""
        chat_id = str(message.chat.id)
        language = await self._language(chat_id, message)
        text = await self.context.text(language, MSG_CHOOSE_LANGUAGE)
        await self._reply(bot, chat_id, text, reply_markup=language_keyboard())

    async def on_text(self, message: Message) -> None:
        """Any other text (or a caption): a reply for the inbound pipeline."""
        await self._hand_over(message, message.text or message.caption or "")

    # ------------------------------------------------------------------ button taps

    async def on_language_choice(self, query: CallbackQuery, bot: Bot) -> None:
        """A tap in the language picker: hand ``/language xx`` to the core."""
        code = parse_language(query.data)
        await _answer_quietly(query, self.log)
        if code is None or query.message is None:
            return
        chat_id = str(query.message.chat.id)
        await self.context.receive(
            InboundMessage(
                channel=self.channel_name,
                provider_message_id=f"cb:{query.id}",
                sender=chat_id,
                text=f"/language {code}",
                raw={"callback_data": query.data},
            )
        )
        await self._remove_keyboard(bot, query)

    async def on_callback(self, query: CallbackQuery, bot: Bot) -> None:
        """A survey-button tap: answer it, hand the choice over, show the choice under the text."""
        await _answer_quietly(query, self.log)
        answer = parse_answer(query.data)
        if answer is None:
            self.log.info("telegram: ignored unknown callback data")
            return
        chat_id = str(query.message.chat.id) if query.message else str(query.from_user.id)
        tapped_label = _tapped_label(query)
        inbound = InboundMessage(
            channel=self.channel_name,
            provider_message_id=f"cb:{query.id}",
            sender=chat_id,
            text=answer.value if answer.value is not None else tapped_label or "",
            choice=answer.value,
            in_reply_to_message_id=answer.message_id,
            raw=_callback_raw(query, answer),
        )
        outcome = await self.context.receive(inbound)
        label = outcome.answer_label or tapped_label or answer.value or ""
        await self._show_choice(bot, query, label)

    # ------------------------------------------------------------------ membership

    async def on_membership(self, event: ChatMemberUpdated) -> None:
        """The user blocked (``kicked``) or unblocked the bot."""
        chat_id = str(event.chat.id)
        status = event.new_chat_member.status
        if status == "kicked":
            self.log.info("telegram: chat %s blocked the bot", mask_address(chat_id))
            await self.context.set_endpoint_state(chat_id, "opted_out", "blocked the bot")

    # ------------------------------------------------------------------ helpers

    async def _hand_over(self, message: Message, text: str) -> InboundOutcome:
        chat_id = str(message.chat.id)
        return await self.context.receive(
            InboundMessage(
                channel=self.channel_name,
                provider_message_id=f"{chat_id}:{message.message_id}",
                sender=chat_id,
                text=text,
                received_at=message.date,
                raw={"message_id": message.message_id, "chat_type": message.chat.type},
            )
        )

    async def _language(self, chat_id: str, message: Message) -> str:
        known = await self.context.endpoint_language(chat_id)
        if known:
            return known
        user = message.from_user
        if user is not None and user.language_code:
            return user.language_code.split("-")[0].lower()
        return "en"

    async def _reply(self, bot: Bot, chat_id: str, text: str, **kwargs: Any) -> None:
        try:
            await bot.send_message(chat_id=chat_id, text=html.escape(text, quote=False), **kwargs)
        except TelegramAPIError as exc:
            self.log.warning(
                "telegram: reply to chat %s failed: %s", mask_address(chat_id), type(exc).__name__
            )

    async def _remove_keyboard(self, bot: Bot, query: CallbackQuery) -> None:
        message = query.message
        if not isinstance(message, Message):
            return  # too old to edit
        try:
            await bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
            )
        except TelegramAPIError as exc:
            self.log.info("telegram: could not remove a keyboard: %s", type(exc).__name__)

    async def _show_choice(self, bot: Bot, query: CallbackQuery, label: str) -> None:
        message = query.message
        if not isinstance(message, Message):
            return
        new_text = f"{message.html_text}\n\n✓ {html.escape(label, quote=False)}"
        try:
            if label and utf16_length(new_text) <= TELEGRAM_TEXT_LIMIT:
                await bot.edit_message_text(
                    chat_id=message.chat.id,
                    message_id=message.message_id,
                    text=new_text,
                    reply_markup=None,
                )
            else:
                await bot.edit_message_reply_markup(
                    chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
                )
        except TelegramAPIError as exc:
            # Typically "message is not modified" after a second tap: nothing to fix.
            self.log.info("telegram: could not mark the choice: %s", type(exc).__name__)


async def _answer_quietly(query: CallbackQuery, log: Any) -> None:
    try:
        await query.answer()
    except TelegramAPIError as exc:  # the query is too old (> 15 min): the tap still counts
        log.info("telegram: answerCallbackQuery failed: %s", type(exc).__name__)


def _tapped_label(query: CallbackQuery) -> str | None:
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if markup is None or not getattr(markup, "inline_keyboard", None):
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None


def _callback_raw(query: CallbackQuery, answer: AnswerCallback) -> dict[str, Any]:
    raw: dict[str, Any] = {"callback_data": query.data}
    if answer.index is not None:
        raw["button_index"] = answer.index
    if query.message is not None:
        raw["message_id"] = query.message.message_id
    return raw
