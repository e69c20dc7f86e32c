"""The liaison web app: server-rendered Jinja pages with a little JavaScript.

Every page needs a signed-in staff member and shows only their schools' families; a family of
another school is the same 404 page as a family that does not exist. Every form POST carries
a CSRF token; every change is written to the audit log (through :mod:`gateway.web.actions`).
"""

from __future__ import annotations

import csv
import functools
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import BodyPartReader, web
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from markupsafe import Markup
from multidict import MultiDict

from gateway import sign_in
from gateway.audit import audit
from gateway.domain.languages import autonym, display_name, is_rtl
from gateway.errors import GatewayError, StaffFacingError
from gateway.exports import results_csv, safe_cell
from gateway.inbox import list_inbox
from gateway.responses import survey_responses
from gateway.sign_in import client_address
from gateway.staff import StaffIdentity, authenticate_password
from gateway.web import actions, queries
from gateway.web.app import GATEWAY_KEY
from gateway.web.auth import (
    CSRF_FIELD,
    check_csrf,
    clear_session,
    csrf_token,
    page_identity,
    remember,
    request_session,
    start_session,
)
from gateway.web.charts import bars, funnel_chart
from gateway.web.compose import (
    EVENT_TEMPLATES,
    LIMITS,
    MESSAGE_TEMPLATES,
    N_,
    build_preview,
    parse_compose,
    text_source,
)
from gateway.web.downloads import csv_download
from gateway.web.follow_up import (
    OUTCOMES,
    broadcast_families,
    call_list_csv,
    guardian_phones,
    survey_call_list_csv,
)

__all__ = ["add_page_routes", "make_environment"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ENV_KEY: web.AppKey[Any] = web.AppKey("page_env", object)
FORM_KEY: web.RequestKey[Any] = web.RequestKey("form", object)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NAV = (
    ("/compose", "Compose"),
    ("/broadcasts", "Broadcasts"),
    ("/surveys", "Surveys"),
    ("/reach", "Reach"),
    ("/inbox", "Inbox"),
    ("/families", "Families"),
)
ADMIN_NAV = (("/staff", "Staff"),)

Page = Callable[[web.Request, StaffIdentity], Awaitable[web.StreamResponse]]


@jinja2.pass_context
def _language_name(context: jinja2.runtime.Context, code: str) -> str:
    """A language's name in the interface's language (``so`` → ``somalí`` for a Spanish reader)."""
    return display_name(code, context.get("ui_language") or "en")


def make_environment() -> jinja2.Environment:
    """The Jinja environment of the pages (auto-escaping on)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["language_name"] = _language_name
    env.filters["autonym"] = autonym
    env.filters["pct"] = _percent
    env.filters["money"] = _money
    env.filters["when"] = _when
    env.filters["telegram_html"] = telegram_html
    env.tests["rtl"] = is_rtl
    return env


#: What Telegram's HTML parse mode knows: shown as formatting in the app, everything else removed.
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote"}


def telegram_html(text: str) -> Markup:
    """A Telegram message's HTML as the family sees it: its formatting kept (sanitised to the
    tags Telegram knows, links made safe), line breaks kept."""
    import nh3

    clean = nh3.clean(
        text,
        tags=TELEGRAM_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean.replace("\n", "<br>\n"))


def _babel_locale(ctx: Any) -> str:
    return str(ctx.get("ui_language") or "en").replace("-", "_")


@jinja2.pass_context
def _percent(ctx: Any, value: Any) -> str:
    """A rate (0–1) as a whole percentage, written the way the interface language writes it."""
    try:
        return babel_numbers.format_percent(float(value or 0), "#,##0%", locale=_babel_locale(ctx))
    except (ValueError, LookupError):
        return f"{100 * float(value or 0):.0f}%"


@jinja2.pass_context
def _money(ctx: Any, value: Any) -> str:
    """An amount in US dollars (provider prices), in the interface language's currency format."""
    try:
        return babel_numbers.format_currency(float(value or 0), "USD", locale=_babel_locale(ctx))
    except (ValueError, LookupError):
        return f"${float(value or 0):.2f}"


