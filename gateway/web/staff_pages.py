"""Staff accounts in the web app and the API: admins list, add, edit, disable and enable
accounts and reset passwords (``/staff``, ``/api/staff``); every staff member changes their own
password and interface language (``/account``).

The work is done by :mod:`gateway.staff` (the same functions as ``gateway staff ...``), so the
rules are the same everywhere: a liaison needs a school, the last admin stays an admin, nobody
disables their own account. Pages and API calls of other roles get 403. A generated password
is shown once, on the page that answers the reset, and never written anywhere but as a hash;
passwords are never logged. Every change writes an audit entry (in :mod:`gateway.staff`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.sign_in import account_locked
from gateway.staff import (
    ROLES,
    StaffError,
    StaffIdentity,
    add_staff,
    change_password,
    find_staff,
    generate_password,
    get_staff,
    identity_by_id,
    known_schools,
    list_staff,
    reset_password,
    set_disabled,
    set_staff_language,
    update_staff,
)
from gateway.staff_text import S_, StaffNote
from gateway.web import queries
from gateway.web.api import api, error, json_response, read_object
from gateway.web.auth import start_session
from gateway.web.pages import FORM_KEY, _gw, _say, page, render

__all__ = ["add_staff_routes"]


def _forbidden(request: web.Request, staff: StaffIdentity) -> web.Response:
    return render(request, "forbidden.html", staff, status=403)


def _ui_languages(gw: Any) -> list[str]:
    return ["en", *gw.ui_catalogs.available()]


def _check_language(gw: Any, language: str, field: str = "language") -> str:
    if language not in _ui_languages(gw):
        raise StaffError(
            StaffNote(S_("There is no interface in %(language)s."), {"language": repr(language)}), field
        )
    return language


async def _school_choices(gw: Any, account: dict[str, Any] | None = None) -> list[str]:
    """The schools families attend, plus any an account already has."""
    schools = list((await queries.audience_options(gw, None))["schools"])
    for school in (account or {}).get("schools", []):
        if school not in schools:
            schools.append(school)
    return schools


def _staff_id(request: web.Request) -> int | None:
    value = request.match_info["staff_id"]
    return int(value) if value.isdigit() and len(value) < 12 else None


# -- pages ------------------------------------------------------------------------------------------
@page
async def staff_list_page(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Every staff account (admins only)."""
    if not staff.is_admin:
        return _forbidden(request, staff)
    return render(request, "staff.html", staff, accounts=await list_staff(_gw(request)))


