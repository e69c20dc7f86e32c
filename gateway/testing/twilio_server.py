"""A local server that speaks Twilio's Programmable Messaging REST protocol (2010-04-01).

It is what the ``twilio_sms`` channel's tests, the benchmarks and end-to-end tests send to
through the real ``twilio`` library:

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (HTTP Basic auth ``SID:token``,
  form fields ``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``),
  answering ``201`` with a message resource shaped like Twilio's;
* ``GET .../Messages/{MessageSid}.json`` (fetch) and ``GET .../Messages.json`` (list, newest
  first, filters ``To``, ``From``, ``DateSent``, ``DateSent<``, ``DateSent>``, ``PageSize``);
* errors as Twilio's JSON ``{"code", "message", "more_info", "status"}``, injected per
  recipient number (:meth:`FakeTwilioServer.fail_for`) or from a scripted queue
  (:meth:`FakeTwilioServer.fail_next`, :meth:`~FakeTwilioServer.hang_next`,
  :meth:`~FakeTwilioServer.disconnect_next`);
* :meth:`FakeTwilioServer.post_status_callbacks`: signed status callbacks to the message's
  ``StatusCallback``, as Twilio posts them (``queued`` → ``sent`` → ``delivered``, or ``failed``
  / ``undelivered`` with ``ErrorCode``);
* :meth:`FakeTwilioServer.call_back_before_answering`: a provider that calls back at once — the
  status callbacks of each new message are posted (and answered) *before* the ``201`` that
  carries the message's SID, so the sender cannot have stored the SID yet.

:func:`inbound_sms_form` and :func:`sign_twilio_request` build and sign an incoming-SMS webhook
the way Twilio does, for tests of the inbound side.

**WhatsApp sender.** Messages whose ``To`` is ``whatsapp:+E164`` behave like Twilio's WhatsApp
sender:

* the 24-hour customer-service window per recipient, opened by the family's last message
  (:meth:`FakeTwilioServer.post_whatsapp_inbound` posts one, signed, and opens it;
  :meth:`~FakeTwilioServer.open_whatsapp_window` / :meth:`~FakeTwilioServer.close_whatsapp_window`
  set it directly);
* a free-form ``Body`` outside the window is accepted (201) and then fails with error 63016 in
  its status callback, as Twilio reports it; :attr:`FakeTwilioServer.refuse_outside_window_at_once`
  answers the creation itself with 400 / 63016 instead;
* Content templates (:meth:`~FakeTwilioServer.add_content`): ``ContentSid`` + ``ContentVariables``
  (a JSON object of strings); an unknown SID is 21655, bad or missing variables 21656; outside the
  window only templates marked WhatsApp-approved go (others: 63016 as above);
* status callbacks may include ``read``; :func:`whatsapp_inbound_form` builds an incoming
  message or quick-reply button tap (``ButtonPayload`` / ``ButtonText``).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import os
import re
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.sms import MAX_SMS_CHARACTERS, count_segments

__all__ = [
    "API_VERSION",
    "FakeTwilioServer",
    "ScriptedFailure",
    "TwilioMessageRecord",
    "ContentTemplate",
    "WHATSAPP_PREFIX",
    "inbound_sms_form",
    "new_sid",
    "sign_twilio_request",
    "whatsapp_inbound_form",
]

API_VERSION = "2010-04-01"
WHATSAPP_PREFIX = "whatsapp:"
#: WhatsApp's customer-service window after the family's last message.
WHATSAPP_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW_CODE = 63016
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_JSON = "application/json"


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix and 32 lower-case hex digits."""
    return prefix + secrets.token_hex(16)


