"""The OpenAPI 3 description of ``/api/``, served at ``/api/openapi.json``.

Written by hand (the API is small); a test checks that every mounted ``/api/`` route is here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str = "query", description: str = "", required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": {"type": "string"},
    }


ERRORS = {
    "400": _json(_ref("Error"), "Malformed body or parameters"),
    "401": _json(_ref("Error"), "Missing or wrong bearer token"),
    "404": _json(_ref("Error"), "Unknown, or outside the caller's schools"),
    "413": {"description": "Body larger than http.max_body_bytes"},
}


def _op(summary: str, response: dict[str, Any], *, body: dict[str, Any] | None = None, **extra: Any) -> dict:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": response, **ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    op.update(extra)
    return op


def _with_responses(op: dict[str, Any], responses: dict[str, Any]) -> dict[str, Any]:
    op["responses"] = {**op["responses"], **responses}
    return op


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    "Endpoint": {
        "type": "object",
        "properties": {
            "channel": {"type": "string"},
            "kind": {"type": "string", "description": "The address kind (phone, email, whatsapp...)"},
            "label": {"type": "string"},
            "address": {"type": "string"},
            "masked": {"type": "string", "description": "The address as its kind shows it masked"},
            "opted_out": {"type": "boolean", "description": "Opted out on every channel"},
            "invalid": {"type": "boolean", "description": "Invalid on every channel"},
            "channels": {
                "type": "array",
                "description": "Consent on each channel reaching the address",
                "items": {
                    "type": "object",
                    "properties": {
                        "channel": {"type": "string"},
                        "state": {"type": "string", "enum": ["subscribed", "opted_out", "invalid"]},
                        "everywhere": {"type": "boolean"},
                        "since": {"type": "string", "format": "date-time", "nullable": True},
                    },
                },
            },
        },
    },
    "ConsentChange": {
        "type": "object",
        "properties": {
            "endpoint_id": {"type": "integer"},
            "channel": {"type": "string", "nullable": True, "description": "null: every channel"},
            "opted_out": {"type": "boolean"},
        },
        "required": ["endpoint_id", "opted_out"],
    },
    "Family": {
        "type": "object",
        "properties": {
            "family_id": {"type": "string"},
            "guardians": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "language": {"type": "string"},
                        "timezone": {"type": "string"},
                        "endpoints": {"type": "array", "items": _ref("Endpoint")},
                    },
                },
            },
            "students": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "school": {"type": "string"},
                        "grade": {"type": "string"},
                    },
                },
            },
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ImportReport": {
        "type": "object",
        "properties": {
            "families_imported": {"type": "integer"},
            "families_updated": {"type": "integer"},
            "students": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "warnings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Event": {
        "type": "object",
        "description": "The fields of an event file.",
        "required": ["id", "title", "start"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "school": {"type": "string"},
            "place": {"type": "string"},
            "address": {"type": "string"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "timezone": {"type": "string"},
            "audience": {"type": "string"},
            "rsvp": {"type": "boolean"},
            "reminders": {"type": "array", "items": {"type": "string"}},
            "url": {"type": "string"},
        },
    },
    "BroadcastRequest": {
        "type": "object",
        "properties": {
            "template": {"type": "string", "default": "workshop_invitation"},
            "event": {"oneOf": [{"type": "string", "description": "a stored event's id"}, _ref("Event")]},
            "audience": {"type": "string", "example": "school:Lincoln grade:6"},
            "channels": {"type": "array", "items": {"type": "string"}},
            "at": {"type": "string", "format": "date-time"},
            "urgent": {"type": "boolean"},
            "policy": {"type": "string", "enum": ["preferred", "all"]},
            "dry_run": {"type": "boolean"},
            "context": {"type": "object"},
        },
    },
    "BroadcastStatus": {
        "type": "object",
        "properties": {
            "broadcast_id": {"type": "integer"},
            "status": {"type": "string"},
            "families": {"type": "integer"},
            "messages": {"type": "integer"},
            "by_language": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_channel": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "skipped": {"type": "array", "items": {"type": "object"}},
            "funnel": {"type": "object"},
        },
    },
    "Survey": {
        "type": "object",
        "description": "The fields of a survey file (id, title, audience, questions...).",
        "required": ["id", "questions"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "audience": {"type": "string"},
            "questions": {"type": "array", "items": {"type": "object"}},
        },
    },
    "SurveyResults": {
        "type": "object",
        "properties": {
            "survey_id": {"type": "string"},
            "questions": {"type": "array", "items": {"type": "object"}},
            "respondents": {"type": "integer"},
            "response_rate": {"type": "number"},
        },
    },
    "Staff": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "liaison"]},
            "schools": {"type": "array", "items": {"type": "string"}},
            "language": {"type": "string", "description": "interface language"},
            "disabled": {"type": "boolean"},
            "password": {"type": "boolean", "description": "whether a password is set"},
            "token": {"type": "boolean", "description": "whether an API token is set"},
            "created_at": {"type": "string", "format": "date-time"},
            "generated_password": {"type": "string", "description": "only in the answer that made it"},
        },
    },
    "StaffRequest": {
        "type": "object",
        "required": ["email", "role"],
        "properties": {
            "email": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "liaison"]},
            "schools": {"type": "array", "items": {"type": "string"}},
            "language": {"type": "string"},
            "password": {"type": "string", "minLength": 8},
        },
    },
    "StaffChange": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["admin", "liaison"]},
            "schools": {"type": "array", "items": {"type": "string"}},
            "language": {"type": "string"},
            "disabled": {"type": "boolean"},
            "password": {"type": "string", "minLength": 8},
            "reset_password": {"type": "boolean"},
        },
    },
    "InboxItem": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "family_id": {"type": "string"},
            "channel": {"type": "string"},
            "received_at": {"type": "string"},
            "text": {"type": "string"},
            "language": {"type": "string"},
            "translation": {"type": "string"},
            "note": {
                "type": "string",
                "description": "why there is no translation, or that processing failed",
            },
            "classification": {
                "type": "string",
                "description": "free_text, unknown_sender... failed: processing kept failing",
            },
            "urgent": {"type": "boolean"},
            "truncated": {
                "type": "boolean",
                "description": "the text was cut at inbound.max_text_chars (the whole text is kept)",
            },
        },
    },
}


def _paths() -> dict[str, Any]:
    array = {"type": "array"}
    return {
        "/api/openapi.json": {
            "get": {"summary": "This document", "security": [], "responses": {"200": _json({})}}
        },
        "/api/me": {"get": _op("The caller's account and schools", _json({"type": "object"}))},
        "/api/families": {
            "get": _op(
                "Families (shape of `families list --json`), scoped to the caller's schools",
                _json({"type": "array", "items": _ref("Family")}),
                parameters=[_param("school"), _param("language"), _param("search")],
            )
        },
        "/api/families/import": {
            "post": _op(
                "Import a families CSV (admins)",
                _json(_ref("ImportReport")),
                body={"text/csv": {"schema": {"type": "string"}}},
                parameters=[_param("dry_run")],
            )
        },
        "/api/families/{family_id}": {
            "get": _op("One family", _json(_ref("Family")), parameters=[_param("family_id", "path")])
        },
        "/api/families/{family_id}/consent": {
            "post": _op(
                "Opt a family's address out (or back in) on one channel or every channel, for them",
                _json(_ref("Family")),
                body={"application/json": {"schema": _ref("ConsentChange")}},
                parameters=[_param("family_id", "path")],
            )
        },
        "/api/events": {
            "get": _op("Events", _json({"type": "array", "items": _ref("Event")})),
            "post": _op(
                "Create or update an event",
                _json({"type": "object"}, "Created"),
                body={"application/json": {"schema": _ref("Event")}},
            ),
        },
        "/api/audience": {
            "get": _op(
                "Families, guardians and messages an audience reaches (nothing is written)",
                _json({"type": "object"}),
                parameters=[_param("audience"), _param("channels"), _param("policy")],
            )
        },
        "/api/broadcasts": {
            "get": _op("Recent broadcasts", _json(array)),
            "post": _with_responses(
                _op(
                    "Plan a broadcast; an `Idempotency-Key` header makes retries create one broadcast",
                    _json(_ref("BroadcastStatus"), "Replayed (same Idempotency-Key and body)"),
                    body={"application/json": {"schema": _ref("BroadcastRequest")}},
                    parameters=[
                        _param(
                            "Idempotency-Key",
                            "header",
                            "1 to 150 characters; kept for http.idempotency_key_hours (default 24)",
                        )
                    ],
                ),
                {
                    "201": _json(_ref("BroadcastStatus"), "Created"),
                    "422": _json(_ref("Error"), "The Idempotency-Key was used with a different body"),
                },
            ),
        },
        "/api/broadcasts/{broadcast_id}": {
            "get": _op(
                "Status (shape of `broadcast status --json`)",
                _json(_ref("BroadcastStatus")),
                parameters=[_param("broadcast_id", "path")],
            )
        },
        "/api/surveys": {
            "get": _op("Surveys", _json(array)),
            "post": _op(
                "Store a survey and send its first question",
                _json({"type": "object"}, "Created (201)"),
                body={"application/json": {"schema": _ref("Survey")}},
            ),
        },
        "/api/surveys/{survey_id}/results": {
            "get": _op(
                "Results (shape of `survey results --format json`; `format=csv` for CSV)",
                _json(_ref("SurveyResults")),
                parameters=[
                    _param("survey_id", "path"),
                    _param("school"),
                    _param("language"),
                    _param("format"),
                ],
            )
        },
        "/api/surveys/{survey_id}/responses": {
            "get": _op(
                "One row per guardian with each question's answer (`format=csv` for CSV)",
                _json({"type": "object"}),
                parameters=[_param("survey_id", "path"), _param("format")],
            )
        },
        "/api/events/{event_id}/rsvps": {
            "get": _op(
                "Who is coming, by name: yes / no / maybe / no_answer lists (shape of `event rsvps --json`)",
                _json({"type": "object"}),
                parameters=[_param("event_id", "path")],
            )
        },
        "/api/inbox/{inbound_id}/answer": {
            "post": _op(
                "Record or correct the answer an inbox item gives (a suggested RSVP or survey answer)",
                _json({"type": "object"}),
                body={
                    "application/json": {
                        "schema": {"type": "object", "properties": {"value": {"type": "string"}}}
                    }
                },
                parameters=[_param("inbound_id", "path")],
            )
        },
        "/api/inbox": {
            "get": _op(
                "Inbox (shape of `inbox --json`), urgent first",
                _json({"type": "array", "items": _ref("InboxItem")}),
                parameters=[_param("unread"), _param("needs_interpreter")],
            )
        },
        "/api/inbox/{inbound_id}/interpreter": {
            "post": _op(
                "Flag an inbox item for a human interpreter (or clear the flag)",
                _json({"type": "object"}),
                body={
                    "application/json": {
                        "schema": {"type": "object", "properties": {"needed": {"type": "boolean"}}}
                    }
                },
                parameters=[_param("inbound_id", "path")],
            )
        },
        "/api/inbox/{inbound_id}/reply": {
            "post": _op(
                "Answer an inbox item in the staff language; translated and sent on the family's channel",
                _json({"type": "object"}, "Queued (201)"),
                body={
                    "application/json": {
                        "schema": {"type": "object", "properties": {"text": {"type": "string"}}}
                    }
                },
                parameters=[_param("inbound_id", "path")],
            )
        },
        "/api/reach": {
            "get": _op(
                "Delivery, reply and opt-out rates; families not reached in the last N broadcasts",
                _json({"type": "object"}),
                parameters=[_param("last")],
            )
        },
        "/api/audit": {"get": _op("The audit log (admins)", _json(array))},
        "/api/staff": {
            "get": _op(
                "Staff accounts, never a hash (admins; others 403)",
                _json({"type": "array", "items": _ref("Staff")}),
            ),
            "post": _op(
                "Add a staff account (admins); without `password` one is generated and returned once "
                "as `generated_password`",
                _json(_ref("Staff"), "Created (201)"),
                body={"application/json": {"schema": _ref("StaffRequest")}},
            ),
        },
        "/api/staff/{staff_id}": {
            "patch": _op(
                "Change an account's role, schools, interface language or state, or reset its password "
                "(admins); `reset_password: true` without `password` returns a `generated_password` once",
                _json(_ref("Staff")),
                body={"application/json": {"schema": _ref("StaffChange")}},
                parameters=[_param("staff_id", "path")],
            )
        },
    }


ADMINS_ONLY = {"403": _json(_ref("Error"), "The caller is not an admin")}


def _staff_paths(paths: dict[str, Any]) -> dict[str, Any]:
    """The admins-only operations answer 403 to everyone else."""
    for path in ("/api/staff", "/api/staff/{staff_id}", "/api/audit"):
        for op in paths[path].values():
            _with_responses(op, ADMINS_ONLY)
    return paths


def openapi_document(app: web.Application | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Family engagement gateway admin API",
            "version": "1",
            "description": (
                "Bearer-token API. A token is scoped like its owner: a liaison's token sees only "
                "families with a student at the liaison's schools; other families are 404."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": _staff_paths(_paths()),
    }