async def _form_page(
    request: web.Request,
    staff: StaffIdentity,
    account: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> web.Response:
    gw = _gw(request)
    lock = await account_locked(gw, account["email"]) if account else None
    return render(
        request,
        "staff_member.html",
        staff,
        status=status,
        account=account,
        locked_until=lock.until if lock else None,
        values=values,
        errors=errors or {},
        roles=ROLES,
        school_choices=await _school_choices(gw, account),
        languages=_ui_languages(gw),
        **extra,
    )


def _form_values(form: Any) -> dict[str, Any]:
    return {
        "email": str(form.get("email", "")).strip(),
        "role": str(form.get("role", "liaison")),
        "schools": [str(s) for s in form.getall("schools", [])],
        "language": str(form.get("language", "en")),
        "password": str(form.get("password", "")),
    }


@page
async def staff_new_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """The form to add an account."""
    if not staff.is_admin:
        return _forbidden(request, staff)
    values = {"email": "", "role": "liaison", "schools": [], "language": staff.language, "password": ""}
    return await _form_page(request, staff, None, values)


@page
async def staff_new_post(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Add an account; a generated password (when none was typed) is shown once."""
    if not staff.is_admin:
        return _forbidden(request, staff)
    gw = _gw(request)
    values = _form_values(request[FORM_KEY])
    generated = None
    try:
        _check_language(gw, values["language"])
        schools = await known_schools(gw, values["schools"]) if values["role"] == "liaison" else []
        password = values["password"] or None
        if password is None:
            password = generated = generate_password()
        await add_staff(
            gw,
            values["email"],
            values["role"],
            schools,
            password=password,
            language=values["language"],
            actor=staff.email,
            create_only=True,
        )
    except StaffError as exc:
        values["password"] = ""
        errors = {exc.field or "form": _say(request, staff, exc)}
        return await _form_page(request, staff, None, values, errors, status=400)
    account = await find_staff(gw, values["email"])
    return await _form_page(request, staff, account, account or values, created=True, generated=generated)


@page
async def staff_member_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """One account: role, schools, language, state and password reset."""
    if not staff.is_admin:
        return _forbidden(request, staff)
    staff_id = _staff_id(request)
    account = await get_staff(_gw(request), staff_id) if staff_id else None
    if account is None:
        return render(request, "not_found.html", staff, status=404)
    saved = request.query.get("saved")
    return await _form_page(request, staff, account, account, saved=saved)


@page
async def staff_member_post(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Save an account's role, schools and language, disable or enable it, or reset its password
    (``action``: ``save``, ``disable``, ``enable``, ``password``)."""
    if not staff.is_admin:
        return _forbidden(request, staff)
    gw = _gw(request)
    staff_id = _staff_id(request)
    account = await get_staff(gw, staff_id) if staff_id else None
    if account is None or staff_id is None:
        return render(request, "not_found.html", staff, status=404)
    form = request[FORM_KEY]
    action = str(form.get("action", "save"))
    values = {**account, **_form_values(form)} if action == "save" else dict(account)
    values["email"] = account["email"]
    try:
        if action == "save":
            _check_language(gw, values["language"])
            schools = await known_schools(gw, values["schools"]) if values["role"] == "liaison" else []
            await update_staff(
                gw,
                staff_id,
                role=values["role"],
                schools=schools,
                language=values["language"],
                actor=staff.email,
            )
        elif action in ("disable", "enable"):
            await set_disabled(gw, staff_id, action == "disable", actor=staff.email, actor_id=staff.id)
        elif action == "password":
            typed = str(form.get("new_password", ""))
            generated = await reset_password(gw, staff_id, typed or None, actor=staff.email)
            account = await get_staff(gw, staff_id)
            return await _form_page(
                request, staff, account, account or values, generated=generated, saved="password"
            )
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except StaffError as exc:
        errors = {exc.field or "form": _say(request, staff, exc)}
        return await _form_page(request, staff, account, values, errors, status=400)
    raise web.HTTPSeeOther(f"/staff/{staff_id}?saved={action}")


@page
async def account_get(request: web.Request, staff: StaffIdentity) -> web.Response:
    """The signed-in staff member's own account: password and interface language."""
    return render(
        request,
        "account.html",
        staff,
        errors={},
        saved=request.query.get("saved"),
        languages=_ui_languages(_gw(request)),
    )


@page
async def account_post(request: web.Request, staff: StaffIdentity) -> web.StreamResponse:
    """Change one's own password (``action=password``) or interface language (``action=language``)."""
    gw = _gw(request)
    form = request[FORM_KEY]
    action = str(form.get("action", ""))
    try:
        if action == "password":
            new = str(form.get("new_password", ""))
            if new != str(form.get("repeat_password", "")):
                raise StaffError(StaffNote(S_("The two new passwords are not the same.")), "repeat_password")
            await change_password(gw, staff.id, str(form.get("current_password", "")), new)
            # Other sessions of this account end; this one goes on under the new password.
            renewed = await identity_by_id(gw, staff.id)
            response = web.HTTPSeeOther("/account?saved=password")
            if renewed is not None:
                start_session(request, response, renewed)
            raise response
        elif action == "language":
            await set_staff_language(gw, staff.id, _check_language(gw, str(form.get("language", ""))))
        else:
            raise web.HTTPBadRequest(text="unknown action")
    except StaffError as exc:
        return render(
            request,
            "account.html",
            staff,
            status=400,
            errors={exc.field or "form": _say(request, staff, exc)},
            saved=None,
            languages=_ui_languages(gw),
        )
    raise web.HTTPSeeOther(f"/account?saved={action}")


# -- API --------------------------------------------------------------------------------------------
def _staff_error(exc: StaffError) -> web.Response:
    body: dict[str, Any] = {"error": str(exc)}
    if exc.field:
        body["field"] = exc.field
    return json_response(body, status=400)


def _string_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StaffError(StaffNote(S_("%(key)s: a list of texts."), {"key": key}), key)
    return value


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise StaffError(StaffNote(S_("%(key)s: a text."), {"key": key}), key)
    return value


@api
async def api_staff_list(request: web.Request, staff: StaffIdentity) -> web.Response:
    """Every account, never a hash (admins)."""
    if not staff.is_admin:
        return error(403, "admins only")
    return json_response(await list_staff(_gw(request)))


@api
async def api_staff_create(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{email, role, schools, language, password}`` → 201 with the account; without a
    ``password`` one is generated and returned once as ``generated_password``."""
    if not staff.is_admin:
        return error(403, "admins only")
    gw = _gw(request)
    body = await read_object(request)
    try:
        email, role = _string(body, "email") or "", _string(body, "role") or "liaison"
        language = _check_language(gw, _string(body, "language") or "en")
        schools = await known_schools(gw, _string_list(body, "schools") or []) if role == "liaison" else []
        password = _string(body, "password")
        generated = None
        if password is None:
            password = generated = generate_password()
        await add_staff(
            gw,
            email,
            role,
            schools,
            password=password,
            language=language,
            actor=staff.email,
            create_only=True,
        )
    except StaffError as exc:
        return _staff_error(exc)
    account = await find_staff(gw, email)
    if generated is not None and account is not None:
        account["generated_password"] = generated
    return json_response(account, status=201)


@api
async def api_staff_update(request: web.Request, staff: StaffIdentity) -> web.Response:
    """``{role?, schools?, language?, disabled?, password?, reset_password?}``: change an account.
    ``reset_password: true`` without ``password`` answers with a ``generated_password``."""
    if not staff.is_admin:
        return error(403, "admins only")
    gw = _gw(request)
    staff_id = _staff_id(request)
    if staff_id is None or await get_staff(gw, staff_id) is None:
        return error(404, "no such staff account")
    body = await read_object(request)
    unknown = set(body) - {"role", "schools", "language", "disabled", "password", "reset_password"}
    if unknown:
        return error(400, f"unknown keys: {', '.join(sorted(unknown))}")
    generated = None
    try:
        role, language = _string(body, "role"), _string(body, "language")
        schools = _string_list(body, "schools")
        if language is not None:
            _check_language(gw, language)
        if schools is not None:
            schools = await known_schools(gw, schools)
        if role is not None or schools is not None or language is not None:
            if role == "admin":
                schools = []
            await update_staff(gw, staff_id, role=role, schools=schools, language=language, actor=staff.email)
        if "disabled" in body:
            if not isinstance(body["disabled"], bool):
                return error(400, "disabled: true or false")
            await set_disabled(gw, staff_id, body["disabled"], actor=staff.email, actor_id=staff.id)
        password = _string(body, "password")
        if password is not None or body.get("reset_password") is True:
            generated = await reset_password(gw, staff_id, password, actor=staff.email)
    except StaffError as exc:
        return _staff_error(exc)
    account = await get_staff(gw, staff_id)
    if generated is not None and account is not None:
        account["generated_password"] = generated
    return json_response(account)


def add_staff_routes(app: web.Application) -> None:
    """Mount the staff pages and ``/api/staff``."""
    r = app.router
    r.add_get("/staff", staff_list_page)
    r.add_get("/staff/new", staff_new_get)
    r.add_post("/staff/new", staff_new_post)
    r.add_get("/staff/{staff_id}", staff_member_get)
    r.add_post("/staff/{staff_id}", staff_member_post)
    r.add_get("/account", account_get)
    r.add_post("/account", account_post)
    r.add_get("/api/staff", api_staff_list)
    r.add_post("/api/staff", api_staff_create)
    r.add_patch("/api/staff/{staff_id}", api_staff_update)
