"""A survey's own closing message reaches the family in their language at the end."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def test_closing_message_replaces_the_default_thanks(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    families = tmp_path / "f.csv"
    families.write_text(
        "family_id,guardian_name,language,phone,school,grade,student_name\n"
        "F1,Maria Lopez,es,(913) 555-0101,Lincoln,6,Ana\n"
        "F2,Sarah Hill,en,(913) 555-0102,Lincoln,6,Emma\n",
        encoding="utf-8",
    )
    cli(["families", "import", str(families)], sqlite_config)
    survey = tmp_path / "survey.yaml"
    survey.write_text(
        yaml.safe_dump(
            {
                "id": "lunch",
                "title": "Lunch",
                "closing_message": "See you at the picnic on Friday!",
                "questions": [{"id": "likes", "type": "yesno", "text": "Does your child like lunch?"}],
            }
        ),
        encoding="utf-8",
    )
    assert cli(["survey", "send", str(survey), "--json"], sqlite_config).exit_code == 0
    english = json.loads(
        cli(["sandbox", "reply", "--from", "+19135550102", "yes", "--json"], sqlite_config).stdout
    )
    assert english["classification"] == "survey_answer"
    assert [r["body"] for r in english["replies"]] == ["Test District: See you at the picnic on Friday!"]
    # No engine installed: the Spanish family gets the English text rather than nothing.
    spanish = json.loads(
        cli(["sandbox", "reply", "--from", "+19135550101", "sí", "--json"], sqlite_config).stdout
    )
    assert "See you at the picnic on Friday!" in spanish["replies"][0]["body"]
