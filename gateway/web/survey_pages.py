"""The survey builder pages: build a survey (questions, choices with synonyms, branching,
reminder and close time, audience with a live count), preview its first question in every
audience language, send it now or later — or export it as a survey file, or load one."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC
from typing import Any

import yaml
from aiohttp import web
from pydantic import ValidationError

from gateway.config import format_validation_error
from gateway.domain.surveys import SurveySpec
from gateway.errors import GatewayError
from gateway.staff import StaffIdentity
from gateway.web import actions, queries
from gateway.web.compose import build_preview, parse_local_time, text_source
from gateway.web.survey_builder import (
    MAX_QUESTIONS,
    form_from_spec,
    question_count,
    spec_from_form,
    spec_yaml,
)

__all__ = ["add_survey_builder_routes"]


def _audience(form: dict[str, Any]) -> str:
    from gateway.web.pages import audience_expression

    return audience_expression(form)


async def _page(
    request: web.Request,
    staff: StaffIdentity,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    from gateway.web.pages import _gw, render, ui_gettext

    gw = _gw(request)
    chosen = (
        [c for c in gw.channels if form.get(f"channel_{c}")] if form.get("_posted") else list(gw.channels)
    )
    return render(
        request,
        "survey_builder.html",
        staff,
        status=status,
        form=form,
        count=question_count(form),
        max_questions=MAX_QUESTIONS,
        errors=errors or {},
        preview=preview,
        channels=list(gw.channels),
        chosen=chosen,
        options=await queries.audience_options(gw, staff.scope),
        text_source=functools.partial(text_source, gettext=ui_gettext(request, staff)),
    )


async def builder_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """A new survey (or a copy of a stored one: ``?from=SURVEY_ID``)."""
    from gateway.web.pages import _gw

    gw = _gw(request)
    form: dict[str, Any] = {"questions": "1", "q1_type": "choice", "idempotency_key": uuid.uuid4().hex}
    source = request.query.get("from")
    if source:
        found = await queries.survey_definition(gw, source, staff.scope)
        if found is not None:
            form.update(form_from_spec(SurveySpec.model_validate(found), gw.config.district_timezone))
    return await _page(request, staff, form)


async def builder_post(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Add a question, preview, export as YAML, load YAML, or send / schedule."""
    from gateway.web.pages import FORM_KEY, _gw, _say, ui_gettext

    gw = _gw(request)
    form: dict[str, Any] = {k: v for k, v in request[FORM_KEY].items() if isinstance(v, str)}
    form["_posted"] = "1"
    _ = ui_gettext(request, staff)
    action = form.get("action", "preview")
    zone = form.get("timezone") or gw.config.district_timezone
    if action == "add_question":
        count = min(question_count(form) + 1, MAX_QUESTIONS)
        form["questions"] = str(count)
        form.setdefault(f"q{count}_type", "choice")
        return await _page(request, staff, form)
    if action == "load":
        try:
            spec = SurveySpec.model_validate(yaml.safe_load(form.get("yaml") or "") or {})
        except (yaml.YAMLError, ValidationError, TypeError) as exc:
            message = (
                format_validation_error(exc, "survey file") if isinstance(exc, ValidationError) else str(exc)
            )
            return await _page(
                request, staff, form, {"yaml": _("Survey file: %(reason)s", reason=message)}, status=400
            )
        loaded = form_from_spec(spec, zone)
        loaded.update({k: v for k, v in form.items() if k.startswith(("channel_", "aud_")) or k == "_posted"})
        return await _page(request, staff, loaded)
    audience = _audience(form)
    spec, errors = spec_from_form(form, zone, audience, gettext=_)
    chosen = [c for c in gw.channels if form.get(f"channel_{c}")]
    if not chosen:
        errors["channels"] = _("Channels: choose at least one channel")
    send_at = None
    if form.get("when") == "later":
        try:
            send_at = parse_local_time(form.get("at", ""), zone)
        except ValueError:
            send_at = None
        if send_at is None:
            errors["at"] = _("Send at: choose a date and time, or send now")
    if spec is not None and action != "export":
        from gateway.families import audience_problems

        problems = await audience_problems(gw, audience, staff.scope, say=_)
        if problems:
            errors["audience"] = _("Audience: %(problems)s", problems="; ".join(problems))
    if errors or spec is None:
        return await _page(request, staff, form, errors, status=400)
    if action == "export":
        return web.Response(
            text=spec_yaml(spec),
            content_type="application/x-yaml",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{spec.id}.yaml"'},
        )
    try:
        if action == "send":
            await actions.create_survey(
                gw,
                staff,
                spec,
                audience=audience,
                channels=chosen,
                send_at=send_at.astimezone(UTC) if send_at else None,
            )
            raise web.HTTPSeeOther(f"/surveys/{spec.id}")
        preview = await build_preview(
            gw, "survey_question", None, audience, chosen, "preferred", staff.scope, survey=spec,
            send_at=send_at,
        )
    except GatewayError as exc:
        return await _page(request, staff, form, {"form": _say(request, staff, exc)}, status=400)
    return await _page(request, staff, form, {}, preview)


def add_survey_builder_routes(app: web.Application, page: Any) -> None:
    """Mount the builder (``page`` is the pages module's sign-in and CSRF decorator)."""
    app.router.add_get("/surveys/new", page(builder_get))
    app.router.add_post("/surveys/new", page(builder_post))
