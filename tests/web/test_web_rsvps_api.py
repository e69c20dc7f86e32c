"""Who answered what, over the API, narrowed to the caller's schools; staff record an answer
from the inbox in one action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.broadcasts import send_broadcast
from gateway.domain.events import EventSpec
from gateway.sandbox_tools import inject_reply


async def test_rsvps_by_name_scoped_and_an_answer_recorded_from_the_inbox(web: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=6)).replace(microsecond=0)
    event = EventSpec(id="open-house", title="Open house", start=start, rsvp=True, place="Gym")
    await send_broadcast(web.gw, "workshop_invitation", event_spec=event, audience="")
    await web.gw.dispatcher.run_until_idle()
    assert (await inject_reply(web.gw, "+19135550101", "Sí"))["classification"] == "rsvp"  # Lincoln
    question = await inject_reply(web.gw, "+19135550171", "Haa, laakiin bas ma jiraa?")  # Roosevelt
    assert question["classification"] == "rsvp"

    everyone = await (await web.client.get("/api/events/open-house/rsvps", headers=web.auth("admin"))).json()
    assert {i["family_id"] for i in everyone["yes"]} == {"F001", "R100"}
    roosevelt = await (
        await web.client.get("/api/events/open-house/rsvps", headers=web.auth("roosevelt"))
    ).json()
    families = {i["family_id"] for bucket in ("yes", "no", "maybe", "no_answer") for i in roosevelt[bucket]}
    assert "R100" in families and "F001" not in families

    inbox = await (await web.client.get("/api/inbox", headers=web.auth("roosevelt"))).json()
    [item] = [i for i in inbox if i["family_id"] == "R100"]
    assert item["recorded_answer"] == "yes" and item["guardian"] == "Hodan Ali"
    assert item["in_reply_to"]["event_id"] == "open-house"
    corrected = await web.client.post(
        f"/api/inbox/{item['id']}/answer", json={"value": "maybe"}, headers=web.auth("roosevelt")
    )
    assert corrected.status == 200, await corrected.text()
    after = await (await web.client.get("/api/events/open-house/rsvps", headers=web.auth("admin"))).json()
    assert "R100" in {i["family_id"] for i in after["maybe"]}
    refused = await web.client.post(
        f"/api/inbox/{item['id']}/answer", json={"value": "maybe"}, headers=web.auth("lincoln")
    )
    assert refused.status == 404  # another school's family

    responses = await web.client.get(
        "/api/surveys/rsvp-open-house/responses?format=csv", headers=web.auth("admin")
    )
    assert responses.status == 200 and (await responses.text()).startswith("\ufefffamily_id,guardian")
