"""A family's free-text question reaches the inbox in the staff language; the staff answer goes
back in the family's language, through the same service and memory."""

from __future__ import annotations

from translation_support import run_json, write_families

QUESTION = "هل توجد حافلة إلى الورشة؟"
ANSWER = "Yes, Guardian 0: the bus stops at the school at 7:15 AM."


def test_free_text_is_translated_for_staff_and_the_answer_back(tmp_path, cli, with_engines, make_config):
    config = make_config()
    families = write_families(tmp_path / "families.csv", 4, ("ar", "es"))
    assert cli(["families", "import", str(families)], config).exit_code == 0
    address = "+19135550000"  # family F00000, Arabic, SMS

    outcome = run_json(cli, ["sandbox", "reply", "--from", address, QUESTION], config)
    assert outcome["classification"] == "free_text"
    (item,) = run_json(cli, ["inbox"], config)
    assert item["text"] == QUESTION and item["language"] == "ar"
    assert item["translation"] == "[en] is there bus to the workshop؟"
    recorder = with_engines.recorder
    assert recorder.seen == [("table", "ar", "en", QUESTION)]

    result = cli(["reply", str(item["id"]), ANSWER], config)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "reply delivered as message" in said
    assert "reading Arabic (ar): machine translation, not reviewed" in said
    # The guardian's name is protected like a date or a time.
    assert recorder.seen[-1] == ("table", "en", "ar", "Yes, [1]: the bus stops at the school at [2].")
    sent = [m for m in run_json(cli, ["sandbox", "outbox"], config) if m["conversation"]]
    assert len(sent) == 1
    assert sent[0]["address"] == address and sent[0]["language"] == "ar"
    assert "[ar] نعم, Guardian 0: the حافلة stops at the المدرسة at 7:15 AM." in sent[0]["body"]

    # Same question again from another family: answered from the memory, no engine call.
    calls = recorder.calls
    run_json(cli, ["sandbox", "reply", "--from", "+19135550002", QUESTION], config)
    items = run_json(cli, ["inbox"], config)
    assert {i["translation"] for i in items} == {"[en] is there bus to the workshop؟"}
    assert recorder.calls == calls
    status = run_json(cli, ["translate", "status"], config)
    assert status["hits"] >= 1 and status["memory_entries"] == 2


def test_without_an_engine_the_inbox_keeps_the_original_and_says_so_plainly(tmp_path, cli, make_config):
    config = make_config(engines=[])
    families = write_families(tmp_path / "families.csv", 2, ("ar", "es"))
    assert cli(["families", "import", str(families)], config).exit_code == 0
    run_json(cli, ["sandbox", "reply", "--from", "+19135550000", QUESTION], config)
    (item,) = run_json(cli, ["inbox"], config)
    assert item["translation"] is None
    assert (
        item["translation_note"]
        == "No machine translation covers Arabic → English. Flag it for an interpreter."
    )

    result = cli(["reply", str(item["id"]), "The bus stops at the school at 7:15 AM."], config)
    assert result.exit_code == 0, result.output
    # The Arabic catalog has the note: the staff member is told the answer went in English, and
    # the family that its frame is Arabic and the answer English.
    assert "reading Arabic (ar): English, with a note in their language" in " ".join(result.output.split())
    (sent,) = [m for m in run_json(cli, ["sandbox", "outbox"], config) if m["conversation"]]
    note = "جزء من هذه الرسالة ما زال باللغة الإنجليزية: لم نتمكن بعد من ترجمته إلى لغتك."
    assert note in sent["body"] and "The bus stops at the school at 7:15 AM." in sent["body"]


def test_an_answer_nothing_translates_is_reported_as_english_with_an_english_note(tmp_path, cli, make_config):
    # Nothing covers Haitian Creole or Ukrainian here: the answer and its note go in English, and
    # the command says exactly that (not "in ht").
    config = make_config(engines=[])
    families = write_families(tmp_path / "families.csv", 2, ("ht", "uk"))
    assert cli(["families", "import", str(families)], config).exit_code == 0
    for address, name in (("+19135550000", "Haitian Creole (ht)"), ("+19135550001", "Ukrainian (uk)")):
        question = "Eske gen yon bis? / Чи є автобус?"
        asked = run_json(cli, ["sandbox", "reply", "--from", address, question], config)
        result = cli(["reply", str(asked["inbound_id"]), "Yes, the bus leaves at 5 PM."], config)
        assert result.exit_code == 0, result.output
        said = " ".join(result.output.split())
        assert f"reading {name}: English, with a note in English" in said, said
        assert "delivered" in said
    sent = [m for m in run_json(cli, ["sandbox", "outbox"], config) if m["conversation"]]
    assert len(sent) == 2
    for message in sent:
        assert message["body"].startswith("We could not translate this message into your language yet.")
        assert "Yes, the bus leaves at 5 PM." in message["body"]