@jinja2.pass_context
def _when(ctx: Any, value: Any) -> str:
    """A moment in the district's time zone (``district.timezone``), written the way the staff
    member's interface language writes dates: ``Dec 1, 2026, 6:00 PM CST``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        zone = ZoneInfo(ctx.get("district_timezone") or "UTC")
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
        locale = ctx.get("ui_language") or "en"
        try:
            text = babel_dates.format_datetime(
                local, format="medium", tzinfo=zone, locale=locale.replace("-", "_")
            )
        except (ValueError, LookupError):
            text = local.strftime("%Y-%m-%d %H:%M")
        return f"{text} {local.tzname()}".replace("\u202f", " ")
    return "" if value is None else str(value)


def _gw(request: web.Request) -> Any:
    return request.app[GATEWAY_KEY]


def reader_language(request: web.Request, staff: StaffIdentity | None) -> str:
    """The interface language: the staff member's, or before signing in the browser's first
    ``Accept-Language`` that has an interface catalog (English otherwise)."""
    if staff is not None:
        return staff.language
    available = _gw(request).ui_catalogs.available()
    header = request.headers.get("Accept-Language", "")
    if not available or not header:
        return "en"
    from babel import Locale

    wanted = [part.split(";")[0].strip().replace("-", "_") for part in header.split(",")[:10]]
    choices = ["en", *(a.replace("-", "_") for a in available)]
    found = Locale.negotiate([w for w in wanted if w and w != "*"], choices)
    return str(found).replace("_", "-") if found else "en"


def ui_gettext(request: web.Request, staff: StaffIdentity | None) -> Callable[..., str]:
    """The staff member's interface translation: ``gettext(message, **params)``."""
    gw = _gw(request)
    language = reader_language(request, staff)

    def gettext(message: str, /, **params: Any) -> str:
        return gw.ui_catalogs.gettext(language, message, **params)

    return gettext


def _say(request: web.Request, staff: StaffIdentity, error: Exception) -> str:
    """What went wrong, in the staff member's interface language where the error says it."""
    if isinstance(error, StaffFacingError):
        return error.note.text(ui_gettext(request, staff))
    return str(error)


def render(
    request: web.Request,
    template: str,
    staff: StaffIdentity | None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    """A page in the staff member's interface language (English where no catalog has a string)."""
    gw = _gw(request)
    language = reader_language(request, staff)
    gettext = ui_gettext(request, staff)
    html = (
        request.app[ENV_KEY]
        .get_template(template)
        .render(
            _=gettext,
            staff=staff,
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            nav=NAV + (ADMIN_NAV if staff is not None and staff.is_admin else ()),
            path=request.path,
            ui_language=language,
            ui_dir="rtl" if is_rtl(language) else "ltr",
            district=gw.config.district.name,
            staff_language=gw.config.translation.staff_language,
            district_timezone=gw.config.district_timezone,
            ui_languages=["en", *gw.ui_catalogs.available()],
            **context,
        )
    )
    response = web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)
    return remember(request, response)  # type: ignore[return-value]


def not_found(request: web.Request, staff: StaffIdentity | None) -> web.Response:
    """The one 404 page (unknown and out-of-scope look the same)."""
    return render(request, "not_found.html", staff, status=404)


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Sign-in required; a POST must carry the session's CSRF token (its form: ``request[FORM_KEY]``)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        staff = await page_identity(request)
        if staff is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
            raise web.HTTPForbidden(text="Sign in first.")
        if request.method == "POST":
            if request.content_type == "multipart/form-data":
                form = await _multipart_form(request, staff)
            else:
                try:
                    form = await request.post()
                except ValueError:
                    raise web.HTTPBadRequest(text="Malformed form data.") from None
            check_csrf(request, form.get(CSRF_FIELD))  # type: ignore[arg-type]
            request[FORM_KEY] = form
        return await handler(request, staff)

    return wrapped


#: Largest text field of a multipart form (the file itself has its own limit).
MAX_FIELD_BYTES = 64 * 1024


