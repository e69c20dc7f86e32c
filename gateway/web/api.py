"""The JSON admin API under ``/api/``: bearer tokens (or a signed-in page session), every answer
scoped to the caller's schools. Malformed bodies are 400, bodies over ``http.max_body_bytes``
413, unknown or out-of-scope families 404; never a 500 for a caller's mistake."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.broadcasts import parse_send_time
from gateway.config import format_validation_error
from gateway.domain.events import EventSpec
from gateway.domain.surveys import SurveySpec
from gateway.errors import GatewayError
from gateway.exports import results_csv
from gateway.inbox import list_inbox
from gateway.staff import StaffIdentity
from gateway.storage.db import database_unavailable
from gateway.web import actions, queries
from gateway.web.app import GATEWAY_KEY
from gateway.web.auth import api_identity
from gateway.web.downloads import csv_download
from gateway.web.openapi import openapi_document

__all__ = ["add_api_routes"]

ApiHandler = Callable[[web.Request, StaffIdentity], Awaitable[web.StreamResponse]]
IDEMPOTENCY_HEADER = "Idempotency-Key"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """UTF-8 JSON, not ASCII-escaped."""
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error(status: int, message: str) -> web.Response:
    """``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status=status)


def api(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate, then turn the caller's mistakes into 4xx answers."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        staff = await api_identity(request)
        try:
            return await handler(request, staff)
        except actions.NotFoundError as exc:
            return error(404, str(exc.args[0]) if exc.args else "not found")
        except actions.ForbiddenError as exc:
            return error(403, str(exc))
        except actions.IdempotencyConflictError as exc:
            return error(422, str(exc))
        except ValidationError as exc:
            return error(400, format_validation_error(exc, "body"))
        except (GatewayError, ValueError) as exc:
            return error(400, str(exc))
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Creation is one transaction: nothing of this request was kept.
            response = error(
                503,
                "the database is busy or unreachable; nothing was saved or sent, try again "
                f"({type(exc).__name__})",
            )
            response.headers["Retry-After"] = "5"
            return response

    return wrapped


async def read_json(request: web.Request) -> Any:
    """The JSON body (413 when too large, 400 when not JSON)."""
    raw = await request.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body is not valid JSON"}), content_type="application/json"
        ) from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body must be a JSON object"}), content_type="application/json"
        )
    return body


def _gw(request: web.Request) -> Any:
    return request.app[GATEWAY_KEY]


def parse_channels(value: Any) -> list[str] | None:
    """``["sms", "email"]`` or ``"sms,email"``."""
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise GatewayError("channels: a list of channel names")


