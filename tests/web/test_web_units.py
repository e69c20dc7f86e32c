"""Focused unit tests: password and token hashing, session cookies, chart geometry, compose form."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.staff import StaffIdentity, hash_password, hash_token, new_token, verify_password
from gateway.web.auth import SessionCodec, load_secret
from gateway.web.charts import bars, funnel_chart, stacked
from gateway.web.compose import parse_compose


def test_passwords_are_argon2_and_verify() -> None:
    stored = hash_password("s3cret password")
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    assert verify_password(stored, "s3cret password")
    assert not verify_password(stored, "s3cret passwore")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "anything")


def test_tokens_are_random_and_hashed() -> None:
    one, two = new_token(), new_token()
    assert one != two and len(one) > 40
    assert hash_token(one) != one and len(hash_token(one)) == 64


def test_identity_scope() -> None:
    liaison = StaffIdentity(1, "a@x", "liaison", ("Lincoln",))
    admin = StaffIdentity(2, "b@x", "admin", ())
    assert liaison.scope == ["Lincoln"] and admin.scope is None
    assert liaison.in_scope({"lincoln", None}) and not liaison.in_scope({"Roosevelt"})
    assert admin.in_scope(set())


def test_session_codec_signs_expires_and_rejects_tampering(tmp_path: Path) -> None:
    secret = load_secret(tmp_path)
    assert load_secret(tmp_path) == secret  # created once, then reused
    assert (tmp_path / "web_secret.key").stat().st_mode & 0o777 == 0o600
    codec = SessionCodec(secret)
    value = codec.encode({"s": 7, "n": "abc", "t": int(time.time())})
    assert codec.decode(value)["s"] == 7
    body, mac = value.split(".")
    assert codec.decode(body + "x." + mac) is None
    assert codec.decode(value + "x") is None
    assert codec.decode("garbage") is None and codec.decode(None) is None
    assert SessionCodec(b"other secret").decode(value) is None
    old = codec.encode({"s": 7, "n": "abc", "t": int(time.time()) - 13 * 3600})
    assert codec.decode(old) is None
    assert codec.csrf({"n": "abc"}) == codec.csrf({"n": "abc"}) != codec.csrf({"n": "abd"})


def test_chart_geometry() -> None:
    assert bars({"yes": 3, "no": 1}) == [
        {"label": "yes", "value": 3, "width": 100.0, "color": "#3b6fb6"},
        {"label": "no", "value": 1, "width": 33.33, "color": "#3b6fb6"},
    ]
    rows = stacked({"es": {"delivered": 3, "queued": 1}, "so": {"failed": 2}})
    es = rows[0]
    assert es["label"] == "es" and es["total"] == 4
    assert [(s["stage"], s["width"]) for s in es["segments"]] == [
        ("queued", 25.0),
        ("delivered", 75.0),
    ]
    assert es["segments"][1]["x"] == 25.0
    chart = funnel_chart(
        {
            "status": "sending",
            "messages": 4,
            "by_status": {"delivered": 2, "queued": 1, "cancelled": 1},
            "skipped": [{"family_id": "F1", "reason": "opted out"}],
            "funnel": {},
        }
    )
    stages = {b["label"]: b["value"] for b in chart["stages"]}
    assert stages == {"queued": 1, "sent": 0, "delivered": 2, "failed": 0, "opted out": 2}
    assert chart["final"] is False


def test_compose_form_parsing() -> None:
    now = datetime(2029, 12, 1, 12, 0, tzinfo=UTC)  # a fixed clock: the form checks "the past"
    form = {
        "title": "Math Night",
        "place": "Library",
        "start": "2030-03-04T17:30",
        "timezone": "America/Chicago",
        "when": "later",
        "at": "2030-03-01T09:00:05",
        "channel_sms": "1",
        "reminders": "2d, 2h",
    }
    parsed = parse_compose(form, ["sms", "email"], now=now)
    assert not parsed.errors
    assert parsed.channels == ["sms"]
    assert parsed.event.id == "math-night-2030-03-04"
    assert parsed.event.start.utcoffset().total_seconds() == -6 * 3600
    assert parsed.send_at.isoformat() == "2030-03-01T09:00:05-06:00"
    assert parsed.event.reminders == ["2d", "2h"]
    bad = parse_compose({**form, "timezone": "Mars/Base"}, ["sms"], now=now)
    assert "Mars/Base" in bad.errors["timezone"]
    missing = parse_compose({**form, "at": ""}, ["sms"], now=now)
    assert "choose a date and time" in missing.errors["at"]


def test_compose_form_refuses_what_would_send_wrong_messages() -> None:
    now = datetime(2029, 12, 1, 12, 0, tzinfo=UTC)
    form = {"title": "Math Night", "place": "Library", "start": "2030-03-04T17:30", "channel_sms": "1"}
    past = parse_compose({**form, "start": "2020-03-04T17:30"}, ["sms"], now=now)
    assert "in the past" in past.errors["start"]
    backwards = parse_compose({**form, "end": "2030-03-04T16:30"}, ["sms"], now=now)
    assert "after the start" in backwards.errors["end"]
    no_channel = parse_compose({k: v for k, v in form.items() if k != "channel_sms"}, ["sms"], now=now)
    assert "at least one channel" in no_channel.errors["channels"] and no_channel.channels == []
    long_title = parse_compose({**form, "title": "x" * 10_000}, ["sms"], now=now)
    assert "at most 150 characters" in long_title.errors["title"]
    no_place = parse_compose({**form, "place": ""}, ["sms"], now=now)
    assert "required" in no_place.errors["place"]
    late = parse_compose({**form, "when": "later", "at": "2030-03-05T09:00"}, ["sms"], now=now)
    assert "after the event starts" in late.errors["at"]
    message = parse_compose(
        {
            "template": "announcement",
            "title": "No school",
            "body": "",
            "link": "javascript:x",
            "channel_sms": "1",
        },
        ["sms"],
        now=now,
    )
    assert "required" in message.errors["body"] and "http" in message.errors["link"]
