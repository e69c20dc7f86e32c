"""The Telegram channel: sends through aiogram's Bot, receives by long polling or a webhook."""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web
from pydantic import ValidationError

from gateway import (
    TELEGRAM,
    Channel,
    ChannelCapabilities,
    ChannelContext,
    OutboundMessage,
    PermanentSendError,
    PluginError,
    SendResult,
    WebhookHandler,
    mask_address,
)

from .html_split import split_telegram_html
from .settings import TelegramSettings

if TYPE_CHECKING:  # aiogram takes seconds to import: only when the channel actually runs
    from aiogram import Bot, Dispatcher

    from .updates import RecentUpdates, TelegramUpdateHandlers

__all__ = ["TelegramChannel"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: How many multi-part messages remember which parts already went out (for a resumed retry).
_PROGRESS_MEMORY = 1024


#: Buttons one message carries at most (Telegram's own limit for an inline keyboard).
MAX_BUTTONS = 100


class TelegramChannel(Channel):
    """A Telegram bot (aiogram 3): HTML messages, inline answer buttons, deep-link onboarding.

    Addresses are chat ids as strings. Long bodies are split at 4,096 characters (the last part
    carries the buttons); parts to one chat are spaced by the per-recipient rate. When a retry
    of a multi-part message comes back after some parts went out, it resumes after them.
    """

    plugin: ClassVar[str] = "telegram"
    address_kind = TELEGRAM
    Settings = TelegramSettings
    supports_buttons = True
    #: Long bodies are split into several messages, so there is no maximum length.
    capabilities = ChannelCapabilities(buttons=MAX_BUTTONS, markup="telegram_html")
    default_rate_per_second = 30
    default_rate_per_recipient_per_second = 1

    settings: TelegramSettings

    def __init__(self, name: str, settings: TelegramSettings, context: ChannelContext) -> None:
        super().__init__(name, settings, context)
        self.bot: Bot | None = None
        self.bot_username: str | None = settings.bot_username
        self._dispatcher: Dispatcher | None = None
        self._recent_updates: RecentUpdates | None = None
        self._handlers: TelegramUpdateHandlers | None = None
        self._polling: asyncio.Task[None] | None = None
        self._progress: OrderedDict[int, tuple[str, int, str]] = OrderedDict()
        self._handled_types: frozenset[str] | None = None

    # ------------------------------------------------------------------ aiogram, lazily

    @property
    def dispatcher(self) -> Dispatcher:
        """The aiogram dispatcher with this channel's handlers (built on first use)."""
        if self._dispatcher is None:
            from aiogram import Dispatcher

            from .updates import RecentUpdates, TelegramUpdateHandlers

            dispatcher = Dispatcher(name=f"gateway-telegram-{self.name}")
            self._recent_updates = RecentUpdates()
            dispatcher.update.outer_middleware(self._recent_updates)
            self._handlers = TelegramUpdateHandlers(self.name, self.context)
            dispatcher.include_router(self._handlers.router)
            self._dispatcher = dispatcher
        return self._dispatcher

    @property
    def recent_updates(self) -> RecentUpdates:
        """Update ids seen lately (duplicates are dropped)."""
        _ = self.dispatcher
        assert self._recent_updates is not None
        return self._recent_updates

    @property
    def handlers(self) -> TelegramUpdateHandlers:
        """The update handlers (commands, answers, buttons, membership changes)."""
        _ = self.dispatcher
        assert self._handlers is not None
        return self._handlers

    # ------------------------------------------------------------------ lifecycle

    def _new_bot(self) -> Bot:
        from aiogram import Bot
        from aiogram.client.default import DefaultBotProperties
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.enums import ParseMode

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.settings.api_base_url))
        return Bot(
            token=self.settings.token.get_secret_value(),
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )

    async def start(self) -> None:
        """getMe; then register the webhook, or drop it and start long polling."""
        from aiogram.exceptions import TelegramAPIError

        bot = self.bot = self._new_bot()
        try:
            me = await bot.me()
            self.bot_username = self.settings.bot_username or me.username
            allowed = self.dispatcher.resolve_used_update_types()
            if self.settings.mode == "webhook":
                secret = self.settings.webhook_secret
                assert secret is not None  # validated by TelegramSettings
                await bot.set_webhook(
                    url=self.context.public_url(self.context.webhook_path("update")),
                    secret_token=secret.get_secret_value(),
                    allowed_updates=allowed,
                )
            else:
                await bot.delete_webhook(drop_pending_updates=False)
                self._polling = asyncio.create_task(
                    self._poll(bot, allowed), name=f"telegram-polling-{self.name}"
                )
                self._polling.add_done_callback(self._polling_ended)
        except TelegramAPIError as exc:
            await bot.session.close()
            self.bot = None
            raise PluginError(f"channel {self.name!r}: Telegram refused start-up: {exc}") from exc
        self.log.info(
            "telegram channel %s started (%s) as @%s", self.name, self.settings.mode, self.bot_username
        )

    async def resolve_bot_username(self) -> str | None:
        """The bot's username for ``t.me`` deep links: configured, learnt at start, or asked
        with ``getMe`` (without starting the channel, e.g. from ``gateway families link``)."""
        if self.bot_username:
            return self.bot_username
        from aiogram.exceptions import TelegramAPIError

        bot = self.bot or self._new_bot()
        try:
            me = await bot.me()
            self.bot_username = me.username
        except TelegramAPIError as exc:
            self.log.warning("telegram channel %s: getMe failed: %s", self.name, type(exc).__name__)
        finally:
            if bot is not self.bot:
                await bot.session.close()
        return self.bot_username

    async def _poll(self, bot: Bot, allowed: list[str]) -> None:
        """Long polling: ``getUpdates`` read as plain JSON, then each update on its own through
        :meth:`process_update`, so one update aiogram cannot parse (or of a type the bot has no
        handler for) is skipped and confirmed instead of failing the whole batch again and again."""
        from .updates import RawGetUpdates

        offset: int | None = None
        failures = 0
        timeout = self.settings.poll_timeout
        request_timeout = int(bot.session.timeout + timeout) if bot.session.timeout else None
        while True:
            method = RawGetUpdates(offset=offset, timeout=timeout, allowed_updates=allowed)
            try:
                batch = await bot(method, request_timeout=request_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network or API trouble: back off, never give up
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                self.log.warning(
                    "telegram %s: getUpdates failed (%s); retrying in %.1f s",
                    self.name, type(exc).__name__, delay,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            for payload in batch:
                update_id = payload.get("update_id") if isinstance(payload, dict) else None
                if not isinstance(update_id, int):
                    continue
                offset = max(offset or 0, update_id + 1)
                try:
                    await self.process_update(payload)
                except Exception:
                    self.log.exception("telegram %s: update %s failed", self.name, update_id)

    def _polling_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("telegram polling of %s stopped: %r", self.name, task.exception())

    async def stop(self) -> None:
        """Stop polling and close the HTTP session."""
        if self._polling is not None:
            self._polling.cancel()
            try:
                await self._polling
            except asyncio.CancelledError:
                pass
            self._polling = None
        if self.bot is not None:
            await self.bot.session.close()
            self.bot = None

    # ------------------------------------------------------------------ sending

    def _parts(self, message: OutboundMessage) -> list[str]:
        return split_telegram_html(message.body)

    def cost_units(self, message: OutboundMessage) -> int:
        """One unit per Telegram message the body is split into."""
        return max(1, len(self._parts(message)))

    def preview_details(self, message: OutboundMessage) -> Mapping[str, Any]:
        """How many Telegram messages the body becomes, and whether buttons are shown."""
        return {"parts": len(self._parts(message)), "buttons": len(message.buttons)}

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send ``message`` (split if long; buttons under the last part)."""
        from aiogram.exceptions import TelegramAPIError

        from .errors import send_error_from
        from .keyboards import answer_keyboard

        bot = self.bot
        if bot is None:
            raise RuntimeError(f"telegram channel {self.name!r} is not started")
        chat_id = _chat_id(message.address)
        parts = self._parts(message)
        if not parts:
            raise PermanentSendError("message text is empty", code="400")
        markup = answer_keyboard(message.message_id, message.buttons) if message.buttons else None
        first, last_id = self._resume_point(message, len(parts))
        pause = 1.0 / (self.rate_per_recipient_per_second or 1.0)
        for index in range(first, len(parts)):
            if index > first:
                await asyncio.sleep(pause)  # Telegram allows about one message per second a chat
            is_last = index == len(parts) - 1
            try:
                sent = await bot.send_message(
                    chat_id=chat_id,
                    text=parts[index],
                    reply_markup=markup if is_last else None,
                    request_timeout=int(self.settings.request_timeout),
                )
            except TelegramAPIError as exc:
                error = send_error_from(exc)
                self.log.info(
                    "telegram send of message %s to chat %s failed (part %d/%d): %s",
                    message.message_id,
                    mask_address(chat_id),
                    index + 1,
                    len(parts),
                    error,
                )
                raise error from exc
            last_id = f"{sent.chat.id}:{sent.message_id}"
            if not is_last:
                self._remember_progress(message, index + 1, last_id)
        self._progress.pop(message.message_id, None)
        assert last_id is not None
        return SendResult(provider_message_id=last_id, status="sent")

    def _resume_point(self, message: OutboundMessage, total: int) -> tuple[int, str | None]:
        saved = self._progress.get(message.message_id)
        if saved is None or saved[0] != message.body or saved[1] >= total:
            return 0, None
        return saved[1], saved[2]

    def _remember_progress(self, message: OutboundMessage, done: int, last_id: str) -> None:
        self._progress[message.message_id] = (message.body, done, last_id)
        self._progress.move_to_end(message.message_id)
        while len(self._progress) > _PROGRESS_MEMORY:
            self._progress.popitem(last=False)

    # ------------------------------------------------------------------ webhook

    def webhooks(self) -> Mapping[str, WebhookHandler]:
        """``update``: Telegram's webhook, in webhook mode only."""
        if self.settings.mode != "webhook":
            return {}
        return {"update": self.handle_webhook_update}

    async def handle_webhook_update(self, request: web.Request) -> web.StreamResponse:
        """Check the secret header, parse the update, run it through the handlers once."""
        secret = self.settings.webhook_secret
        given = request.headers.get(SECRET_HEADER, "")
        if secret is None or not hmac.compare_digest(
            given.encode(), secret.get_secret_value().encode()
        ):
            self.log.warning("telegram channel %s: webhook without the right secret token refused",
                             self.name)
            self.context.count_signature_failure()
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        bot = self.bot
        if bot is None:
            return web.json_response({"ok": False, "error": "not started"}, status=503)
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid JSON"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        try:
            outcome = await self.process_update(payload)
        except Exception:
            # Telegram retries a non-2xx answer later; the dedupe set forgot this update.
            self.log.exception("telegram: update %s failed", payload["update_id"])
            return web.json_response({"ok": False, "error": "processing failed"}, status=500)
        if outcome == "processed":
            return web.json_response({"ok": True})
        # Duplicates, types the bot has no handler for and updates aiogram cannot parse are
        # answered 200: any other answer makes Telegram deliver them again, forever.
        return web.json_response({"ok": True, outcome: True})

    async def process_update(self, payload: Mapping[str, Any]) -> str:
        """Run one update (Telegram's JSON) through the handlers once. Returns ``processed``,
        ``duplicate``, ``ignored`` (a type the bot has no handler for: ``poll``,
        ``chat_join_request``, a type newer than this aiogram...) or ``unparseable`` (a handled
        type aiogram's models refuse). Exceptions of the handlers propagate."""
        from aiogram.types import Update

        bot = self.bot
        if bot is None:
            raise RuntimeError(f"telegram channel {self.name!r} is not started")
        update_id = payload["update_id"]
        kinds = sorted(k for k in payload if k != "update_id")
        if self._handled_types is None:
            self._handled_types = frozenset(self.dispatcher.resolve_used_update_types())
        if not self._handled_types.intersection(kinds):
            self.log.debug("telegram %s: update %s of type %s ignored (no handler)",
                           self.name, update_id, ",".join(kinds)[:80] or "none")
            return "ignored"
        if self.recent_updates.seen(update_id):
            return "duplicate"
        try:
            update = Update.model_validate(dict(payload), context={"bot": bot})
        except ValidationError as exc:
            self.log.warning("telegram %s: update %s (%s) does not parse (%d problem(s)); ignored",
                             self.name, update_id, ",".join(kinds)[:80], exc.error_count())
            return "unparseable"
        await self.dispatcher.feed_update(bot, update)
        return "processed"


def _chat_id(address: str) -> int | str:
    """A numeric chat id, or an ``@channelusername``; anything else is an invalid address."""
    text = address.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("@") and len(text) > 1:
        return text
    raise PermanentSendError("not a Telegram chat id", code="400", endpoint_state="invalid")
