"""Replies bound to the right prompt, staff confirming answers in one action, who answered what
by name, opt-out phrasing, urgent replies in any language, no invitations to the past, and time
zones that are never guessed silently."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import time_machine
import yaml
from twoway_support import EXAMPLES, ON_CALL, jcall, reply, sent_to, with_gateway, write_csv

from gateway.outbox.quiet_hours import defer_for_quiet_hours_everywhere, in_quiet_hours

MARIA = "+19135550101"
AMINA = "+19135550102"


def event_file(folder: Path, event_id: str, days: float, **extra: Any) -> Path:
    """An invitation with an RSVP, ``days`` from now (negative: already started)."""
    start = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    data = {
        "id": event_id,
        "title": f"Workshop {event_id}",
        "place": "Lincoln library",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "audience": "school:Lincoln",
        "rsvp": True,
        **extra,
    }
    path = folder / f"{event_id}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def invite(cli: Any, config: Path, path: Path) -> dict[str, Any]:
    return jcall(cli, ["broadcast", "send", "workshop_invitation", "--event", str(path), "--json"], config)


def rsvps(cli: Any, config: Path, event_id: str) -> dict[str, Any]:
    return jcall(cli, ["event", "rsvps", event_id, "--json"], config)


def test_a_reply_binds_to_the_most_recent_open_prompt(cli: Any, families: Path, tmp_path: Path) -> None:
    invite(cli, families, event_file(tmp_path, "far", 10))
    invite(cli, families, event_file(tmp_path, "near", 1))
    assert reply(cli, families, MARIA, "Sí")["classification"] == "rsvp"
    assert [i["family_id"] for i in rsvps(cli, families, "near")["yes"]] == ["F001"]
    assert rsvps(cli, families, "far")["yes"] == []

    # Once "near" has started, a reply is never bound to it: the older invitation, still open,
    # takes it.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=2), tick=False):
        assert reply(cli, families, AMINA, "haa")["classification"] == "rsvp"
        assert [i["family_id"] for i in rsvps(cli, families, "far")["yes"]] == ["F002"]
        assert "F002" in [i["family_id"] for i in rsvps(cli, families, "near")["no_answer"]]
        # She may have meant "near", the last invitation she got: a person is told to check,
        # in the survey's words ("Yes"), not the family's.
        [item] = [i for i in jcall(cli, ["inbox", "--json"], families) if i["family_id"] == "F002"]
        assert item["note"] == (
            "Recorded “Yes” for the RSVP to “Workshop far”, which is still open; the family's latest "
            "question, from “Workshop near”, no longer takes answers: check which one they meant."
        )
    # When both have started, the reply is late.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=11), tick=False):
        assert reply(cli, families, AMINA, "maya")["classification"] == "late_answer"


def test_a_late_answer_goes_to_staff_with_a_note_and_records_nothing(
    cli: Any, families: Path, tmp_path: Path
) -> None:
    invite(cli, families, event_file(tmp_path, "soon", 1))
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1, hours=1), tick=False):
        out = reply(cli, families, MARIA, "Sí")
        assert out["classification"] == "late_answer" and out["replies"] == []
        result = rsvps(cli, families, "soon")
    assert result["yes"] == [] and "F001" in [i["family_id"] for i in result["no_answer"]]
    [item] = jcall(cli, ["inbox", "--json"], families)
    assert "the event has already started" in item["note"] and item["recorded_answer"] is None
    assert item["in_reply_to"]["event_id"] == "soon"


def test_no_invitation_to_the_past(cli: Any, families: Path, tmp_path: Path) -> None:
    past = event_file(tmp_path, "gone", -1)
    result = cli(["broadcast", "send", "workshop_invitation", "--event", str(past)], families)
    assert result.exit_code == 2 and "in the past" in result.output
    too_late = event_file(tmp_path, "tomorrow", 1)
    at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    result = cli(["broadcast", "send", "workshop_invitation", "--event", str(too_late), "--at", at], families)
    assert result.exit_code == 2 and "after the event" in result.output
    # A send time that has passed (a mistyped year) is refused, not sent at once.
    passed = (datetime.now(UTC) - timedelta(days=366)).isoformat()
    survey = ["survey", "send", str(EXAMPLES / "transport-survey.yaml")]
    for command in (["broadcast", "send", "workshop_invitation", "--event", str(too_late)], survey):
        result = cli([*command, "--at", passed], families)
        assert result.exit_code == 2 and "this time has passed" in " ".join(result.output.split()), command
    # A survey that would close before it is sent, or whose close has no UTC offset, is refused
    # with the field named, nothing sent (it would take no answer, or crash).
    definition = yaml.safe_load((EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8"))
    for close_at, said in ((passed, "close_at"), ("2027-03-05T17:00:00", "close_at: add a UTC offset")):
        path = tmp_path / "closing.yaml"
        path.write_text(yaml.safe_dump({**definition, "close_at": close_at}), encoding="utf-8")
        result = cli(["survey", "send", str(path)], families)
        assert result.exit_code == 2 and said in " ".join(result.output.split()), result.output
    assert jcall(cli, ["sandbox", "outbox", "--json"], families) == []
    assert rsvps_missing(cli, families, "gone")


def rsvps_missing(cli: Any, config: Path, event_id: str) -> bool:
    return cli(["event", "rsvps", event_id, "--json"], config).exit_code == 2


def test_staff_confirm_a_suggested_answer_in_one_action(cli: Any, families: Path, tmp_path: Path) -> None:
    invite(cli, families, event_file(tmp_path, "math", 5))
    out = reply(cli, families, MARIA, "Creo que sí vamos con mis dos hijos y mi mamá")
    assert out["classification"] == "free_text"
    [item] = jcall(cli, ["inbox", "--json"], families)
    assert item["suggested_answer"] == "yes" and item["recorded_answer"] is None
    assert item["guardian"] == "Maria Hernández"
    assert {s["name"] for s in item["students"]} == {"Sofía Hernández", "Mateo Hernández"}
    assert item["in_reply_to"]["question_id"] == "rsvp" and item["in_reply_to"]["choices"] == [
        "yes",
        "no",
        "maybe",
    ]
    assert rsvps(cli, families, "math")["yes"] == []
    assert cli(["inbox", "answer", str(item["id"]), "yes"], families).exit_code == 0
    assert [i["guardian"] for i in rsvps(cli, families, "math")["yes"]] == ["Maria Hernández"]
    # Correcting it is the same one action.
    assert cli(["inbox", "answer", str(item["id"]), "maybe"], families).exit_code == 0
    result = rsvps(cli, families, "math")
    assert result["yes"] == [] and [i["family_id"] for i in result["maybe"]] == ["F001"]
    assert cli(["inbox", "answer", str(item["id"]), "perhaps"], families).exit_code == 2
    # The item says what is recorded now, not the gateway's earlier reading.
    [item] = jcall(cli, ["inbox", "--json"], families)
    assert item["recorded_answer"] == "maybe"
    assert item["note"] == "“Maybe” recorded by staff for the RSVP to “Workshop math”."


def test_rsvps_and_survey_responses_by_name(cli: Any, families: Path, tmp_path: Path) -> None:
    invite(cli, families, event_file(tmp_path, "night", 4))
    reply(cli, families, MARIA, "1")
    reply(cli, families, AMINA, "maya")
    result = rsvps(cli, families, "night")
    assert set(result) == {"event_id", "title", "yes", "no", "maybe", "no_answer"}
    [yes] = result["yes"]
    assert (
        yes
        == {
            "family_id": "F001",
            "guardian": "Maria Hernández",
            "language": "es",
            "channel": "sms",
            "answered_at": yes["answered_at"],
        }
        and yes["answered_at"]
    )
    assert [i["family_id"] for i in result["no"]] == ["F002"]
    assert len(result["no_answer"]) >= 2 and all(i["answered_at"] is None for i in result["no_answer"])

    jcall(cli, ["survey", "send", str(EXAMPLES / "transport-survey.yaml"), "--json"], families)
    reply(cli, families, MARIA, "no")
    reply(cli, families, MARIA, "Todo bien")
    data = jcall(cli, ["survey", "responses", "transport-survey", "--json"], families)
    maria = next(r for r in data["responses"] if r["guardian"] == "Maria Hernández")
    assert maria["answers"] == {"rides_bus": "no", "comments": "Todo bien"}
    csv_text = cli(["survey", "responses", "transport-survey", "--format", "csv"], families).stdout
    assert (
        csv_text.splitlines()[0]
        == "family_id,guardian,language,channel,status,answered_at,rides_bus,pickup_time,comments"
    )
    assert any(line.startswith("F001,Maria Hernández,es,sms,completed,") for line in csv_text.splitlines())


def test_choice_numbers_as_phones_type_them(cli: Any, families: Path, tmp_path: Path) -> None:
    # An emoji keycap, a circled digit: what a phone's emoji or symbol keyboard gives for "2".
    invite(cli, families, event_file(tmp_path, "keys", 4))
    baraka = "+19135550106"
    for sender, text in ((MARIA, "2️⃣"), (AMINA, "①"), (baraka, "3️⃣ asante")):
        assert reply(cli, families, sender, text)["classification"] == "rsvp", text
    answered = rsvps(cli, families, "keys")
    assert [i["family_id"] for i in answered["no"]] == ["F001"]
    assert [i["family_id"] for i in answered["yes"]] == ["F002"]
    assert [i["family_id"] for i in answered["maybe"]] == ["F006"]


def test_a_reply_that_takes_its_answer_back_is_not_recorded(cli: Any, families: Path, tmp_path: Path) -> None:
    invite(cli, families, event_file(tmp_path, "undecided", 4))
    taken_back = reply(cli, families, MARIA, "No, sí")
    assert taken_back["classification"] != "rsvp"
    answered = rsvps(cli, families, "undecided")
    assert "F001" in [i["family_id"] for i in answered["no_answer"]]
    # No confirmation of an answer she did not settle on: she is asked again instead.
    (asked_again,) = [m["body"] for m in sent_to(cli, families, MARIA) if m["conversation"]]
    assert "1" in asked_again and "no podrá venir" not in asked_again.lower()
    # A count after the answer is not a second answer.
    assert reply(cli, families, AMINA, "Haa, 2 qof")["classification"] == "rsvp"
    assert [i["family_id"] for i in rsvps(cli, families, "undecided")["yes"]] == ["F002"]


def test_opt_out_phrasing_families_use(cli: Any, families: Path, tmp_path: Path) -> None:
    invite(cli, families, event_file(tmp_path, "talk", 4))
    assert reply(cli, families, MARIA, "STOP PLEASE")["classification"] == "opt_out"
    assert (
        reply(cli, families, AMINA, "Cancel my RSVP please, we cannot come any more")["classification"]
        != "opt_out"
    )
    [item] = [i for i in jcall(cli, ["inbox", "--json"], families) if i["family_id"] == "F002"]
    assert item["possible_opt_out"] is True
    confirmations = [m for m in sent_to(cli, families, MARIA) if m["conversation"]]
    assert len(confirmations) == 1 and "START" in confirmations[0]["body"]


def test_an_urgent_reply_in_any_language_alerts_on_call_and_answers_the_family(
    cli: Any, families: Path, tmp_path: Path
) -> None:
    invite(cli, families, event_file(tmp_path, "any", 4))
    out = reply(cli, families, AMINA, "Wiilkayga waa la garaacay oo dhiig ayuu ka imanayaa")
    assert out["classification"] == "free_text"
    [item] = jcall(cli, ["inbox", "--json"], families)
    assert item["urgent"] is True
    alerts = [m for m in jcall(cli, ["sandbox", "outbox", "--json"], families) if m["address"] == ON_CALL]
    assert alerts and "URGENT" in alerts[0]["subject"]
    [crisis] = [m for m in sent_to(cli, families, AMINA) if m["conversation"]]
    assert crisis["language"] == "so" and "Crisis Line" in crisis["body"] and "988" in crisis["body"]
    assert "911" in crisis["body"]


def test_a_blank_time_zone_is_a_warning_and_quiet_hours_take_the_strictest_window(
    cli: Any, tw_config: Path, tmp_path: Path
) -> None:
    rows = [
        {"family_id": "T1", "guardian_name": "Ana", "language": "es", "phone": "+19135550301",
         "preferred_channel": "sms", "school": "Lincoln", "grade": "3", "student_name": "Leo",
         "timezone": "America/Los_Angeles"},
        {"family_id": "T2", "guardian_name": "Ben", "language": "en", "phone": "+19135550302",
         "preferred_channel": "sms", "school": "Lincoln", "grade": "3", "student_name": "Max"},
    ]  # fmt: skip
    report = jcall(cli, ["families", "import", str(write_csv(tmp_path / "f.csv", rows)), "--json"], tw_config)
    [warning] = [w for w in report["warnings"] if w["column"] == "timezone"]
    assert warning["line"] == 3 and "most restrictive" in warning["reason"]

    # At 07:30 in Chicago it is 05:30 in Los Angeles: still quiet there, so Ben (zone unknown)
    # waits until 08:00 in Los Angeles, like the family who lives there.
    zones = ["America/Chicago", "America/Los_Angeles"]
    moment = datetime(2031, 5, 6, 12, 30, tzinfo=UTC)  # 07:30 Chicago, 05:30 Los Angeles
    start, end = time(20, 0), time(8, 0)
    assert not in_quiet_hours(moment, "America/New_York", start, end)
    resume = defer_for_quiet_hours_everywhere(moment, zones, start, end)
    assert resume == datetime(2031, 5, 6, 15, 0, tzinfo=UTC)  # 08:00 in Los Angeles

    async def planned(gw: Any) -> dict[str, datetime]:
        from sqlalchemy import select

        from gateway.storage.models import OutboxMessage

        async with gw.db.session() as session:
            return {r.address: r.due_at for r in await session.scalars(select(OutboxMessage))}

    config = tw_config
    data = yaml.safe_load(config.read_text())
    data["quiet_hours"] = {"enabled": True, "start": "20:00", "end": "08:00"}
    config.write_text(yaml.safe_dump(data))
    event = event_file(tmp_path, "tz", 20)
    with time_machine.travel(datetime.now(UTC).replace(hour=13, minute=30), tick=False):
        invite(cli, config, event)
    due = with_gateway(config, planned)
    assert due["+19135550302"] >= due["+19135550301"]