async def _multipart_form(request: web.Request, staff: StaffIdentity) -> MultiDict[str]:
    """A form with a file, streamed: text fields (each capped), and an ``attachment`` file
    stored at once (PDF or image, ``http.max_attachment_bytes``) — its token in
    ``attachment_token``, or the reason it was refused in ``attachment_error``. The CSRF token
    must come before the file (it is the form's first field) and is checked before anything of
    the file is kept."""
    from gateway.attachments import AttachmentError, store_attachment

    form: MultiDict[str] = MultiDict()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.filename is not None:
                if part.name != "attachment" or not part.filename:
                    await part.release()
                    continue
                if CSRF_FIELD not in form:
                    raise web.HTTPBadRequest(text="The form's token must come before the file.")
                check_csrf(request, form[CSRF_FIELD])

                async def chunks(body: BodyPartReader = part) -> Any:
                    while chunk := await body.read_chunk(64 * 1024):
                        yield chunk

                try:
                    stored = await store_attachment(_gw(request), part.filename, chunks(), staff.email)
                    form["attachment_token"] = stored.token
                except AttachmentError as exc:
                    form["attachment_error"] = exc.note.text(ui_gettext(request, staff))
                continue
            value = await part.read(decode=True)
            if len(value) > MAX_FIELD_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_FIELD_BYTES, actual_size=len(value))
            form.add(part.name, value.decode(part.get_charset("utf-8"), errors="replace"))
    except (ValueError, AssertionError) as exc:
        raise web.HTTPBadRequest(text=f"Malformed form data: {exc}") from None
    return form


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/compose"


# -- sign in / out ------------------------------------------------------------------------------
async def login_get(request: web.Request) -> web.Response:
    """The sign-in form."""
    request_session(request)
    staff = await page_identity(request)
    if staff is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return render(request, "login.html", None, next=_safe_next(request.query.get("next")), error=None)


async def login_post(request: web.Request) -> web.StreamResponse:
    """Check the password; start a new session."""
    try:
        form = await request.post()
    except ValueError:
        raise web.HTTPBadRequest(text="Malformed form data.") from None
    check_csrf(request, form.get(CSRF_FIELD))  # type: ignore[arg-type]
    gw = _gw(request)
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "")))
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), gw.config.http.trusted_proxies
    )
    lock = await sign_in.locked_out(gw, email, address)
    staff = None if lock else await authenticate_password(gw, email, password)
    if staff is None:
        lock = lock or await sign_in.record_failure(gw, email, address)
        if lock is not None:
            return _locked_page(request, lock, target, email)
        return render(request, "login.html", None, status=401, next=target, error="wrong", email=email)
    await sign_in.clear_account(gw, email)
    response = web.HTTPSeeOther(target)
    start_session(request, response, staff)
    await audit(_gw(request), staff.email, "login", None, {})
    raise response


def _locked_page(request: web.Request, lock: sign_in.Lockout, target: str, email: str) -> web.Response:
    """429: signing in is refused until a time the page gives in the district's time zone."""
    zone = ZoneInfo(_gw(request).config.district_timezone)
    local = lock.until.astimezone(zone)
    locale = reader_language(request, None).replace("-", "_")
    try:
        at = babel_dates.format_time(local, format="short", tzinfo=zone, locale=locale)
    except (ValueError, LookupError):
        at = local.strftime("%H:%M")
    response = render(
        request,
        "login.html",
        None,
        status=429,
        next=target,
        error="locked",
        email=email,
        locked_until=f"{at} {local.tzname()}".replace("\u202f", " "),
    )
    response.headers["Retry-After"] = str(lock.retry_after())
    return response


async def logout_post(request: web.Request) -> web.StreamResponse:
    """End the session."""
    try:
        form = await request.post()
    except ValueError:
        raise web.HTTPBadRequest(text="Malformed form data.") from None
    check_csrf(request, form.get(CSRF_FIELD))  # type: ignore[arg-type]
    staff = await page_identity(request)
    response = web.HTTPSeeOther("/login")
    clear_session(response)
    if staff is not None:
        await audit(_gw(request), staff.email, "logout", None, {})
    raise response


async def index(request: web.Request) -> web.StreamResponse:
    """``/`` → compose (or sign in)."""
    raise web.HTTPSeeOther("/compose")