def _str_field(body: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise GatewayError(f"{name}: a string")
    return value


# -- handlers ---------------------------------------------------------------------------------------
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document (public: it describes, it reveals no data)."""
    return json_response(openapi_document(request.app))


@api
async def me(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Who the token belongs to."""
    return json_response({"email": staff.email, "role": staff.role, "schools": list(staff.schools)})


@api
async def families_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``families list --json``, scoped; ``school``, ``language`` and ``search`` filter."""
    q = request.query
    rows = await queries.list_families(
        _gw(request),
        staff.scope,
        school=q.get("school") or None,
        language=q.get("language") or None,
        search=q.get("search") or q.get("q") or None,
    )
    return json_response(rows)


@api
async def family_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """One family; 404 when unknown or outside the caller's schools."""
    family = await queries.family_detail(_gw(request), request.match_info["family_id"], staff.scope)
    if family is None:
        return error(404, "no such family")
    family.pop("id", None)
    return json_response(family)


@api
async def family_consent(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{"endpoint_id": 12, "channel": "sms" | null, "opted_out": true}``: staff change a
    family's consent for them, on one channel or (``channel`` null) on every channel."""
    body = await read_object(request)
    endpoint_id, channel, opted_out = body.get("endpoint_id"), body.get("channel"), body.get("opted_out")
    if not isinstance(endpoint_id, int):
        return error(400, "endpoint_id: required (a number)")
    if channel is not None and not isinstance(channel, str):
        return error(400, "channel: a channel name or null (every channel)")
    if not isinstance(opted_out, bool):
        return error(400, "opted_out: true or false")
    family_id = request.match_info["family_id"]
    try:
        await actions.set_endpoint_consent(_gw(request), staff, family_id, endpoint_id, channel, opted_out)
    except GatewayError as exc:
        return error(400, str(exc))
    family = await queries.family_detail(_gw(request), family_id, staff.scope)
    assert family is not None
    family.pop("id", None)
    return json_response(family)


@api
async def families_import(request: web.Request, staff: StaffIdentity) -> web.Response:
    """A families CSV as the body → the ``families import --json`` report."""
    body = await request.read()
    if not body.strip():
        return error(400, "the body must be a families CSV")
    dry_run = request.query.get("dry_run", "").lower() in ("1", "true", "yes")
    report = await actions.import_csv(_gw(request), staff, body, dry_run=dry_run)
    return json_response(report)


@api
async def events_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Events of the caller's schools (and district-wide ones)."""
    return json_response(await queries.list_events(_gw(request), staff.scope))


@api
async def events_create(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Create or update an event (the event-file fields as JSON)."""
    spec = EventSpec.model_validate(await read_object(request))
    return json_response(await actions.create_event(_gw(request), staff, spec), status=201)


@api
async def audience_count(request: web.Request, staff: StaffIdentity) -> web.Response:
    """How many families, guardians and messages an audience means (the compose page's live count)."""
    q = request.query
    policy = q.get("policy") or "preferred"
    if policy not in ("preferred", "all"):
        return error(400, "policy: preferred or all")
    data = await queries.audience_breakdown(
        _gw(request), q.get("audience", ""), parse_channels(q.get("channels")), policy, staff.scope
    )
    return json_response(data)


@api
async def broadcasts_create(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Plan a broadcast; ``Idempotency-Key`` makes a retried POST create one broadcast.

    The same key with the same body (canonical JSON) returns the first broadcast's status
    (200, ``Idempotent-Replayed: true``); with a different body it is refused with 422. A key
    expires ``http.idempotency_key_hours`` after its first use.
    """
    gw = _gw(request)
    body = await read_object(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= 150):
        return error(400, f"{IDEMPOTENCY_HEADER}: 1 to 150 characters")
    event = body.get("event")
    spec: EventSpec | None = None
    if isinstance(event, str):
        spec = await actions.load_event_spec(gw, event)
    elif isinstance(event, dict):
        spec = EventSpec.model_validate(event)
    elif event is not None:
        return error(400, "event: an event id or the event's fields")
    context = body.get("context") or {}
    if not isinstance(context, dict):
        return error(400, "context: an object")
    for flag in ("urgent", "dry_run"):
        if not isinstance(body.get(flag, False), bool):
            return error(400, f"{flag}: true or false")
    summary, created = await actions.create_broadcast(
        gw,
        staff,
        template=_str_field(body, "template", "workshop_invitation") or "workshop_invitation",
        event=spec,
        audience=_str_field(body, "audience"),
        channels=parse_channels(body.get("channels")),
        send_at=parse_send_time(body.get("at")),
        urgent=body.get("urgent", False),
        policy=_str_field(body, "policy", "preferred") or "preferred",
        dry_run=body.get("dry_run", False),
        context=context,
        idempotency_key=key,
        request_hash=actions.request_fingerprint(body) if key else None,
    )
    headers = {"Idempotent-Replayed": "true"} if key and not created else None
    return json_response(summary, status=201 if created else 200, headers=headers)


@api
async def broadcasts_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Recent broadcasts with their funnel."""
    return json_response(await queries.list_broadcasts(_gw(request), staff.scope))


@api
async def broadcast_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``broadcast status --json`` (for a liaison, only their families' messages)."""
    try:
        broadcast_id = int(request.match_info["broadcast_id"])
    except ValueError:
        return error(404, "no such broadcast")
    data = await queries.broadcast_status(_gw(request), broadcast_id, staff.scope, staff.email)
    if data is None:
        return error(404, "no such broadcast")
    return json_response(data)


@api
async def surveys_create(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Store a survey (the survey-file fields as JSON) and send its first question.

    Either the definition itself, or ``{"survey": {...}, "audience", "channels", "at"}``.
    """
    body = await read_object(request)
    definition = body.get("survey", body)
    if not isinstance(definition, dict):
        return error(400, "survey: an object")
    spec = SurveySpec.model_validate(definition)
    extra = body if "survey" in body else {}
    summary = await actions.create_survey(
        _gw(request),
        staff,
        spec,
        audience=_str_field(extra, "audience"),
        channels=parse_channels(extra.get("channels")),
        send_at=parse_send_time(extra.get("at")),
    )
    keys = ("survey_id", "broadcast_id", "families", "messages", "by_language", "by_channel", "skipped")
    return json_response({k: summary.get(k) for k in keys}, status=201)


@api
async def surveys_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Surveys sent to the caller's families."""
    return json_response(await queries.list_surveys(_gw(request), staff.scope))


@api
async def survey_results(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """``survey results --format json`` (``?format=csv`` for CSV), scoped; ``school``/``language`` filter."""
    q = request.query
    results = await queries.survey_results(
        _gw(request),
        request.match_info["survey_id"],
        staff.scope,
        school=q.get("school") or None,
        language=q.get("language") or None,
    )
    if results is None:
        return error(404, "no such survey")
    if q.get("format") == "csv":
        return csv_download(results_csv(results), f"{results['survey_id']}-results.csv")
    return json_response(results)


@api
async def event_rsvps(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Who is coming, by name (the caller's families only)."""
    from gateway.responses import event_rsvps as rsvps

    data = await rsvps(_gw(request), request.match_info["event_id"], staff.scope)
    return error(404, "no such event") if data is None else json_response(data)


@api
async def survey_responses(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """One row per guardian with each question's answer (``?format=csv`` for a spreadsheet)."""
    from gateway.responses import responses_csv
    from gateway.responses import survey_responses as responses

    data = await responses(_gw(request), request.match_info["survey_id"], staff.scope)
    if data is None:
        return error(404, "no such survey")
    if request.query.get("format") == "csv":
        return csv_download(responses_csv(data), f"{data['survey_id']}-responses.csv")
    return json_response(data)


@api
async def inbox_answer(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{"value": ...}``: record (or correct) the answer an inbox item gives, in one action."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return error(404, "no such inbox item")
    body = await read_object(request)
    value = body.get("value")
    if not isinstance(value, str) or not value.strip():
        return error(400, "value: required (the answer to record)")
    try:
        result = await actions.record_answer(_gw(request), staff, inbound_id, value.strip())
    except actions.NotFoundError:
        return error(404, "no such inbox item")
    return json_response(result)


@api
async def inbox_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``inbox --json``, urgent first, for the caller's families."""
    unread = request.query.get("unread", "").lower() in ("1", "true", "yes")
    flag = request.query.get("needs_interpreter", "").lower()
    interpreter = True if flag in ("1", "true", "yes") else False if flag in ("0", "false", "no") else None
    return json_response(
        await list_inbox(_gw(request), unread=unread, schools=staff.scope, needs_interpreter=interpreter)
    )


@api
async def inbox_interpreter(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{"needed": true|false}``: flag a reply for a human interpreter."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return error(404, "no such inbox item")
    body = await read_object(request)
    needed = body.get("needed", True)
    if not isinstance(needed, bool):
        return error(400, "needed: true or false")
    try:
        await actions.flag_for_interpreter(_gw(request), staff, inbound_id, needed)
    except actions.NotFoundError:
        return error(404, "no such inbox item")
    return json_response({"id": inbound_id, "needs_interpreter": needed})


@api
async def inbox_reply(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{"text": ...}`` in the staff language → translated and queued to the family."""
    try:
        inbound_id = int(request.match_info["inbound_id"])
    except ValueError:
        return error(404, "no such inbox item")
    body = await read_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return error(400, "text: required")
    result = await actions.reply_to_inbox(_gw(request), staff, inbound_id, text)
    return json_response(result, status=201)


@api
async def reach(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Delivery, reply and opt-out rates; families not reached in the last ``last`` broadcasts."""
    try:
        last = max(1, min(int(request.query.get("last", "5")), 100))
    except ValueError:
        return error(400, "last: a number")
    return json_response(await queries.reach_report(_gw(request), staff.scope, last))


@api
async def audit_log(request: web.Request, staff: StaffIdentity) -> web.Response:
    """The audit log (admins only)."""
    from gateway.audit import list_audit

    if not staff.is_admin:
        return error(403, "admins only")
    return json_response(await list_audit(_gw(request)))


def add_api_routes(app: web.Application) -> None:
    """Mount every ``/api/`` route."""
    r = app.router
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/api/me", me)
    r.add_get("/api/families", families_list)
    r.add_post("/api/families/import", families_import)
    r.add_get("/api/families/{family_id}", family_get)
    r.add_post("/api/families/{family_id}/consent", family_consent)
    r.add_get("/api/events", events_list)
    r.add_post("/api/events", events_create)
    r.add_get("/api/audience", audience_count)
    r.add_get("/api/broadcasts", broadcasts_list)
    r.add_post("/api/broadcasts", broadcasts_create)
    r.add_get("/api/broadcasts/{broadcast_id}", broadcast_get)
    r.add_get("/api/surveys", surveys_list)
    r.add_post("/api/surveys", surveys_create)
    r.add_get("/api/surveys/{survey_id}/results", survey_results)
    r.add_get("/api/surveys/{survey_id}/responses", survey_responses)
    r.add_get("/api/events/{event_id}/rsvps", event_rsvps)
    r.add_post("/api/inbox/{inbound_id}/answer", inbox_answer)
    r.add_get("/api/inbox", inbox_list)
    r.add_post("/api/inbox/{inbound_id}/reply", inbox_reply)
    r.add_post("/api/inbox/{inbound_id}/interpreter", inbox_interpreter)
    r.add_get("/api/reach", reach)
    r.add_get("/api/audit", audit_log)
