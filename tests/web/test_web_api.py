"""The JSON admin API: bearer auth, school scope (404 outside it), idempotent broadcasts,
malformed and oversized bodies, audit entries, and the OpenAPI document."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from gateway.sandbox_tools import inject_reply
from gateway.storage.models import AuditEntry, Broadcast, Family, OutboxMessage

#: The day the test events take place: always ahead, whatever day the suite runs.
UPCOMING_DAY = (date.today() + timedelta(days=90)).isoformat()
EVENT = {
    "id": "math-night-2030",
    "title": "Family Math Night",
    "description": "Games and snacks for the whole family.",
    "school": "Roosevelt",
    "place": "Roosevelt gym",
    "start": f"{UPCOMING_DAY}T17:30:00-06:00",
    "end": f"{UPCOMING_DAY}T18:30:00-06:00",
    "rsvp": True,
}
SURVEY = {
    "id": "bus-2030",
    "title": "Bus routes",
    "questions": [
        {
            "id": "rides_bus",
            "type": "yesno",
            "text": "Does your child ride the school bus?",
        }
    ],
}


async def audit_actions(gw: Any) -> list[tuple[str, str, str | None]]:
    async with gw.db.session() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target) for r in rows]


async def outbox_families(gw: Any, broadcast_id: int) -> set[str]:
    async with gw.db.session() as session:
        rows = await session.scalars(
            select(Family.external_id)
            .join(OutboxMessage, OutboxMessage.family_id == Family.id)
            .where(OutboxMessage.broadcast_id == broadcast_id)
        )
        return set(rows)


WRONG_AUTH = (
    {},
    {"Authorization": "Bearer gw_wrong"},
    {"Authorization": "Basic YWRtaW46eA=="},
    {"Authorization": "Bearer"},
)


async def test_api_needs_a_valid_bearer_token(web: Any) -> None:
    for headers, (method, path) in itertools.product(
        WRONG_AUTH,
        (
            ("GET", "/api/families"),
            ("GET", "/api/families/F001"),
            ("POST", "/api/broadcasts"),
            ("GET", "/api/inbox"),
            ("POST", "/api/families/import"),
        ),
    ):
        response = await web.client.request(method, path, headers=headers, data=b"{}")
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["error"]


async def test_disabled_account_token_stops_working(web: Any) -> None:
    from gateway.staff import disable_staff

    assert (await web.client.get("/api/me", headers=web.auth("lincoln"))).status == 200
    await disable_staff(web.gw, "lincoln@district.example")
    assert (await web.client.get("/api/me", headers=web.auth("lincoln"))).status == 401


async def test_admin_lists_every_family_in_the_cli_shape(web: Any) -> None:
    response = await web.client.get("/api/families", headers=web.auth("admin"))
    assert response.status == 200
    families = await response.json()
    ids = {f["family_id"] for f in families}
    assert {"F001", "F011", "R100", "W200"} <= ids
    f001 = next(f for f in families if f["family_id"] == "F001")
    assert {"family_id", "guardians", "students", "tags"} <= set(f001)
    assert {"name", "language", "timezone", "endpoints"} <= set(f001["guardians"][0])
    assert {"channel", "address", "opted_out"} <= set(f001["guardians"][0]["endpoints"][0])


async def test_liaison_sees_only_families_of_their_school(web_db: Any) -> None:
    web = web_db
    headers = web.auth("roosevelt")
    families = await (await web.client.get("/api/families", headers=headers)).json()
    assert {f["family_id"] for f in families} == {"F011", "R100"}
    # another school's family is 404, exactly like a family that does not exist
    other = await web.client.get("/api/families/F002", headers=headers)
    missing = await web.client.get("/api/families/NOPE", headers=headers)
    assert other.status == missing.status == 404
    assert await other.json() == await missing.json()
    assert (await web.client.get("/api/families/F011", headers=headers)).status == 200
    # search and filters cannot reach outside the scope either
    found = await (await web.client.get("/api/families?search=Warsame", headers=headers)).json()
    assert found == []
    found = await (await web.client.get("/api/families?school=Lincoln", headers=headers)).json()
    assert found == []
    found = await (await web.client.get("/api/families?search=ortega", headers=headers)).json()
    assert [f["family_id"] for f in found] == ["F011"]


async def test_liaison_broadcast_is_narrowed_to_their_schools(web: Any) -> None:
    headers = web.auth("roosevelt")
    body = {"template": "workshop_invitation", "event": EVENT, "audience": "", "channels": ["sms"]}
    response = await web.client.post("/api/broadcasts", json=body, headers=headers)
    assert response.status == 201, await response.text()
    summary = await response.json()
    assert await outbox_families(web.gw, summary["broadcast_id"]) == {"F011", "R100"}
    # asking for another school's families is refused: it would reach nobody
    event = {**EVENT, "id": "math-night-lincoln"}
    response = await web.client.post(
        "/api/broadcasts",
        json={**body, "event": event, "audience": "school:Lincoln"},
        headers=headers,
    )
    assert response.status == 400
    assert "school:lincoln matches no school of your families" in (await response.json())["error"]
    # status of a broadcast that reached only Lincoln families is 404 for the Roosevelt liaison
    admin = await web.client.post(
        "/api/broadcasts",
        json={
            **body,
            "event": {**EVENT, "id": "lincoln-only", "school": "Lincoln"},
            "audience": "school:Lincoln",
        },
        headers=web.auth("admin"),
    )
    lincoln_id = (await admin.json())["broadcast_id"]
    assert (await web.client.get(f"/api/broadcasts/{lincoln_id}", headers=headers)).status == 404
    assert (await web.client.get(f"/api/broadcasts/{lincoln_id}", headers=web.auth("lincoln"))).status == 200


async def test_liaison_cannot_create_an_event_of_another_school(web: Any) -> None:
    response = await web.client.post(
        "/api/events", json={**EVENT, "school": "Lincoln"}, headers=web.auth("roosevelt")
    )
    assert response.status == 403
    response = await web.client.post("/api/events", json=EVENT, headers=web.auth("roosevelt"))
    assert response.status == 201
    events = await (await web.client.get("/api/events", headers=web.auth("roosevelt"))).json()
    assert [e["id"] for e in events] == [EVENT["id"]]
    assert ("roosevelt@district.example", "event.save", EVENT["id"]) in await audit_actions(web.gw)


async def test_idempotency_key_makes_a_retried_post_create_one_broadcast(web_db: Any) -> None:
    web = web_db
    headers = {**web.auth("admin"), "Idempotency-Key": "sis-sync-2030-03-01"}
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {"event": EVENT, "audience": "school:Roosevelt", "channels": ["sms", "email"], "at": at}
    first = await web.client.post("/api/broadcasts", json=body, headers=headers)
    second = await web.client.post("/api/broadcasts", json=body, headers=headers)
    assert first.status == 201, await first.text()
    assert second.status == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    one, two = await first.json(), await second.json()
    assert one["broadcast_id"] == two["broadcast_id"]
    assert one["messages"] == two["messages"] == 2
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 1
        assert await session.scalar(select(func.count(OutboxMessage.id))) == 2
    # a different key is a different broadcast
    third = await web.client.post(
        "/api/broadcasts", json=body, headers={**web.auth("admin"), "Idempotency-Key": "other"}
    )
    assert third.status == 201
    assert (await third.json())["broadcast_id"] != one["broadcast_id"]
    # the status endpoint has the `broadcast status --json` shape
    status = await (await web.client.get(f"/api/broadcasts/{one['broadcast_id']}", headers=headers)).json()
    for key in (
        "broadcast_id",
        "status",
        "families",
        "messages",
        "by_language",
        "by_channel",
        "by_status",
        "skipped",
    ):
        assert key in status
    assert status["by_status"] == {"queued": 2}
    actions = [a for a in await audit_actions(web.gw) if a[1] == "broadcast.create"]
    assert len(actions) == 2


async def test_broadcast_to_a_stored_event_by_id_and_dry_run(web: Any) -> None:
    headers = web.auth("admin")
    assert (await web.client.post("/api/events", json=EVENT, headers=headers)).status == 201
    dry = await web.client.post(
        "/api/broadcasts",
        json={"event": EVENT["id"], "audience": "school:Roosevelt", "dry_run": True},
        headers=headers,
    )
    assert dry.status == 200
    data = await dry.json()
    assert data["status"] == "dry-run" and data["messages"] == 2
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 0
    unknown = await web.client.post("/api/broadcasts", json={"event": "no-such-event"}, headers=headers)
    assert unknown.status == 404


MALFORMED = (
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"event": EVENT, "at": "tomorrow"}).encode(), "ISO 8601"),
    (json.dumps({"event": EVENT, "at": f"{UPCOMING_DAY}T09:00:00"}).encode(), "UTC offset"),
    (json.dumps({"event": EVENT, "at": "2020-01-06T09:00:00-06:00"}).encode(), "this time has passed"),
    (json.dumps({"event": {"id": "x"}}).encode(), "title"),
    (json.dumps({"event": 42}).encode(), "event"),
    (json.dumps({"event": EVENT, "channels": ["pigeon"]}).encode(), "pigeon"),
    (json.dumps({"event": EVENT, "template": "no_such_template"}).encode(), "no_such_template"),
    (json.dumps({"event": EVENT, "audience": "colour:blue"}).encode(), "colour"),
    (json.dumps({"event": EVENT, "policy": "sometimes"}).encode(), "policy"),
    (json.dumps({"event": EVENT, "urgent": "yes"}).encode(), "urgent"),
)


async def test_malformed_broadcast_bodies_are_400(web: Any) -> None:
    for body, fragment in MALFORMED:
        response = await web.client.post(
            "/api/broadcasts",
            data=body,
            headers={**web.auth("admin"), "Content-Type": "application/json"},
        )
        assert response.status == 400, (body, await response.text())
        assert fragment in (await response.json())["error"], body
    # the server keeps serving
    assert (await web.client.get("/healthz")).status == 200


async def test_malformed_bodies_elsewhere_are_400_and_huge_ones_413(web: Any) -> None:
    headers = {**web.auth("admin"), "Content-Type": "application/json"}
    for path in ("/api/events", "/api/surveys", "/api/inbox/1/reply"):
        response = await web.client.post(path, data=b'{"a": ', headers=headers)
        assert response.status == 400, path
    assert (await web.client.post("/api/events", json={"id": "x"}, headers=headers)).status == 400
    assert (
        await web.client.post("/api/surveys", json={"id": "s", "questions": []}, headers=headers)
    ).status == 400
    big = b'{"text": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    response = await web.client.post("/api/broadcasts", data=big, headers=headers)
    assert response.status == 413
    response = await web.client.post("/api/families/import", data=b"x" * (1024 * 1024 + 10), headers=headers)
    assert response.status == 413
    assert (await web.client.get("/api/families", headers=web.auth("admin"))).status == 200


async def test_import_csv_body_reports_rows_and_is_admin_only(web: Any) -> None:
    csv_text = (
        "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,school,grade,"
        "student_name,timezone,tags\n"
        "N1,Ana Lopez,es,+19135550190,,,sms,Roosevelt,2,Eva Lopez,America/Chicago,\n"
        "N2,Bad Phone,es,12,,,sms,Roosevelt,2,Kid,America/Chicago,\n"
    )
    denied = await web.client.post(
        "/api/families/import", data=csv_text.encode(), headers=web.auth("roosevelt")
    )
    assert denied.status == 403
    response = await web.client.post(
        "/api/families/import", data=csv_text.encode(), headers=web.auth("admin")
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["families_imported"] == 1
    assert [e["line"] for e in report["errors"]] == [3]
    assert (await web.client.get("/api/families/N1", headers=web.auth("roosevelt"))).status == 200
    assert ("admin@district.example", "families.import", None) in await audit_actions(web.gw)
    empty = await web.client.post("/api/families/import", data=b"", headers=web.auth("admin"))
    assert empty.status == 400


async def test_survey_post_results_scoped(web: Any) -> None:
    response = await web.client.post("/api/surveys", json=SURVEY, headers=web.auth("roosevelt"))
    assert response.status == 201, await response.text()
    sent = await response.json()
    assert sent["survey_id"] == "bus-2030" and sent["families"] == 2
    await web.gw.dispatcher.run_until_idle()
    await inject_reply(web.gw, "+19135550111", "yes", "sms")
    results = await web.client.get("/api/surveys/bus-2030/results", headers=web.auth("roosevelt"))
    assert results.status == 200
    data = await results.json()
    assert data["questions"][0]["answers"] == {"yes": 1}
    assert data["respondents"] == 1 and data["response_rate"] == 0.5
    # the Lincoln liaison has no family in this survey: 404
    assert (await web.client.get("/api/surveys/bus-2030/results", headers=web.auth("lincoln"))).status == 404
    csv_response = await web.client.get("/api/surveys/bus-2030/results?format=csv", headers=web.auth("admin"))
    assert csv_response.status == 200
    csv_text = await csv_response.text()
    assert "rides_bus" in csv_text and csv_text.startswith("\ufeff")  # marked UTF-8 for spreadsheets
    by_language = await (
        await web.client.get("/api/surveys/bus-2030/results?language=so", headers=web.auth("admin"))
    ).json()
    assert by_language["questions"][0]["answers"] == {}
    assert ("roosevelt@district.example", "survey.send", "bus-2030") in await audit_actions(web.gw)


async def test_inbox_scope_and_reply(web: Any) -> None:
    await inject_reply(web.gw, "+19135550111", "¿Hay bus?", "sms")
    await inject_reply(web.gw, "+19135550102", "Waa maxay?", "sms")
    roosevelt = await (await web.client.get("/api/inbox", headers=web.auth("roosevelt"))).json()
    admin = await (await web.client.get("/api/inbox", headers=web.auth("admin"))).json()
    assert {i["family_id"] for i in roosevelt} == {"F011"}
    assert {i["family_id"] for i in admin} >= {"F011", "F002"}
    item = roosevelt[0]
    for key in (
        "id",
        "family_id",
        "channel",
        "received_at",
        "text",
        "language",
        "translation",
        "classification",
        "urgent",
    ):
        assert key in item
    lincoln_item = next(i for i in admin if i["family_id"] == "F002")
    # replying to another school's item is 404
    denied = await web.client.post(
        f"/api/inbox/{lincoln_item['id']}/reply",
        json={"text": "Hello"},
        headers=web.auth("roosevelt"),
    )
    assert denied.status == 404
    assert (
        await web.client.post(f"/api/inbox/{item['id']}/reply", json={}, headers=web.auth("roosevelt"))
    ).status == 400
    reply = await web.client.post(
        f"/api/inbox/{item['id']}/reply",
        json={"text": "Yes, a bus leaves at 5 pm."},
        headers=web.auth("roosevelt"),
    )
    assert reply.status == 201, await reply.text()
    sent = await reply.json()
    assert sent["channel"] == "sms" and sent["language"] == "es-MX"
    # No engine here: the answer goes in English, with the note from the Spanish catalog.
    assert sent["received"] == "english" and sent["translation"] == "fallback"
    async with web.gw.db.session() as session:
        row = await session.get(OutboxMessage, sent["message_id"])
        assert row.address == "+19135550111" and row.conversation
    assert ("roosevelt@district.example", "inbox.reply", str(item["id"])) in await audit_actions(web.gw)


async def test_a_reply_to_a_family_that_opted_out_is_refused_and_nothing_queued(web: Any) -> None:
    asked = await inject_reply(web.gw, "+19135550111", "¿Hay bus para la reunión?", "sms")
    await inject_reply(web.gw, "+19135550111", "STOP", "sms")  # then the family opts out of SMS
    async with web.gw.db.session() as session:
        before = await session.scalar(select(func.count(OutboxMessage.id)))
    path = f"/api/inbox/{asked['inbound_id']}/reply"
    reply = await web.client.post(path, json={"text": "Yes, at 5 pm."}, headers=web.auth("roosevelt"))
    assert reply.status == 400
    assert "cannot be written to on sms" in (await reply.json())["error"]
    # The inbox page says the same beside the item (in the staff member's language).
    await web.login("roosevelt@district.example")
    token = await web.csrf("/inbox")
    page = await web.client.post(
        f"/inbox/{asked['inbound_id']}/reply", data={"csrf_token": token, "text": "Yes, at 5 pm."}
    )
    assert page.status == 400
    assert "opted out there, or the address does not work. Nothing was sent." in await page.text()
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(OutboxMessage.id))) == before


async def test_reach_report_scoped(web: Any) -> None:
    body = {"event": EVENT, "audience": "", "channels": ["sms", "email"]}
    response = await web.client.post("/api/broadcasts", json=body, headers=web.auth("admin"))
    assert response.status == 201
    await web.gw.dispatcher.run_until_idle()
    report = await (await web.client.get("/api/reach?last=3", headers=web.auth("roosevelt"))).json()
    assert [r["school"] for r in report["by_school"]] == ["Roosevelt"]
    assert report["by_school"][0]["delivery_rate"] == 1.0
    admin = await (await web.client.get("/api/reach", headers=web.auth("admin"))).json()
    assert {r["school"] for r in admin["by_school"]} == {"Lincoln", "Roosevelt", "Washington"}
    # families with only a Telegram endpoint were not reached by an sms+email broadcast
    unreached = {u["family_id"] for u in admin["unreached"]}
    assert {"F004", "F007"} <= unreached
    assert (await web.client.get("/api/reach?last=x", headers=web.auth("admin"))).status == 400


async def test_audience_count_is_scoped(web: Any) -> None:
    admin = await (await web.client.get("/api/audience?audience=", headers=web.auth("admin"))).json()
    roosevelt = await (await web.client.get("/api/audience?audience=", headers=web.auth("roosevelt"))).json()
    assert admin["families"] > roosevelt["families"] == 2
    assert roosevelt["by_language"] == {"es-MX": 1, "so": 1}
    bad = await web.client.get("/api/audience?audience=colour:red", headers=web.auth("admin"))
    assert bad.status == 400


async def test_openapi_lists_every_api_route(web: Any) -> None:
    response = await web.client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    mounted = set()
    for route in web.client.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/") and route.method != "HEAD":
            mounted.add((path, route.method.lower()))
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert mounted == documented


async def test_audit_log_is_admin_only(web: Any) -> None:
    assert (await web.client.get("/api/audit", headers=web.auth("lincoln"))).status == 403
    entries = await (await web.client.get("/api/audit", headers=web.auth("admin"))).json()
    assert {e["action"] for e in entries} >= {"staff.add"}


async def test_a_mistyped_audience_is_refused_not_sent_to_nobody(web: Any) -> None:
    body = {"event": EVENT, "audience": "school:Lincon", "channels": ["sms"]}
    refused = await web.client.post("/api/broadcasts", json=body, headers=web.auth("admin"))
    assert refused.status == 400
    assert "school:lincon matches no school" in (await refused.json())["error"]
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 0
    # A dry run still shows the problem as a note, and who the audience reaches (nobody).
    dry = await web.client.post("/api/broadcasts", json={**body, "dry_run": True}, headers=web.auth("admin"))
    assert dry.status == 200 and any("matches no school" in n for n in (await dry.json())["notes"])
