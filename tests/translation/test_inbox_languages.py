"""The inbox reads every reply: translated into the staff language with the engine shown;
where no engine covers a language, staff are told so in plain words and can flag the reply for
an interpreter; Burmese typed in Zawgyi is converted to Unicode before anything else sees it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from myanmar.converter import convert
from translation_support import dispatch, prepare, run_json

BURMESE_QUESTION = "ကျောင်းကို ဘတ်စ်ကား ရှိပါသလား။ ကျွန်ုပ်တို့မှာ ကား မရှိပါ။"


def sms_address(cli: Any, config: Path, language: str) -> str:
    """The phone number of the first SMS family reading ``language``."""
    messages = run_json(cli, ["sandbox", "outbox"], config)
    return next(m["address"] for m in messages if m["language"] == language and m["channel"] == "sms")


def test_zawgyi_replies_are_converted_before_matching_and_the_inbox(tmp_path, cli, with_engines, make_config):
    config = make_config()
    event = prepare(tmp_path, cli, config, count=2, languages=("my",))
    run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    dispatch(config, with_engines)
    address = sms_address(cli, config, "my")

    zawgyi = convert(BURMESE_QUESTION, "unicode", "zawgyi")
    assert zawgyi != BURMESE_QUESTION
    result = cli(["sandbox", "reply", "--from", address, zawgyi, "--json"], config)
    assert result.exit_code == 0, result.output
    item = next(i for i in run_json(cli, ["inbox"], config) if i["family_id"])
    assert item["text"] == BURMESE_QUESTION
    assert item["translation"] and item["translation"].startswith("[en] ")
    assert BURMESE_QUESTION in with_engines.recorder.texts(target="en")  # the engine read Unicode

    # A Zawgyi RSVP is understood as the Unicode one would be.
    yes = convert("ဟုတ်ကဲ့ လာပါမယ်", "unicode", "zawgyi")
    outcome = json.loads(cli(["sandbox", "reply", "--from", address, yes, "--json"], config).stdout)
    assert outcome["classification"] == "rsvp"


def test_no_engine_for_a_language_is_said_in_plain_words_and_can_be_flagged(
    tmp_path, cli, with_engines, make_config
):
    config = make_config(engine_settings={"table": {"languages": ["es"]}})
    event = prepare(tmp_path, cli, config, count=2, languages=("so",))
    run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    dispatch(config, with_engines)
    address = sms_address(cli, config, "so")
    somali = "Wiilkayga ayaa dugsiga ku dhaawacmay, fadlan i soo wac hadda"
    assert cli(["sandbox", "reply", "--from", address, somali], config).exit_code == 0
    item = next(i for i in run_json(cli, ["inbox"], config) if i["family_id"])
    assert item["translation"] is None
    assert (
        item["translation_note"]
        == "No machine translation covers Somali → English. Flag it for an interpreter."
    )
    assert (
        "gateway " not in item["translation_note"] and "install" not in item["translation_note"]
    )  # never a command-line hint
    assert item["needs_interpreter"] is False
    assert cli(["inbox", "flag", str(item["id"])], config).exit_code == 0
    flagged = run_json(cli, ["inbox", "--needs-interpreter"], config)
    assert [i["id"] for i in flagged] == [item["id"]] and flagged[0]["needs_interpreter"] is True
