"""A local server speaking the Telegram Bot API, for tests and benchmarks.

It answers ``POST /bot{token}/{method}`` the way ``api.telegram.org`` does for the methods the
gateway uses (getMe, sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery,
setWebhook, deleteWebhook, getWebhookInfo, getUpdates). Bodies may be form-encoded (what aiogram
sends: scalars as strings, complex fields as JSON strings), multipart or JSON. Replies are
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"}``.

Tests queue updates with :meth:`TelegramBotAPIServer.push_update` (built with the ``*_update``
helpers) for ``getUpdates`` long polling, or post them to a webhook with
:meth:`TelegramBotAPIServer.deliver_webhook`; they inject failures per chat
(:meth:`~TelegramBotAPIServer.fail_chat`) or in order (:meth:`~TelegramBotAPIServer.script`), and
read back every call (:attr:`~TelegramBotAPIServer.calls`) and every message sent per chat with its
arrival time (:attr:`~TelegramBotAPIServer.sent`), which is where a benchmark measures rate limits.

Example::

    async with TelegramBotAPIServer() as server:
        bot = Bot(server.token, session=AiohttpSession(
            api=TelegramAPIServer.from_base(server.base_url)))
        ...
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "ApiCall",
    "ScriptedReply",
    "SentMessage",
    "TelegramBotAPIServer",
    "utf16_length",
]

#: Parameters aiogram sends as JSON strings inside a form body.
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "media",
        "results",
    }
)

#: Known Telegram error answers, by a short name tests can use.
CHAT_ERRORS: dict[str, tuple[int, str]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "deactivated": (403, "Forbidden: user is deactivated"),
    "kicked": (403, "Forbidden: bot was kicked from the group chat"),
    "not_found": (400, "Bad Request: chat not found"),
}

_MAX_TEXT = 4096
_MAX_CALLBACK_DATA_BYTES = 64

#: HTML tags Telegram's HTML parse mode accepts, and the entity type each becomes.
_ENTITY_BY_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le")) // 2


class TelegramHTMLError(ValueError):
    """The text is not valid Telegram HTML (Telegram answers 400 "can't parse entities")."""


class _TelegramHTMLParser(HTMLParser):
    """Turns Telegram HTML into plain text plus MessageEntity dicts, like the Bot API does."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text_parts: list[str] = []
        self.length = 0
        self.open: list[tuple[str, int, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        entity_type = _ENTITY_BY_TAG.get(tag)
        attributes = dict(attrs)
        if entity_type is None or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise TelegramHTMLError(f'Unsupported start tag "{tag}"')
        extra: dict[str, Any] = {}
        if tag == "a":
            href = attributes.get("href")
            if not href:
                raise TelegramHTMLError('Can\'t find "href" attribute of the "a" tag')
            extra["url"] = href
        if tag == "tg-emoji":
            extra["custom_emoji_id"] = attributes.get("emoji-id") or ""
        self.open.append((tag, self.length, {"type": entity_type, **extra}))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise TelegramHTMLError(f'Unmatched end tag "{tag}"')
        _, start, entity = self.open.pop()
        if self.length > start:
            self.entities.append({**entity, "offset": start, "length": self.length - start})

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        self.length += utf16_length(data)


def parse_telegram_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of a Telegram-HTML ``text``; raises :class:`TelegramHTMLError`."""
    parser = _TelegramHTMLParser()
    parser.feed(text)
    parser.close()
    if parser.rawdata:
        raise TelegramHTMLError("Unclosed tag or stray '<'")
    if parser.open:
        tag = parser.open[-1][0]
        raise TelegramHTMLError(f'Can\'t find end tag corresponding to start tag "{tag}"')
    parser.entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(parser.text_parts), parser.entities


@dataclass(frozen=True)
class ApiCall:
    """One request the server received: the method, its decoded parameters and when."""

    method: str
    params: dict[str, Any]
    at: float
    """``time.monotonic()`` when the request arrived."""


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as stored by the server."""

    chat_id: str
    message_id: int
    text: str
    """The text as the bot sent it (HTML when ``parse_mode`` was HTML)."""
    plain_text: str
    params: dict[str, Any]
    at: float
    """``time.monotonic()`` when the server accepted it."""

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The decoded ``reply_markup`` sent with the message, if any."""
        return self.params.get("reply_markup")


@dataclass
class ScriptedReply:
    """A canned answer for the next matching call: an error, or success after a delay."""

    method: str | None = "sendMessage"
    """Only calls of this method consume it (None: any method)."""
    status: int | None = None
    """HTTP status of an error answer; None answers normally."""
    description: str = ""
    retry_after: int | None = None
    delay: float = 0.0
    """Seconds to wait before answering (to provoke client timeouts)."""
    hold_answer: float = 0.0
    """Carry the call out (the message is sent), then wait this many seconds before answering:
    the client times out although Telegram has the message."""


@dataclass
class _StoredMessage:
    chat: dict[str, Any]
    message: dict[str, Any]


@dataclass
class _WebhookInfo:
    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None


@dataclass
class TelegramBotAPIServer:
    """An aiohttp server speaking the Bot API for one bot (see the module docstring)."""

    token: str = "123456789:TEST-local-bot-token_for_tests"
    bot_username: str = "school_gateway_bot"
    bot_first_name: str = "School Gateway"
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[ApiCall] = field(default_factory=list)
    sent: dict[str, list[SentMessage]] = field(default_factory=dict)
    answered_callbacks: list[dict[str, Any]] = field(default_factory=list)
    chat_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    webhook: _WebhookInfo = field(default_factory=_WebhookInfo)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._scripted: deque[ScriptedReply] = deque()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._messages: dict[tuple[str, int], _StoredMessage] = {}
        self._new_update = asyncio.Event()
        self._closing = asyncio.Event()
        self._callback_ids = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    @property
    def bot_id(self) -> int:
        """The bot's user id (the token's numeric prefix)."""
        return int(self.token.split(":", 1)[0])

    @property
    def base_url(self) -> str:
        """``http://host:port`` to give ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on ``host:port`` (a free port when ``port`` is 0)."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Wake long polls and stop listening."""
        self._closing.set()
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramBotAPIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def fail_chat(self, chat_id: int | str, error: str = "blocked") -> None:
        """Answer every send to ``chat_id`` with a known error (``blocked``, ``not_found``...)."""
        self.chat_errors[str(chat_id)] = CHAT_ERRORS[error]

    def script(self, *replies: ScriptedReply) -> None:
        """Queue canned answers, consumed in order by the next matching calls."""
        self._scripted.extend(replies)

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for ``getUpdates`` (an ``update_id`` is assigned when missing)."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._new_update.set()
        return update

    async def deliver_webhook(
        self, update: dict[str, Any], url: str | None = None, secret: str | None = None
    ) -> int:
        """POST ``update`` to the webhook like Telegram does; returns the HTTP status.

        ``url`` defaults to the URL given to setWebhook (tests usually pass the local address the
        channel's handler is mounted at); ``secret`` defaults to the registered secret token.
        """
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        target = url or self.webhook.url
        token = self.webhook.secret_token if secret is None else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": token} if token else {}
        async with aiohttp.ClientSession() as session:
            async with session.post(target, json=update, headers=headers) as response:
                return response.status

    @property
    def all_sent(self) -> list[SentMessage]:
        """Every message sent to any chat, in the order the server accepted them."""
        return sorted(
            (message for messages in self.sent.values() for message in messages),
            key=lambda message: message.at,
        )

    def calls_of(self, method: str) -> list[ApiCall]:
        """Every recorded call of ``method``."""
        return [call for call in self.calls if call.method == method]

    def message(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """The current state of a message the bot sent (after edits)."""
        stored = self._messages.get((str(chat_id), int(message_id)))
        return None if stored is None else stored.message

    # ------------------------------------------------------------------ update builders

    @staticmethod
    def user(chat_id: int | str, first_name: str = "Parent", language_code: str = "en") -> dict:
        """A ``User`` object for a private chat."""
        return {
            "id": int(chat_id),
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }

    @staticmethod
    def private_chat(chat_id: int | str, first_name: str = "Parent") -> dict[str, Any]:
        """A private ``Chat`` object."""
        return {"id": int(chat_id), "type": "private", "first_name": first_name}

    def text_message_update(
        self,
        chat_id: int | str,
        text: str,
        *,
        message_id: int | None = None,
        first_name: str = "Parent",
        language_code: str = "en",
    ) -> dict[str, Any]:
        """An update carrying a text message from a user (commands get a bot_command entity)."""
        message: dict[str, Any] = {
            "message_id": message_id or self._next_message_id(str(chat_id)),
            "from": self.user(chat_id, first_name, language_code),
            "chat": self.private_chat(chat_id, first_name),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_length(command)}]
        return {"update_id": next(self._update_ids), "message": message}

    def start_update(self, chat_id: int | str, payload: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """``/start`` (with a deep-link ``payload`` when given), as a t.me link sends it."""
        text = "/start" if payload is None else f"/start {payload}"
        return self.text_message_update(chat_id, text, **kwargs)

    def callback_query_update(
        self,
        chat_id: int | str,
        message_id: int,
        data: str,
        *,
        first_name: str = "Parent",
        language_code: str = "en",
    ) -> dict[str, Any]:
        """A tap on an inline button under a message the bot sent (the message is included)."""
        stored = self._messages.get((str(chat_id), int(message_id)))
        message = (
            stored.message
            if stored is not None
            else {
                "message_id": int(message_id),
                "chat": self.private_chat(chat_id, first_name),
                "date": int(time.time()),
                "text": "",
            }
        )
        query = {
            "id": str(4_000_000_000_000 + next(self._callback_ids)),
            "from": self.user(chat_id, first_name, language_code),
            "message": message,
            "chat_instance": f"-{abs(int(chat_id))}77",
            "data": data,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    def my_chat_member_update(
        self,
        chat_id: int | str,
        new_status: str = "kicked",
        old_status: str = "member",
        *,
        first_name: str = "Parent",
    ) -> dict[str, Any]:
        """The bot's membership changed in a chat (``kicked`` = the user blocked the bot)."""
        now = int(time.time())
        bot_user = self._bot_user()
        new_member: dict[str, Any] = {"status": new_status, "user": bot_user}
        if new_status == "kicked":
            new_member["until_date"] = 0
        return {
            "update_id": next(self._update_ids),
            "my_chat_member": {
                "chat": self.private_chat(chat_id, first_name),
                "from": self.user(chat_id, first_name),
                "date": now,
                "old_chat_member": {"status": old_status, "user": bot_user},
                "new_chat_member": new_member,
            },
        }

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._decode_params(request)
        self.calls.append(ApiCall(method, params, time.monotonic()))
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        scripted = self._take_scripted(method)
        if scripted is not None:
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            if scripted.status is not None:
                return _error(scripted.status, scripted.description, scripted.retry_after)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        if scripted is not None and scripted.hold_answer:
            await asyncio.sleep(scripted.hold_answer)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _decode_params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = value
                else:  # an uploaded file
                    params[key] = {"filename": value.filename, "size": len(value.file.read())}
        for key in _JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    def _take_scripted(self, method: str) -> ScriptedReply | None:
        for reply in self._scripted:
            if reply.method is None or reply.method == method:
                self._scripted.remove(reply)
                return reply
        return None

    def _next_message_id(self, chat_id: str) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # ------------------------------------------------------------------ Bot API methods

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _require(params, "chat_id")
        if chat_id in self.chat_errors:
            raise _ApiError(*self.chat_errors[chat_id])
        text = str(params.get("text") or "")
        plain, entities = self._parse_text(text, params.get("parse_mode"))
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_length(plain) > _MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        _check_markup(markup)
        message_id = self._next_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": self.private_chat(chat_id),
            "date": int(time.time()),
            "text": plain,
        }
        if entities:
            message["entities"] = entities
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = _StoredMessage(message["chat"], message)
        self.sent.setdefault(chat_id, []).append(
            SentMessage(chat_id, message_id, text, plain, params, time.monotonic())
        )
        return message

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._stored_for_edit(params)
        text = str(params.get("text") or "")
        plain, entities = self._parse_text(text, params.get("parse_mode"))
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_length(plain) > _MAX_TEXT:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        markup = params.get("reply_markup")
        _check_markup(markup)
        message = stored.message
        if (
            message.get("text") == plain
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = plain
        message["entities"] = entities
        if not entities:
            message.pop("entities")
        message["edit_date"] = int(time.time())
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._stored_for_edit(params)
        markup = params.get("reply_markup")
        _check_markup(markup)
        message = stored.message
        if message.get("reply_markup") == (markup or None):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        _require(params, "callback_query_id")
        self.answered_callbacks.append(params)
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = _WebhookInfo(
            url=url,
            secret_token=params.get("secret_token"),
            allowed_updates=params.get("allowed_updates"),
        )
        if _truthy(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = _WebhookInfo()
        if _truthy(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.allowed_updates is not None:
            info["allowed_updates"] = self.webhook.allowed_updates
        return info

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates") or None
        if offset:
            # Confirming: every update below the offset is forgotten for good.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            ready = [u for u in self._updates if _update_allowed(u, allowed)][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing.is_set():
                return ready
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ helpers

    def _stored_for_edit(self, params: dict[str, Any]) -> _StoredMessage:
        if "inline_message_id" in params:
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id = _require(params, "chat_id")
        try:
            message_id = int(_require(params, "message_id"))
        except ValueError as exc:
            raise _ApiError(400, "Bad Request: message identifier is not specified") from exc
        stored = self._messages.get((chat_id, message_id))
        if stored is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return stored

    @staticmethod
    def _parse_text(text: str, parse_mode: Any) -> tuple[str, list[dict[str, Any]]]:
        if str(parse_mode or "").upper() != "HTML":
            return text, []
        try:
            return parse_telegram_html(text)
        except TelegramHTMLError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


def _require(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise _ApiError(400, f"Bad Request: {name} is empty")
    return str(value)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _check_markup(markup: Any) -> None:
    """Refuse inline keyboards Telegram would refuse (callback_data of 1–64 bytes)."""
    if not markup:
        return
    if not isinstance(markup, dict):
        raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise _ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= _MAX_CALLBACK_DATA_BYTES:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _update_allowed(update: dict[str, Any], allowed: list[str] | None) -> bool:
    if not allowed:
        # Telegram's default leaves out chat_member, message_reaction and a few others.
        return not ({"chat_member", "message_reaction", "message_reaction_count"} & update.keys())
    return any(kind in update for kind in allowed)