# -- compose --------------------------------------------------------------------------------------
def _default_form(gw: Any) -> dict[str, Any]:
    zone = gw.config.district_timezone
    start = (datetime.now(ZoneInfo(zone)) + timedelta(days=7)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    return {
        "template": "workshop_invitation",
        "timezone": zone,
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "rsvp": "on",
        "policy": "preferred",
        "when": "now",
        "idempotency_key": uuid.uuid4().hex,
    }


def audience_expression(form: dict[str, Any]) -> str:
    """The audience builder's fields as an expression (the free-text field wins when filled)."""
    if form.get("audience"):
        return str(form["audience"])
    terms = []
    for key in ("school", "grade", "language", "tag"):
        value = str(form.get(f"aud_{key}") or "").strip()
        if value:
            terms.append(f'{key}:"{value}"' if " " in value else f"{key}:{value}")
    return " ".join(terms)


@page
async def compose_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """The compose form."""
    gw = _gw(request)
    values = _default_form(gw)
    channels = list(gw.channels)
    if request.query.get("template") in MESSAGE_TEMPLATES:
        values["template"] = request.query["template"]
    attachment = None
    if request.query.get("from", "").isdigit():
        found = await queries.compose_values(gw, int(request.query["from"]), staff.scope)
        if found is not None:
            values.update(found["values"])
            channels = found["channels"] or channels
            attachment = found["attachment"]
    return await _compose_page(request, staff, values, channels, {}, None, attachment=attachment)


async def _compose_page(
    request: web.Request,
    staff: StaffIdentity,
    values: dict[str, Any],
    channels: list[str],
    errors: dict[str, str],
    preview: dict[str, Any] | None,
    status: int = 200,
    attachment: Any = None,
) -> web.Response:
    gw = _gw(request)
    options = await queries.audience_options(gw, staff.scope)
    available = set(gw.renderer.names())
    return render(
        request,
        "compose.html",
        staff,
        status=status,
        form=values,
        channels=list(gw.channels),
        chosen=channels,
        errors=errors,
        preview=preview,
        options=options,
        templates=[t for t in (*EVENT_TEMPLATES, *MESSAGE_TEMPLATES) if t in available],
        message_templates=MESSAGE_TEMPLATES,
        limits=LIMITS,
        text_source=functools.partial(text_source, gettext=ui_gettext(request, staff)),
        audience=audience_expression(values),
        attachment=attachment,
        max_attachment_mb=gw.config.http.max_attachment_bytes // (1024 * 1024),
    )


#: Form fields that are not part of what is sent (for the idempotency fingerprint).
_NOT_THE_REQUEST = frozenset({"idempotency_key", "action", CSRF_FIELD})


@page
async def compose_post(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Preview (nothing written) or send / schedule. Every problem is shown next to its field
    and nothing is written until the form is right."""
    from gateway.attachments import find_attachment
    from gateway.families import audience_problems

    gw = _gw(request)
    form = {k: v for k, v in request[FORM_KEY].items() if isinstance(v, str)}
    parsed = parse_compose(form, list(gw.channels), gettext=ui_gettext(request, staff))
    values = parsed.values
    values.setdefault("idempotency_key", uuid.uuid4().hex)
    audience = audience_expression(values)
    template = values.get("template") or "workshop_invitation"
    policy = values.get("policy") or "preferred"
    try:
        problems = await audience_problems(gw, audience, staff.scope, say=ui_gettext(request, staff))
    except StaffFacingError as exc:
        problems = [exc.note.text(ui_gettext(request, staff))]
    if problems:
        parsed.fail("audience", N_("Audience: %(problems)s"), problems="; ".join(problems))
    if parsed.event is not None and not actions.is_own_school(staff, parsed.event.school):
        # Refused at preview as at sending, beside the field.
        parsed.fail(
            "school", N_("School: %(school)s is not one of your schools (%(schools)s)"),
            school=parsed.event.school, schools=", ".join(staff.schools),
        )
    attachment = None
    if values.get("attachment_error"):
        parsed.fail("attachment", N_("File: %(reason)s"), reason=values["attachment_error"])
    elif values.get("attachment_token") and template in MESSAGE_TEMPLATES:
        attachment = await find_attachment(gw, values["attachment_token"])
        if attachment is None:
            parsed.fail("attachment", N_("File: the uploaded file is gone; attach it again"))
    context = None
    if parsed.message is not None:
        context = {k: v for k, v in parsed.message.items() if v}
        if attachment is not None:
            context["attachment"] = attachment.as_context()
    if parsed.errors or (parsed.event is None and context is None):
        return await _compose_page(
            request, staff, values, parsed.channels, parsed.errors, None, 400, attachment
        )
    try:
        if values.get("action") == "send":
            summary, _created = await actions.create_broadcast(
                gw,
                staff,
                template=template,
                event=parsed.event,
                audience=audience,
                channels=parsed.channels,
                send_at=parsed.send_at.astimezone(UTC) if parsed.send_at else None,
                urgent=bool(values.get("urgent")),
                policy=policy,
                context=context,
                idempotency_key=values["idempotency_key"],
                request_hash=actions.request_fingerprint(
                    {k: v for k, v in form.items() if k not in _NOT_THE_REQUEST}
                ),
            )
            raise web.HTTPSeeOther(f"/broadcasts/{summary['broadcast_id']}")
        preview = await build_preview(
            gw, template, parsed.event, audience, parsed.channels, policy, staff.scope, context=context,
            send_at=parsed.send_at, urgent=bool(values.get("urgent")),
        )
    except (GatewayError, LookupError) as exc:
        problem = {"form": _say(request, staff, exc)}
        return await _compose_page(request, staff, values, parsed.channels, problem, None, 400, attachment)
    return await _compose_page(request, staff, values, parsed.channels, {}, preview, 200, attachment)


# -- broadcasts -----------------------------------------------------------------------------------
@page
async def broadcasts_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Recent broadcasts with a small funnel each."""
    rows = await queries.list_broadcasts(_gw(request), staff.scope)
    for row in rows:
        row["bars"] = bars(row["funnel"], scale=max(row["messages"], 1))
    return render(request, "broadcasts.html", staff, broadcasts=rows)


async def _status(request: web.Request, staff: StaffIdentity) -> dict[str, Any] | None:
    try:
        broadcast_id = int(request.match_info["broadcast_id"])
    except ValueError:
        return None
    return await queries.broadcast_status(_gw(request), broadcast_id, staff.scope, staff.email)


@page
async def broadcast_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """One broadcast: the delivery funnel (live), then every family — reached or not and why,
    RSVP — filterable, with the call list; cancel or edit while it has not started."""
    status = await _status(request, staff)
    if status is None:
        return not_found(request, staff)
    outcome = request.query.get("outcome") or None
    rsvp = request.query.get("rsvp") or None
    families = await broadcast_families(
        _gw(request), status["broadcast_id"], staff.scope, outcome=outcome, rsvp=rsvp
    )
    return render(
        request,
        "broadcast.html",
        staff,
        status=200,
        b=status,
        chart=funnel_chart(status),
        families=families,
        outcomes=OUTCOMES,
        filters={"outcome": outcome, "rsvp": rsvp},
        can_cancel=status["status"] in ("scheduled", "queued"),
    )


@page
async def broadcast_call_list(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """The families to phone (no message reached them, or no answer to the RSVP), as CSV."""
    status = await _status(request, staff)
    if status is None:
        return not_found(request, staff)
    families = await broadcast_families(_gw(request), status["broadcast_id"], staff.scope)
    assert families is not None
    return csv_download(call_list_csv(families), f"call-list-{status['broadcast_id']}.csv")


@page
async def broadcast_cancel(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Cancel a broadcast that has not started (``edit=1``: then open it again in the form)."""
    status = await _status(request, staff)
    if status is None:
        return not_found(request, staff)
    broadcast_id = status["broadcast_id"]
    try:
        await actions.cancel_broadcast(_gw(request), staff, broadcast_id)
    except actions.NotFoundError:
        return not_found(request, staff)
    except GatewayError as exc:
        return render(
            request,
            "broadcast.html",
            staff,
            status=400,
            b=status,
            chart=funnel_chart(status),
            families=await broadcast_families(_gw(request), broadcast_id, staff.scope),
            outcomes=OUTCOMES,
            filters={},
            can_cancel=False,
            error=_say(request, staff, exc),
        )
    if str(request[FORM_KEY].get("edit", "")) == "1":
        raise web.HTTPSeeOther(f"/compose?from={broadcast_id}")
    raise web.HTTPSeeOther(f"/broadcasts/{broadcast_id}")


@page
async def broadcast_chart(request: web.Request, staff: StaffIdentity) -> web.Response:
    """The funnel fragment the broadcast page refreshes."""
    status = await _status(request, staff)
    if status is None:
        return not_found(request, staff)
    return render(request, "_funnel.html", staff, b=status, chart=funnel_chart(status))


# -- surveys --------------------------------------------------------------------------------------
@page
async def surveys_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Surveys sent to the staff member's families."""
    return render(
        request, "surveys.html", staff, surveys=await queries.list_surveys(_gw(request), staff.scope)
    )


@page
async def survey_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Bar charts per question, filtered by school and language."""
    gw = _gw(request)
    school = request.query.get("school") or None
    language = request.query.get("language") or None
    results = await queries.survey_results(
        gw, request.match_info["survey_id"], staff.scope, school=school, language=language
    )
    if results is None:
        return not_found(request, staff)
    options = await queries.audience_options(gw, staff.scope)
    for question in results["questions"]:
        question["bars"] = bars(dict(sorted(question["answers"].items(), key=lambda kv: -kv[1])))
    query = urlencode({k: v for k, v in (("school", school), ("language", language)) if v})
    responses = await survey_responses(gw, request.match_info["survey_id"], staff.scope)
    answered = request.query.get("answered")
    rows = (responses or {}).get("responses", [])
    if answered == "no":
        rows = [r for r in rows if not r["answers"]]
    elif answered == "yes":
        rows = [r for r in rows if r["answers"]]
    return render(
        request,
        "survey.html",
        staff,
        results=results,
        options=options,
        school=school,
        language=language,
        responses=responses,
        response_rows=rows,
        answered=answered,
        csv_url=f"/surveys/{request.match_info['survey_id']}/results.csv" + (f"?{query}" if query else ""),
    )


@page
async def survey_call_list(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """The guardians to phone about a survey: asked and not answered (CSV)."""
    gw = _gw(request)
    responses = await survey_responses(gw, request.match_info["survey_id"], staff.scope)
    if responses is None:
        return not_found(request, staff)
    phones = await guardian_phones(gw, responses["responses"])
    return csv_download(
        survey_call_list_csv(gw, responses, phones), f"call-list-{responses['survey_id']}.csv"
    )


@page
async def survey_csv(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """The filtered results as CSV."""
    results = await queries.survey_results(
        _gw(request),
        request.match_info["survey_id"],
        staff.scope,
        school=request.query.get("school") or None,
        language=request.query.get("language") or None,
    )
    if results is None:
        return not_found(request, staff)
    return csv_download(results_csv(results), f"{results['survey_id']}-results.csv")


# -- reach ------------------------------------------------------------------------------------------
@page
async def reach_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Rates by language, channel and school; families no channel reached lately."""
    try:
        last = max(1, min(int(request.query.get("last", "5")), 100))
    except ValueError:
        last = 5
    report = await queries.reach_report(_gw(request), staff.scope, last)
    return render(request, "reach.html", staff, report=report, last=last)


# -- inbox ------------------------------------------------------------------------------------------
async def _inbox(
    request: web.Request,
    staff: StaffIdentity,
    query: Any,
    status: int = 200,
    item_errors: dict[int, str] | None = None,
) -> web.Response:
    """The inbox as conversations, with its filters from ``query``."""
    gw = _gw(request)
    filters = {
        "unread": query.get("unread") == "1",
        "needs_interpreter": True if query.get("interpreter") == "1" else None,
        "urgent": True if query.get("urgent") == "1" else None,
        "language": query.get("language") or None,
    }
    items = await list_inbox(
        gw, schools=staff.scope, gettext=ui_gettext(request, staff), ui_language=staff.language, **filters
    )
    threads = await queries.conversations(gw, [i["guardian_id"] for i in items if i["guardian_id"]])
    languages = sorted({i["language"] for i in await list_inbox(gw, schools=staff.scope) if i["language"]})
    return render(
        request,
        "inbox.html",
        staff,
        status=status,
        items=items,
        threads=threads,
        filters=filters,
        languages=languages,
        replied=query.get("replied"),
        query=query,
        item_errors=item_errors or {},
    )


@page
async def inbox_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Replies as conversations (guardian, children, the message answered, the thread with
    staff answers), urgent first, filterable."""
    return await _inbox(request, staff, request.query)


@page
async def interface_language(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Read the interface in another language (English or one with an interface catalog)."""
    from gateway.staff import set_staff_language

    gw = _gw(request)
    language = str(request[FORM_KEY].get("language", "en"))
    if language not in ("en", *gw.ui_catalogs.available()):
        raise web.HTTPBadRequest(text=f"no interface in {language!r}")
    await set_staff_language(gw, staff.id, language)
    back = str(request[FORM_KEY].get("next", ""))
    if not back and request.headers.get("Referer"):  # the page the switch was made on
        referer = urlsplit(request.headers["Referer"])
        if referer.netloc in ("", request.host):
            back = referer.path + (f"?{referer.query}" if referer.query else "")
    raise web.HTTPSeeOther(_safe_next(back))


@page
async def inbox_answer(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Confirm or correct the answer a reply gives, in one action."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return not_found(request, staff)
    value = str(request[FORM_KEY].get("value", "")).strip()
    try:
        await actions.record_answer(_gw(request), staff, inbound_id, value)
    except actions.NotFoundError:
        return not_found(request, staff)
    except GatewayError as exc:
        return await _inbox(request, staff, {}, 400, {inbound_id: _say(request, staff, exc)})
    raise web.HTTPSeeOther(f"/inbox?answered={inbound_id}#item-{inbound_id}")


@page
async def inbox_interpreter(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Flag (or unflag) a reply for a human interpreter."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return not_found(request, staff)
    needed = str(request[FORM_KEY].get("needed", "1")) == "1"
    try:
        await actions.flag_for_interpreter(_gw(request), staff, inbound_id, needed)
    except actions.NotFoundError:
        return not_found(request, staff)
    raise web.HTTPSeeOther(f"/inbox#item-{inbound_id}")


@page
async def inbox_reply(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Send a staff answer (translated into the family's language)."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return not_found(request, staff)
    text = str(request[FORM_KEY].get("text", ""))
    try:
        result = await actions.reply_to_inbox(_gw(request), staff, inbound_id, text)
    except actions.NotFoundError:
        return not_found(request, staff)
    except GatewayError as exc:
        return await _inbox(request, staff, {}, 400, {inbound_id: _say(request, staff, exc)})
    query = urlencode(
        {
            "replied": inbound_id,
            "channel": result["channel"],
            "language": result["language"],
            "translation": result["translation"] or "source",
        }
    )
    raise web.HTTPSeeOther(f"/inbox?{query}#item-{inbound_id}")


# -- families -------------------------------------------------------------------------------------
def _family_filters(request: web.Request) -> dict[str, str | None]:
    q = request.query
    return {
        "search": q.get("q") or None,
        "school": q.get("school") or None,
        "language": q.get("language") or None,
    }


@page
async def families_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Search families of the staff member's schools."""
    gw = _gw(request)
    filters = _family_filters(request)
    rows = await queries.list_families(gw, staff.scope, limit=500, **filters)
    options = await queries.audience_options(gw, staff.scope)
    query = urlencode({k: v for k, v in request.query.items() if k in ("q", "school", "language") and v})
    return render(
        request,
        "families.html",
        staff,
        families=rows,
        options=options,
        filters=filters,
        export_url="/families/export.csv" + (f"?{query}" if query else ""),
    )


@page
async def families_export(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """The same list as CSV (one row per guardian endpoint)."""
    rows = await queries.list_families(_gw(request), staff.scope, **_family_filters(request))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["family_id", "guardian", "language", "channel", "address", "opted_out", "students"])
    for family in rows:
        students = "; ".join(
            f"{s['name']} ({s['school']} {s['grade'] or ''})".strip() for s in family["students"]
        )
        for guardian in family["guardians"]:
            for endpoint in guardian["endpoints"] or [{"channel": "", "address": "", "opted_out": ""}]:
                writer.writerow(
                    [
                        safe_cell(x)
                        for x in (
                            family["family_id"],
                            guardian["name"],
                            guardian["language"],
                            endpoint["channel"],
                            endpoint["address"],
                            endpoint["opted_out"],
                            students,
                        )
                    ]
                )
    await audit(_gw(request), staff.email, "families.export", None, {"families": len(rows)})
    return csv_download(out.getvalue(), "families.csv", SECURITY_HEADERS)


@page
async def family_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """A family: guardians, endpoints and opt-out state, language edit, history across channels."""
    gw = _gw(request)
    family = await queries.family_detail(gw, request.match_info["family_id"], staff.scope)
    if family is None:
        return not_found(request, staff)
    history = await queries.family_history(gw, family["id"])
    return render(
        request,
        "family.html",
        staff,
        family=family,
        history=history,
        saved=request.query.get("saved"),
        error=None,
    )


@page
async def family_language(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Change the language a guardian reads."""
    gw = _gw(request)
    family_id = request.match_info["family_id"]
    form = request[FORM_KEY]
    try:
        guardian_id = int(str(form.get("guardian_id", "")))
        await actions.set_guardian_language(gw, staff, family_id, guardian_id, str(form.get("language", "")))
    except (ValueError, actions.NotFoundError):
        return not_found(request, staff)
    except GatewayError as exc:
        family = await queries.family_detail(gw, family_id, staff.scope)
        if family is None:
            return not_found(request, staff)
        history = await queries.family_history(gw, family["id"])
        return render(
            request,
            "family.html",
            staff,
            status=400,
            family=family,
            history=history,
            saved=None,
            error=_say(request, staff, exc),
        )
    raise web.HTTPSeeOther(f"/families/{family_id}?saved=1")


@page
async def family_consent(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Opt a family's address out, or back in, on one channel or on every channel, for them."""
    gw = _gw(request)
    family_id = request.match_info["family_id"]
    form = request[FORM_KEY]
    channel = str(form.get("channel", "")) or None
    try:
        endpoint_id = int(str(form.get("endpoint_id", "")))
        await actions.set_endpoint_consent(
            gw,
            staff,
            family_id,
            endpoint_id,
            None if channel == "*" else channel,
            str(form.get("action", "")) == "opt_out",
        )
    except (ValueError, actions.NotFoundError, GatewayError):
        return not_found(request, staff)
    raise web.HTTPSeeOther(f"/families/{family_id}?saved=1")


def add_page_routes(app: web.Application) -> None:
    """Mount the pages and their static files."""
    app[ENV_KEY] = make_environment()
    r = app.router
    r.add_get("/", index)
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout_post)
    r.add_get("/compose", compose_get)
    r.add_post("/compose", compose_post)
    r.add_get("/broadcasts", broadcasts_page)
    r.add_get("/broadcasts/{broadcast_id}", broadcast_page)
    r.add_get("/broadcasts/{broadcast_id}/chart", broadcast_chart)
    r.add_get("/broadcasts/{broadcast_id}/call-list.csv", broadcast_call_list)
    r.add_post("/broadcasts/{broadcast_id}/cancel", broadcast_cancel)
    r.add_get("/surveys", surveys_page)
    from gateway.web.survey_pages import add_survey_builder_routes

    add_survey_builder_routes(app, page)
    r.add_get("/surveys/{survey_id}", survey_page)
    r.add_get("/surveys/{survey_id}/results.csv", survey_csv)
    r.add_get("/surveys/{survey_id}/call-list.csv", survey_call_list)
    r.add_get("/reach", reach_page)
    r.add_get("/inbox", inbox_page)
    r.add_post("/inbox/{inbound_id}/reply", inbox_reply)
    r.add_post("/inbox/{inbound_id}/interpreter", inbox_interpreter)
    r.add_post("/inbox/{inbound_id}/answer", inbox_answer)
    r.add_post("/me/language", interface_language)
    r.add_get("/families", families_page)
    r.add_get("/families/export.csv", families_export)
    r.add_get("/families/{family_id}", family_page)
    r.add_post("/families/{family_id}/language", family_language)
    r.add_post("/families/{family_id}/consent", family_consent)
    r.add_static("/static/", STATIC, append_version=True)