def sign_twilio_request(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form post of ``params`` to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def inbound_sms_form(
    *,
    from_: str,
    to: str,
    body: str,
    account_sid: str,
    message_sid: str | None = None,
    media_urls: Sequence[str] = (),
    media_types: Sequence[str] = (),
    messaging_service_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio posts to a number's incoming-message webhook."""
    sid = message_sid or new_sid("SM" if not media_urls else "MM")
    form = {
        "ToCountry": "US",
        "ToState": "MO",
        "SmsMessageSid": sid,
        "NumMedia": str(len(media_urls)),
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "US",
        "To": to,
        "ToZip": "",
        "NumSegments": str(count_segments(body).segments),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        form["MessagingServiceSid"] = messaging_service_sid
    for index, url in enumerate(media_urls):
        form[f"MediaUrl{index}"] = url
        form[f"MediaContentType{index}"] = media_types[index] if index < len(media_types) else "image/jpeg"
    return form


def whatsapp_inbound_form(
    *,
    from_: str,
    to: str,
    body: str,
    account_sid: str,
    message_sid: str | None = None,
    button_payload: str | None = None,
    button_text: str | None = None,
    profile_name: str = "Parent",
    original_replied_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio posts to a WhatsApp sender's incoming-message webhook: ``From`` / ``To``
    as ``whatsapp:+E164``, ``WaId`` and ``ProfileName``; a quick-reply tap adds
    ``ButtonPayload`` (the button's id) and ``ButtonText`` and has the text as ``Body``."""
    sender = from_ if from_.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + from_
    receiver = to if to.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + to
    sid = message_sid or new_sid("SM")
    form = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": profile_name,
        "MessageType": "button" if button_payload else "text",
        "SmsSid": sid,
        "WaId": sender.removeprefix(WHATSAPP_PREFIX + "+"),
        "SmsStatus": "received",
        "Body": body,
        "To": receiver,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": API_VERSION,
    }
    if button_payload is not None:
        form["ButtonPayload"] = button_payload
        form["ButtonText"] = button_text if button_text is not None else body
    if original_replied_sid:
        form["OriginalRepliedMessageSid"] = original_replied_sid
        form["OriginalRepliedMessageSender"] = receiver
    return form


@dataclass
class ContentTemplate:
    """A Content Template of the account: ``body`` with ``{{1}}``-style variables, the
    defaults Twilio fills when a variable is not sent, whether WhatsApp approved it (needed
    outside the window), and quick-reply ``actions`` (``(title, id)``, variables allowed)."""

    sid: str
    body: str
    approved: bool = True
    defaults: dict[str, str] = field(default_factory=dict)
    actions: tuple[tuple[str, str], ...] = ()

    def variables(self) -> set[str]:
        """The variable names the body and the actions use."""
        texts = [self.body, *(t for action in self.actions for t in action)]
        return {name for text in texts for name in _VARIABLE.findall(text)}

    def render(self, text: str, values: Mapping[str, str]) -> str:
        """``text`` with its variables replaced (sent values, then defaults)."""
        return _VARIABLE.sub(lambda m: values.get(m.group(1), self.defaults.get(m.group(1), "")), text)


@dataclass
class TwilioMessageRecord:
    """One message the server accepted, with the form exactly as it arrived."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    form: dict[str, str]
    status: str
    num_segments: int
    date_created: datetime
    date_sent: datetime | None = None
    date_updated: datetime | None = None
    error_code: int | None = None
    authorization: str = ""
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    """Quick-reply buttons as the family sees them: ``(title, id)``."""
    pending_error: int | None = None
    """A delivery error already decided (63016 outside the window): the status callbacks
    report ``failed`` with it, whatever was asked."""

    @property
    def whatsapp(self) -> bool:
        """Sent through the WhatsApp sender."""
        return self.to.startswith(WHATSAPP_PREFIX)

    @property
    def uri(self) -> str:
        """The resource path, as Twilio's ``uri`` field gives it."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        """The message resource in Twilio's JSON shape."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": format_datetime(self.date_created),
            "date_sent": format_datetime(self.date_sent) if self.date_sent else None,
            "date_updated": format_datetime(self.date_updated or self.date_created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": self.uri.removesuffix(".json") + "/Media.json",
            },
            "to": self.to,
            "uri": self.uri,
        }


@dataclass(frozen=True)
class ScriptedFailure:
    """What the server does instead of accepting one request.

    ``status``/``code``: answer with Twilio's error JSON; ``retry_after``: add a
    ``Retry-After`` header; ``hang``: wait this many seconds before answering (or forever when
    the client gives up first); ``disconnect``: read the request, then drop the connection;
    ``lose_answer``: accept the message, then wait this many seconds before answering.
    """

    status: int = 500
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    hang: float | None = None
    disconnect: bool = False
    lose_answer: float | None = None
    """Accept the message (it exists at Twilio), then hold the answer this many seconds: the
    sender never learns its SID (reconciliation finds it)."""


_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Authenticate",
    404: "The requested resource was not found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _error_body(status: int, code: int | None, message: str | None) -> dict[str, Any]:
    code = code if code is not None else status
    return {
        "code": code,
        "message": message or _DEFAULT_MESSAGES.get(status, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error_response(
    status: int, code: int | None, message: str | None = None, retry_after: float | None = None
) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after) if float(retry_after).is_integer() else retry_after)
    return web.Response(
        status=status,
        text=json.dumps(_error_body(status, code, message)),
        content_type=_JSON,
        headers=headers,
    )


def _parse_filter_date(value: str) -> datetime | None:
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


class FakeTwilioServer:
    """An in-process Twilio Messaging API on ``127.0.0.1``.

    ``messages`` is every accepted message in order, ``by_sid`` indexes them; ``requests``
    counts every ``POST`` to ``Messages.json`` (accepted, refused or failed).
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.host = host
        self.port = port
        self.messages: list[TwilioMessageRecord] = []
        self.by_sid: dict[str, TwilioMessageRecord] = {}
        self.requests = 0
        self.callback_results: list[tuple[str, str, int]] = []
        self._script: deque[ScriptedFailure] = deque()
        self._by_recipient: dict[str, ScriptedFailure] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._expected_auth = self._basic(self.account_sid, self.auth_token)
        self._sid_counter = itertools.count(1)
        self._sid_prefix = os.urandom(8).hex()
        self._early_statuses: tuple[str, ...] = ()
        self._early_via: str | None = None
        self.early_callback_errors: list[BaseException] = []
        self.contents: dict[str, ContentTemplate] = {}
        self.whatsapp_windows: dict[str, datetime] = {}
        self.refuse_outside_window_at_once = False
        """WhatsApp: answer a free-form message outside the window with 400 / 63016 at once
        instead of accepting it and failing it in its status callback."""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give the client as ``api_base_url``."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeTwilioServer:
        """Listen; returns ``self`` so ``server = await FakeTwilioServer().start()`` works."""
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages"
        app.router.add_post(base + ".json", self._create_message)
        app.router.add_get(base + ".json", self._list_messages)
        app.router.add_get(base + "/{sid}.json", self._fetch_message)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop listening and close the callback client."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTwilioServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        code: int | None = None,
        *,
        message: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` message creations with this error."""
        failure = ScriptedFailure(status=status, code=code, message=message, retry_after=retry_after)
        self._script.extend([failure] * times)

    def hang_next(self, seconds: float = 3600.0, *, times: int = 1) -> None:
        """Hold the next ``times`` message creations for ``seconds`` (after reading them)."""
        self._script.extend([ScriptedFailure(hang=seconds)] * times)

    def lose_answer_next(self, seconds: float = 3600.0, *, times: int = 1) -> None:
        """Accept the next ``times`` messages but hold each answer for ``seconds``: the client
        times out although Twilio has the message."""
        self._script.extend([ScriptedFailure(lose_answer=seconds)] * times)

    def disconnect_next(self, *, times: int = 1) -> None:
        """Drop the connection on the next ``times`` message creations, after reading them."""
        self._script.extend([ScriptedFailure(disconnect=True)] * times)

    def fail_for(
        self, number: str, status: int = 400, code: int = 21211, *, message: str | None = None
    ) -> None:
        """Refuse every message to ``number`` with this error (e.g. 21610, 21211)."""
        self._by_recipient[number] = ScriptedFailure(status=status, code=code, message=message)

    def call_back_before_answering(
        self, statuses: Sequence[str] = ("sent", "delivered"), *, via: str | None = None
    ) -> None:
        """From now on, post each new message's status callbacks (``statuses``, in order; see
        :meth:`post_status_callbacks` for ``via``) before answering its creation. An empty
        ``statuses`` turns it off. Messages without a ``StatusCallback`` are answered at once."""
        self._early_statuses = tuple(statuses)
        self._early_via = via

    # -- WhatsApp sender ----------------------------------------------------------------

    def add_content(
        self,
        body: str,
        *,
        approved: bool = True,
        defaults: Mapping[str, str] | None = None,
        actions: Sequence[tuple[str, str]] = (),
        sid: str | None = None,
    ) -> str:
        """Create a Content Template (``twilio/text``, or ``twilio/quick-reply`` with
        ``actions``); returns its ``HX`` SID. ``approved``: WhatsApp approved it, so it may
        start a conversation outside the window."""
        content = ContentTemplate(
            sid=sid or new_sid("HX"), body=body, approved=approved,
            defaults=dict(defaults or {}), actions=tuple(actions),
        )
        self.contents[content.sid] = content
        return content.sid

    @staticmethod
    def _whatsapp_address(number: str) -> str:
        return number if number.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + number

    def open_whatsapp_window(self, number: str, at: datetime | None = None) -> None:
        """The family at ``number`` wrote at ``at`` (now): free-form messages may go for 24 h."""
        self.whatsapp_windows[self._whatsapp_address(number)] = at or datetime.now(UTC)

    def close_whatsapp_window(self, number: str) -> None:
        """Forget the family's last message: only approved templates go."""
        self.whatsapp_windows.pop(self._whatsapp_address(number), None)

    def whatsapp_window_open(self, number: str, now: datetime | None = None) -> bool:
        """Whether ``number``'s 24-hour window is open."""
        last = self.whatsapp_windows.get(self._whatsapp_address(number))
        return last is not None and (now or datetime.now(UTC)) < last + WHATSAPP_WINDOW

    async def post_whatsapp_inbound(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str,
        button_payload: str | None = None,
        button_text: str | None = None,
        original_replied_sid: str | None = None,
        message_sid: str | None = None,
        via: str | None = None,
    ) -> tuple[int, dict[str, str]]:
        """A family writes (or taps a quick-reply button) on WhatsApp: the window opens and the
        signed incoming-message webhook is posted to ``url`` (sent to ``via``'s host when
        given). Returns the receiver's HTTP status and the form."""
        self.open_whatsapp_window(from_)
        form = whatsapp_inbound_form(
            from_=from_, to=to, body=body, account_sid=self.account_sid, message_sid=message_sid,
            button_payload=button_payload, button_text=button_text,
            original_replied_sid=original_replied_sid,
        )
        status = await self.post_signed(url, form, via)
        return status, form

    def clear_failures(self) -> None:
        """Forget scripted and per-recipient failures."""
        self._script.clear()
        self._by_recipient.clear()

    # -- handlers ----------------------------------------------------------------------

    @staticmethod
    def _basic(user: str, password: str) -> str:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return "Basic " + token

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        path_sid = request.match_info["account_sid"]
        return path_sid == self.account_sid and hmac.compare_digest(
            header.encode(), self._expected_auth.encode()
        )

    def _next_sid(self) -> str:
        return f"SM{self._sid_prefix}{next(self._sid_counter):016x}"

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if not self._authorized(request):
            return _error_response(401, 20003, "Authenticate")
        try:
            form = await request.post()
        except ValueError:
            return _error_response(400, 20001, "Could not parse the request body")
        failure = self._script.popleft() if self._script else None
        lose_answer: float | None = None
        if failure is not None and failure.lose_answer is not None:
            lose_answer, failure = failure.lose_answer, None
        if failure is not None:
            if failure.disconnect:
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError  # nothing is answered
            if failure.hang is not None:
                await asyncio.sleep(failure.hang)
            else:
                return _error_response(failure.status, failure.code, failure.message, failure.retry_after)
        fields = {key: str(value) for key, value in form.items()}
        to = fields.get("To", "")
        from_ = fields.get("From") or None
        service = fields.get("MessagingServiceSid") or None
        body = fields.get("Body", "")
        if not to:
            return _error_response(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            return _error_response(400, 21603, "A 'From' phone number is required.")
        if to.startswith(WHATSAPP_PREFIX):
            return await self._create_whatsapp(request, fields, lose_answer)
        if not body and "MediaUrl" not in fields:
            return _error_response(400, 21602, "Message body is required.")
        if len(body) > MAX_SMS_CHARACTERS:
            return _error_response(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if not _E164.match(to) and not _SHORT_CODE.match(to):
            return _error_response(400, 21211, f"Invalid 'To' Phone Number: {to}")
        refusal = self._by_recipient.get(to)
        if refusal is not None:
            return _error_response(refusal.status, refusal.code, refusal.message)
        now = datetime.now(UTC)
        record = TwilioMessageRecord(
            sid=self._next_sid(),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            messaging_service_sid=service,
            body=body,
            status_callback=fields.get("StatusCallback") or None,
            form=fields,
            # Through a Messaging Service Twilio first answers "accepted", then picks a sender.
            status="queued" if from_ else "accepted",
            num_segments=count_segments(body).segments,
            date_created=now,
            authorization=request.headers.get("Authorization", ""),
        )
        return await self._accepted(record, lose_answer)

    async def _create_whatsapp(
        self, request: web.Request, fields: dict[str, str], lose_answer: float | None = None
    ) -> web.Response:
        """A message through the WhatsApp sender (window, Content templates, 63016)."""
        to = fields["To"]
        from_ = fields.get("From") or None
        service = fields.get("MessagingServiceSid") or None
        if not _E164.match(to.removeprefix(WHATSAPP_PREFIX)):
            return _error_response(400, 21211, "Invalid 'To' Phone Number")
        if from_ is not None and not (
            from_.startswith(WHATSAPP_PREFIX) and _E164.match(from_.removeprefix(WHATSAPP_PREFIX))
        ):
            return _error_response(400, 63007, "Twilio could not find a Channel with the "
                                   "specified From address")
        refusal = self._by_recipient.get(to)
        if refusal is not None:
            return _error_response(refusal.status, refusal.code, refusal.message)
        window_open = self.whatsapp_window_open(to)
        content_sid = fields.get("ContentSid") or None
        buttons: tuple[tuple[str, str], ...] = ()
        variables: dict[str, str] | None = None
        if content_sid is not None:
            content = self.contents.get(content_sid)
            if content is None:
                return _error_response(400, 21655, "The ContentSid is Invalid")
            try:
                raw = json.loads(fields.get("ContentVariables") or "{}")
            except ValueError:
                raw = None
            if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
            ):
                return _error_response(400, 21656, "The ContentVariables Parameter is invalid")
            variables = raw
            missing = content.variables() - set(variables) - set(content.defaults)
            if missing:
                return _error_response(400, 21656, "The ContentVariables Parameter is invalid")
            body = content.render(content.body, variables)
            buttons = tuple(
                (content.render(title, variables), content.render(ident, variables))
                for title, ident in content.actions
            )
            if len(buttons) > 3 and not content.approved:
                # Twilio's docs allow 3 buttons in an unapproved in-session quick reply; which
                # error code it answers beyond that is not documented: 21656 stands in.
                return _error_response(400, 21656, "In-session quick replies without approval "
                                       "take at most 3 buttons")
            free_form = not content.approved
        else:
            body = fields.get("Body", "")
            if not body and "MediaUrl" not in fields:
                return _error_response(400, 21602, "Message body is required.")
            if len(body) > MAX_SMS_CHARACTERS:
                return _error_response(400, 21617, "The concatenated message body exceeds the "
                                       "1600 character limit.")
            free_form = True
        outside = free_form and not window_open
        if outside and self.refuse_outside_window_at_once:
            return _error_response(
                400, OUTSIDE_WINDOW_CODE, "Failed to send freeform message because you are "
                "outside the allowed window. If you are using WhatsApp, please use a Message "
                "Template.",
            )
        record = TwilioMessageRecord(
            sid=self._next_sid(),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            messaging_service_sid=service,
            body=body,
            status_callback=fields.get("StatusCallback") or None,
            form=fields,
            status="queued" if from_ else "accepted",
            num_segments=1,
            date_created=datetime.now(UTC),
            authorization=request.headers.get("Authorization", ""),
            content_sid=content_sid,
            content_variables=variables,
            buttons=buttons,
            pending_error=OUTSIDE_WINDOW_CODE if outside else None,
        )
        return await self._accepted(record, lose_answer)

    async def _accepted(
        self, record: TwilioMessageRecord, lose_answer: float | None = None
    ) -> web.Response:
        """Keep ``record``, post early callbacks when asked, answer 201 with the resource
        (``lose_answer`` seconds later when the answer is to be lost)."""
        self.messages.append(record)
        self.by_sid[record.sid] = record
        if lose_answer is not None:
            await asyncio.sleep(lose_answer)
        answer = json.dumps(record.to_json())  # what Twilio said at creation, before any callback
        if self._early_statuses and record.status_callback:
            try:
                await self.post_status_callbacks(record.sid, self._early_statuses, via=self._early_via)
            except (aiohttp.ClientError, OSError) as exc:  # the receiver is down: Twilio moves on
                self.early_callback_errors.append(exc)
        return web.Response(status=201, text=answer, content_type=_JSON)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error_response(401, 20003, "Authenticate")
        record = self.by_sid.get(request.match_info["sid"])
        if record is None:
            return _error_response(404, 20404, f"The requested resource {request.path} was not found")
        return web.Response(text=json.dumps(record.to_json()), content_type=_JSON)

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error_response(401, 20003, "Authenticate")
        query = request.query
        selected: Iterable[TwilioMessageRecord] = reversed(self.messages)
        if "To" in query:
            selected = [m for m in selected if m.to == query["To"]]
        if "From" in query:
            selected = [m for m in selected if m.from_ == query["From"]]
        for key, keep in (
            ("DateSent>", lambda sent, bound: sent >= bound),
            ("DateSent<", lambda sent, bound: sent <= bound),
            ("DateSent", lambda sent, bound: sent.date() == bound.date()),
        ):
            bound = _parse_filter_date(query[key]) if key in query else None
            if bound is not None:
                selected = [m for m in selected if m.date_sent is not None and keep(m.date_sent, bound)]
        page_size = max(1, min(1000, int(query.get("PageSize", "50") or 50)))
        page = list(selected)[:page_size]
        uri = request.path_qs
        payload = {
            "end": max(0, len(page) - 1),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "messages": [m.to_json() for m in page],
            "start": 0,
            "uri": uri,
        }
        return web.Response(text=json.dumps(payload), content_type=_JSON)

    # -- status callbacks ---------------------------------------------------------------

    def status_callback_form(
        self, record: TwilioMessageRecord, status: str, error_code: int | None = None
    ) -> dict[str, str]:
        """The form Twilio posts to a ``StatusCallback`` for ``record`` reaching ``status``."""
        form = {
            "SmsSid": record.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": record.to,
            "MessageSid": record.sid,
            "AccountSid": record.account_sid,
            "From": record.from_ or "+15005550006",
            "ApiVersion": API_VERSION,
        }
        if record.messaging_service_sid:
            form["MessagingServiceSid"] = record.messaging_service_sid
        if record.whatsapp:
            form["ChannelPrefix"] = "whatsapp"
            form["ChannelToAddress"] = record.to.removeprefix(WHATSAPP_PREFIX)
            if record.from_ is None:
                form["From"] = WHATSAPP_PREFIX + "+15005550006"
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return form

    async def post_status_callbacks(
        self,
        sid: str,
        statuses: Sequence[str] = ("sent", "delivered"),
        *,
        error_code: int | None = None,
        via: str | None = None,
    ) -> list[int]:
        """Post a signed status callback for each of ``statuses``, in order; returns the HTTP
        statuses the receiver answered.

        ``error_code`` is added to ``failed`` / ``undelivered`` callbacks. The signature covers
        the message's ``StatusCallback`` URL; ``via`` (``http://127.0.0.1:port``) swaps its
        scheme and host for where the request is really sent, like a reverse proxy in front of
        the gateway. A message with a decided delivery error (WhatsApp free-form outside the
        window: 63016) reports ``failed`` with it instead of ``statuses``.
        """
        record = self.by_sid[sid]
        if not record.status_callback:
            raise ValueError(f"message {sid} was created without a StatusCallback")
        if record.pending_error is not None:
            statuses, error_code = ("failed",), record.pending_error
        if self._session is None:
            self._session = aiohttp.ClientSession()
        target = record.status_callback
        if via:
            parts = urlsplit(record.status_callback)
            base = urlsplit(via)
            target = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        answers: list[int] = []
        for status in statuses:
            code = error_code if status in ("failed", "undelivered") else None
            now = datetime.now(UTC)
            record.status = status
            record.date_updated = now
            if status == "sent":
                record.date_sent = now
            if code is not None:
                record.error_code = code
            form = self.status_callback_form(record, status, code)
            signature = sign_twilio_request(self.auth_token, record.status_callback, form)
            async with self._session.post(
                target,
                data=form,
                headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
            ) as response:
                await response.read()
                answers.append(response.status)
                self.callback_results.append((sid, status, response.status))
        return answers

    async def post_signed(self, url: str, form: Mapping[str, str], via: str | None = None) -> int:
        """Post ``form`` to ``url`` signed as Twilio signs it (to ``via``'s host when given);
        the receiver's HTTP status."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        target = url
        if via:
            parts = urlsplit(url)
            base = urlsplit(via)
            target = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        signature = sign_twilio_request(self.auth_token, url, form)
        async with self._session.post(
            target, data=dict(form),
            headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
        ) as response:
            await response.read()
            return response.status
