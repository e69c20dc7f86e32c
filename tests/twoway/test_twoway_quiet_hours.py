"""Quiet hours across time zones and daylight-saving changes: SMS and Telegram wait for the
window's end in the family's own zone, e-mail does not, ``--urgent`` bypasses, and a
conversation reply goes at once."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from twoway_support import jcall, outbox_rows, reply, sent_to, twoway_config, write_csv

from gateway.outbox.quiet_hours import defer_for_quiet_hours, in_quiet_hours

CHICAGO = "America/Chicago"
KOLKATA = "Asia/Kolkata"
START, END = time(20, 0), time(8, 0)

FAMILIES = [
    {
        "family_id": "Q1",
        "guardian_name": "Ana Ruiz",
        "language": "es",
        "phone": "+19135550201",
        "preferred_channel": "sms",
        "school": "Lincoln",
        "grade": "6",
        "student_name": "Leo Ruiz",
        "timezone": CHICAGO,
    },
    {
        "family_id": "Q2",
        "guardian_name": "Priya Nair",
        "language": "ne",
        "phone": "+919876543210",
        "preferred_channel": "sms",
        "school": "Lincoln",
        "grade": "6",
        "student_name": "Asha Nair",
        "timezone": KOLKATA,
    },
    {
        "family_id": "Q3",
        "guardian_name": "Tom Baker",
        "language": "en",
        "email": "tom.baker@example.net",
        "preferred_channel": "email",
        "school": "Lincoln",
        "grade": "6",
        "student_name": "Ben Baker",
        "timezone": CHICAGO,
    },
    {
        "family_id": "Q4",
        "guardian_name": "Ravi Das",
        "language": "en",
        "telegram_chat_id": "660001",
        "preferred_channel": "telegram",
        "school": "Lincoln",
        "grade": "6",
        "student_name": "Mira Das",
        "timezone": KOLKATA,
    },
]
ADDRESS = {"Q1": "+19135550201", "Q2": "+919876543210", "Q3": "tom.baker@example.net", "Q4": "660001"}


def _event(folder: Path) -> Path:
    path = folder / "event.yaml"
    path.write_text(
        "\n".join(
            [
                "id: quiet-event",
                "title: Science fair",
                "description: Projects from every class.",
                "school: Lincoln",
                "place: Gym",
                'start: "2027-03-20T17:30:00-05:00"',
                'end: "2027-03-20T19:00:00-05:00"',
                "timezone: America/Chicago",
                'audience: "school:Lincoln"',
                "rsvp: false",
                "reminders: []",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def quiet_config(cli: Any, tmp_path: Path) -> Path:
    config = twoway_config(tmp_path / "gw", quiet_hours={"enabled": True, "start": "20:00", "end": "08:00"})
    report = jcall(
        cli, ["families", "import", str(write_csv(tmp_path / "f.csv", FAMILIES)), "--json"], config
    )
    assert report["families_imported"] == 4 and not report["errors"], report
    return config


def _due(config: Path, broadcast_id: int) -> dict[str, datetime]:
    by_address = {row.address: row.due_at for row in outbox_rows(config, broadcast_id=broadcast_id)}
    return {family: by_address[address].astimezone(UTC) for family, address in ADDRESS.items()}


def test_evening_before_us_spring_forward(cli: Any, quiet_config: Path, tmp_path: Path) -> None:
    # 21:00 in Chicago (CST, -06:00) the evening before the 2027 spring-forward date (14 March).
    at = "2027-03-13T21:00:00-06:00"
    sent = jcall(
        cli,
        ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--at", at, "--json"],
        quiet_config,
    )
    assert sent["messages"] == 4 and sent["deferred_quiet_hours"] == 1
    due = _due(quiet_config, sent["broadcast_id"])
    # Chicago SMS waits for 08:00 local the next day, which is CDT (-05:00): 13:00 UTC, not 14:00.
    assert due["Q1"] == datetime(2027, 3, 14, 13, 0, tzinfo=UTC)
    assert due["Q1"].astimezone(ZoneInfo(CHICAGO)).hour == 8
    send_at = datetime(2027, 3, 14, 3, 0, tzinfo=UTC)
    # The same moment is 08:30 in Kolkata: SMS and Telegram there go at once.
    assert due["Q2"] == send_at and due["Q4"] == send_at
    # E-mail is never deferred.
    assert due["Q3"] == send_at


def test_morning_in_chicago_is_night_in_kolkata(cli: Any, quiet_config: Path, tmp_path: Path) -> None:
    at = "2027-03-14T10:00:00-05:00"  # 15:00 UTC = 20:30 in Kolkata
    sent = jcall(
        cli,
        ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--at", at, "--json"],
        quiet_config,
    )
    assert sent["deferred_quiet_hours"] == 2
    due = _due(quiet_config, sent["broadcast_id"])
    assert due["Q1"] == due["Q3"] == datetime(2027, 3, 14, 15, 0, tzinfo=UTC)
    resume = datetime(2027, 3, 15, 2, 30, tzinfo=UTC)  # 08:00 IST the next day
    assert due["Q2"] == resume and due["Q4"] == resume


def test_urgent_bypasses_quiet_hours(cli: Any, quiet_config: Path, tmp_path: Path) -> None:
    at = "2027-03-13T23:30:00-06:00"
    sent = jcall(
        cli,
        [
            "broadcast",
            "send",
            "workshop_invitation",
            "--event",
            str(_event(tmp_path)),
            "--at",
            at,
            "--urgent",
            "--json",
        ],
        quiet_config,
    )
    assert sent["deferred_quiet_hours"] == 0
    moment = datetime.fromisoformat(at).astimezone(UTC)
    assert set(_due(quiet_config, sent["broadcast_id"]).values()) == {moment}


def test_now_in_quiet_hours_broadcast_waits_but_a_help_reply_goes_at_once(cli: Any, tmp_path: Path) -> None:
    local = datetime.now(ZoneInfo(CHICAGO))
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=1)).strftime("%H:%M")
    config = twoway_config(tmp_path / "gw", quiet_hours={"enabled": True, "start": start, "end": end})
    jcall(cli, ["families", "import", str(write_csv(tmp_path / "f.csv", FAMILIES[:1])), "--json"], config)
    sent = jcall(
        cli, ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--json"], config
    )
    assert sent["deferred_quiet_hours"] == 1
    out = reply(cli, config, ADDRESS["Q1"], "AYUDA")
    assert out["classification"] == "help"
    assert [r["status"] for r in out["replies"]] == ["delivered"]
    # The dispatch the reply triggered did not send the deferred invitation.
    bodies = [m["body"] for m in sent_to(cli, config, ADDRESS["Q1"])]
    assert len(bodies) == 1 and "Test District" in bodies[0]
    [row] = outbox_rows(config, broadcast_id=sent["broadcast_id"])
    assert row.status == "queued" and row.due_at > datetime.now(UTC)


@pytest.mark.parametrize(
    ("moment", "zone", "expected"),
    [
        # Before the spring-forward night: resume at 08:00 CDT.
        ("2027-03-14T03:00:00+00:00", CHICAGO, "2027-03-14T13:00:00+00:00"),
        # 02:30 local does not exist that night; already in the window after midnight.
        ("2027-03-14T07:59:00+00:00", CHICAGO, "2027-03-14T13:00:00+00:00"),
        # Fall back (7 Nov 2027): 21:00 CDT → 08:00 CST.
        ("2027-11-07T02:00:00+00:00", CHICAGO, "2027-11-07T14:00:00+00:00"),
        # Outside the window: unchanged.
        ("2027-03-14T14:00:00+00:00", CHICAGO, "2027-03-14T14:00:00+00:00"),
        # Kolkata has no DST: 20:30 IST → 08:00 IST the next day.
        ("2027-03-14T15:00:00+00:00", KOLKATA, "2027-03-15T02:30:00+00:00"),
        # Exactly at the start is quiet, exactly at the end is not.
        ("2027-06-01T01:00:00+00:00", CHICAGO, "2027-06-01T13:00:00+00:00"),
        ("2027-06-01T13:00:00+00:00", CHICAGO, "2027-06-01T13:00:00+00:00"),
        # After midnight local, resume the same local morning.
        ("2027-06-01T08:00:00+00:00", CHICAGO, "2027-06-01T13:00:00+00:00"),
    ],
)
def test_defer_for_quiet_hours(moment: str, zone: str, expected: str) -> None:
    got = defer_for_quiet_hours(datetime.fromisoformat(moment), zone, START, END)
    assert got == datetime.fromisoformat(expected)
    assert got.tzinfo is not None


def test_window_ending_inside_the_spring_forward_gap() -> None:
    # Quiet until 02:30, which does not exist on 14 March 2027 in Chicago: resume at 03:30 CDT.
    got = defer_for_quiet_hours(datetime(2027, 3, 14, 6, 0, tzinfo=UTC), CHICAGO, time(22, 0), time(2, 30))
    assert got == datetime(2027, 3, 14, 8, 30, tzinfo=UTC)
    assert got.astimezone(ZoneInfo(CHICAGO)).strftime("%H:%M") == "03:30"


def test_same_window_is_never_quiet_and_daytime_window() -> None:
    moment = datetime(2027, 3, 14, 18, 0, tzinfo=UTC)
    assert not in_quiet_hours(moment, CHICAGO, time(8, 0), time(8, 0))
    assert in_quiet_hours(moment, CHICAGO, time(12, 0), time(14, 0))  # 13:00 CDT
    assert defer_for_quiet_hours(moment, CHICAGO, time(12, 0), time(14, 0)) == datetime(
        2027, 3, 14, 19, 0, tzinfo=UTC
    )
