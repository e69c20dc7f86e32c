"""Idempotency-Key on POST /api/broadcasts, through HTTP on SQLite and PostgreSQL: the same key
and body return the first broadcast, the same key with another body is refused with 422, and a
key can be used again once it expired (``http.idempotency_key_hours``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from gateway.storage.models import Broadcast, OutboxMessage


def _event() -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0)
    return {
        "id": "idem-night",
        "title": "Family Science Night",
        "description": "Experiments for the whole family.",
        "school": "Roosevelt",
        "place": "Roosevelt gym",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "rsvp": False,
    }


def _body(**changes: Any) -> dict[str, Any]:
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    body = {"event": _event(), "audience": "school:Roosevelt", "channels": ["sms", "email"], "at": at}
    return {**body, **changes}


async def _counts(gw: Any) -> tuple[int, int]:
    async with gw.db.session() as session:
        broadcasts = await session.scalar(select(func.count(Broadcast.id)))
        messages = await session.scalar(select(func.count(OutboxMessage.id)))
    return int(broadcasts or 0), int(messages or 0)


async def _post(web: Any, body: Any, key: str, raw: str | None = None) -> Any:
    headers = {**web.auth("admin"), "Idempotency-Key": key}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return await web.client.post("/api/broadcasts", data=raw.encode(), headers=headers)
    return await web.client.post("/api/broadcasts", json=body, headers=headers)


async def test_same_key_same_body_replays_and_other_body_is_422(web_db: Any) -> None:
    web = web_db
    body = _body()
    first = await _post(web, body, "nightly-sync-1")
    assert first.status == 201, await first.text()
    created = await first.json()
    # The same request, its keys in another order and spaced differently: the same body.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=3)
    again = await _post(web, None, "nightly-sync-1", raw=reordered)
    assert again.status == 200, await again.text()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["broadcast_id"] == created["broadcast_id"]
    assert await _counts(web.gw) == (1, created["messages"])

    other = await _post(web, _body(audience="school:Roosevelt grade:3"), "nightly-sync-1")
    assert other.status == 422
    message = (await other.json())["error"]
    assert "Idempotency-Key 'nightly-sync-1' was already used for a different request" in message
    assert f"broadcast {created['broadcast_id']}" in message
    assert "Idempotent-Replayed" not in other.headers
    assert await _counts(web.gw) == (1, created["messages"])

    # The key is per caller: another staff member's same key is a new broadcast.
    theirs = await web.client.post(
        "/api/broadcasts", json=body, headers={**web.auth("roosevelt"), "Idempotency-Key": "nightly-sync-1"}
    )
    assert theirs.status == 201, await theirs.text()


async def test_an_expired_key_can_be_used_again(web_db: Any) -> None:
    web = web_db
    first = await _post(web, _body(), "weekly")
    assert first.status == 201, await first.text()
    first_id = (await first.json())["broadcast_id"]
    # Within the 24 hours the key holds; a day and a bit later it has expired.
    async with web.gw.db.session() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == first_id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=23))
        )
        await session.commit()
    assert (await _post(web, _body(audience="school:Roosevelt grade:3"), "weekly")).status == 422
    async with web.gw.db.session() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == first_id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=24, minutes=1))
        )
        await session.commit()
    # One body for the new use and its replay: _body() reads the clock (to the second), and
    # two calls a second apart are two different requests.
    grade_3 = _body(audience="school:Roosevelt grade:3")
    reused = await _post(web, grade_3, "weekly")
    assert reused.status == 201, await reused.text()
    second_id = (await reused.json())["broadcast_id"]
    assert second_id != first_id
    # The new use holds the key now.
    replay = await _post(web, grade_3, "weekly")
    assert replay.status == 200
    assert (await replay.json())["broadcast_id"] == second_id


async def test_concurrent_requests_with_one_key_create_one_broadcast(web_db: Any) -> None:
    web = web_db
    same = _body()
    answers = await asyncio.gather(*(_post(web, same, "burst") for _ in range(4)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [200, 200, 200, 201], [await a.text() for a in answers]
    assert len({(await a.json())["broadcast_id"] for a in answers}) == 1
    audiences = ("school:Roosevelt", "school:Roosevelt grade:3", "school:Roosevelt language:so")
    bodies = [_body(audience=a) for a in audiences]
    answers = await asyncio.gather(*(_post(web, b, "burst-2") for b in bodies))
    statuses = sorted(a.status for a in answers)
    assert statuses == [201, 422, 422], [await a.text() for a in answers]
    broadcasts, _ = await _counts(web.gw)
    assert broadcasts == 2
