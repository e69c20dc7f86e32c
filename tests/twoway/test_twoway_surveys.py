"""Two-way surveys through the sandbox channel and the CLI: branching answered in several
languages, re-answers, a re-prompt then the inbox, and results as table, CSV and JSON."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import select
from twoway_support import EXAMPLES, jcall, outbox_rows, reply, text_call, with_gateway

from gateway.channels import InboundMessage
from gateway.domain.surveys import Question, SurveySpec
from gateway.inbound.answers import AnswerMatcher
from gateway.storage.models import SurveyAnswer, SurveySession
from gateway.testing.harness import upcoming_example

SURVEY = EXAMPLES / "transport-survey.yaml"
MARIA, AMINA, LAN, FATIMA, BARAKA, LUIS = (
    "+19135550101",
    "+19135550102",
    "lan.nguyen@example.net",
    "552201",
    "+19135550106",
    "+19135550111",
)
FORMULA = '=HYPERLINK("http://evil.example","click")'


def _question_of(row: Any) -> str | None:
    return (row.payload or {}).get("question_id")


def _answers(config: Path) -> dict[tuple[str, str], str]:
    """(family address, question id) → stored value."""

    async def fn(gw: Any) -> dict[tuple[str, str], str]:
        async with gw.db.session() as session:
            rows = await session.execute(
                select(SurveySession.address, SurveyAnswer.question_id, SurveyAnswer.value).join(
                    SurveyAnswer, SurveyAnswer.session_id == SurveySession.id
                )
            )
            return {(a, q): v for a, q, v in rows}

    return with_gateway(config, fn)


def test_branching_survey_in_four_languages_with_reprompt_and_results(cli: Any, families: Path) -> None:
    config = families
    sent = jcall(cli, ["survey", "send", str(SURVEY), "--audience", "", "--json"], config)
    assert sent["survey_id"] == "transport-survey"
    assert sent["families"] == 11 and sent["messages"] == 12
    assert sent["by_language"]["es"] == 1 and sent["by_language"]["es-MX"] == 1
    assert set(sent) >= {"survey_id", "families", "messages", "by_language", "by_channel", "skipped"}

    # Spanish (SMS): "Sí." → rating question next (default branch), in Spanish.
    out = reply(cli, config, MARIA, "Sí.")
    assert out["classification"] == "survey_answer" and out["family_id"] == "F001"
    [next_q] = out["replies"]
    assert next_q["language"] == "es" and next_q["channel"] == "sms"
    assert "Pregunta 2 de 3" in next_q["body"] and "1 al 5" in next_q["body"]
    out = reply(cli, config, MARIA, "5")
    assert "Pregunta 3 de 3" in out["replies"][0]["body"]
    out = reply(cli, config, MARIA, FORMULA)  # free text takes anything, even a formula
    assert out["classification"] == "survey_answer"
    assert "Gracias por sus respuestas" in out["replies"][0]["body"]

    # Somali (SMS): "haa" → rating; an unmatched short reply gets ONE re-prompt in Somali,
    # the second goes to the staff inbox, and the survey still takes a valid answer after it.
    assert reply(cli, config, AMINA, "haa")["classification"] == "survey_answer"
    out = reply(cli, config, AMINA, "bogus")
    assert out["classification"] == "survey_unmatched"
    [reprompt] = out["replies"]
    assert reprompt["language"] == "so" and "Waan ka xunnahay" in reprompt["body"]
    assert "1 ilaa 5" in reprompt["body"]
    out = reply(cli, config, AMINA, "bogus again")
    assert out["classification"] == "free_text" and out["replies"] == []
    inbox = jcall(cli, ["inbox", "--json"], config)
    # Free-text answers are recorded and read by a person, too.
    assert sorted((i["family_id"], i["text"]) for i in inbox) == [("F001", FORMULA), ("F002", "bogus again")]
    formula = next(i for i in inbox if i["family_id"] == "F001")
    assert formula["recorded_answer"] == FORMULA and formula["in_reply_to"]["question_id"] == "comments"
    out = reply(cli, config, AMINA, "4")
    assert out["classification"] == "survey_answer"
    assert "Su'aal 3 oo ka mid ah 3" in out["replies"][0]["body"]

    # Vietnamese (e-mail): "Không" → the `no` branch skips the rating question.
    out = reply(cli, config, LAN, "Không")
    assert out["replies"][0]["language"] == "vi" and "Câu hỏi 3/3" in out["replies"][0]["body"]
    reply(cli, config, LAN, "Xe buýt thường đến trễ")

    # Arabic (Telegram): "نعم" → rating; Arabic-Indic digit four is the number 4.
    out = reply(cli, config, FATIMA, "نعم")
    assert out["replies"][0]["language"] == "ar"
    reply(cli, config, FATIMA, "٤")

    # Swahili by number: 2 = no → comments; Luis (es-MX, another school) answers "si".
    out = reply(cli, config, BARAKA, "2")
    assert "3" in out["replies"][0]["body"]
    reply(cli, config, LUIS, "si")

    # The questions each family was asked follow the branches.
    asked: dict[str, list[str | None]] = {}
    for row in outbox_rows(config):
        if row.payload and row.payload.get("survey_id"):
            asked.setdefault(row.address, []).append(_question_of(row))
    assert asked[MARIA] == ["rides_bus", "pickup_time", "comments"]
    assert asked[LAN] == ["rides_bus", "comments"]
    assert asked[BARAKA] == ["rides_bus", "comments"]
    assert asked[AMINA] == ["rides_bus", "pickup_time", "pickup_time", "comments"]

    answers = _answers(config)
    assert answers[(MARIA, "rides_bus")] == "yes" and answers[(MARIA, "pickup_time")] == "5"
    assert answers[(AMINA, "pickup_time")] == "4" and answers[(FATIMA, "pickup_time")] == "4"
    assert answers[(LAN, "rides_bus")] == "no" and (LAN, "pickup_time") not in answers

    # JSON results: the contract's keys, by question and language, with the response rate.
    results = jcall(cli, ["survey", "results", "transport-survey", "--format", "json"], config)
    assert set(results) >= {"survey_id", "questions", "respondents", "response_rate"}
    by_id = {q["id"]: q for q in results["questions"]}
    rides = by_id["rides_bus"]
    assert rides["answers"] == {"yes": 4, "no": 2}
    assert rides["by_language"] == {
        "ar": {"yes": 1},
        "es": {"yes": 1},
        "es-MX": {"yes": 1},
        "so": {"yes": 1},
        "sw": {"no": 1},
        "vi": {"no": 1},
    }
    assert rides["by_school"] == {"Lincoln": {"yes": 3, "no": 2}, "Roosevelt": {"yes": 1}}
    assert by_id["pickup_time"]["answers"] == {"5": 1, "4": 2}
    assert results["respondents"] == 6
    assert results["response_rate"] == 0.5  # 6 of 12 guardians asked

    # CSV: by language and by school, and a formula answer is made inert.
    rows = list(
        csv.DictReader(
            io.StringIO(text_call(cli, ["survey", "results", "transport-survey", "--format", "csv"], config))
        )
    )
    key = {(r["question_id"], r["answer"], r["language"], r["school"]): r["count"] for r in rows}
    assert key[("rides_bus", "yes", "*", "*")] == "4"
    assert key[("rides_bus", "no", "vi", "*")] == "1"
    assert key[("rides_bus", "yes", "*", "Roosevelt")] == "1"
    comment_cells = [r["answer"] for r in rows if r["question_id"] == "comments"]
    assert "'" + FORMULA in comment_cells and FORMULA not in comment_cells
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())

    # Table: response rate and the answer counts per language.
    table = text_call(cli, ["survey", "results", "transport-survey", "--format", "table"], config)
    assert "6 of 12 answered (50%)" in table
    assert "rides_bus" in table and "pickup_time" in table and "es-MX" in table
    assert "Lincoln: yes = 3, no = 2" in table and "Roosevelt: yes = 1" in table  # by school


def test_after_the_survey_a_question_goes_to_the_inbox_not_over_the_comment(cli: Any, families: Path) -> None:
    config = families
    jcall(cli, ["survey", "send", str(SURVEY), "--json"], config)
    for text in ("no", "Todo bien"):
        reply(cli, config, MARIA, text)
    later = "¿Cuándo es la próxima reunión sobre el autobús escolar?"
    out = reply(cli, config, MARIA, later)
    assert out["classification"] == "free_text"
    assert _answers(config)[(MARIA, "comments")] == "Todo bien"
    inbox = {i["text"]: i for i in jcall(cli, ["inbox", "--json"], config)}
    # The closing comment (a free-text answer, read by a person) and the later question, which
    # is not taken for a new comment.
    assert set(inbox) == {"Todo bien", later}
    assert inbox["Todo bien"]["recorded_answer"] == "Todo bien"
    assert inbox[later]["recorded_answer"] is None


def test_rsvp_change_replaces_the_earlier_answer(cli: Any, families: Path, tmp_path: Path) -> None:
    config = families
    event = upcoming_example(tmp_path, reminders=[])
    jcall(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event), "--json"], config)
    first = reply(cli, config, MARIA, "¡Sí, claro!")
    assert first["classification"] == "rsvp"
    assert any("Lincoln" in r["body"] for r in first["replies"])  # confirmation repeats the place
    changed = reply(cli, config, MARIA, "No puedo")
    assert changed["classification"] == "rsvp" and changed["replies"]
    reply(cli, config, AMINA, "haa")

    async def counts(gw: Any) -> dict[str, int]:
        return await gw.inbound.surveys.rsvp_counts("reading-workshop-2027-03")

    assert with_gateway(config, counts) == {"yes": 1, "no": 1}


def test_email_reply_to_an_earlier_question_changes_that_answer(cli: Any, families: Path) -> None:
    """A reply carrying the token of question 1's e-mail re-answers question 1."""
    config = families
    jcall(cli, ["survey", "send", str(SURVEY), "--json"], config)
    reply(cli, config, LAN, "không")
    [first] = [r for r in outbox_rows(config, address=LAN) if _question_of(r) == "rides_bus"]

    async def answer_again(gw: Any) -> str:
        outcome = await gw.inbound.handle(
            InboundMessage(
                channel="email",
                provider_message_id="<again@example.net>",
                sender=LAN,
                text="Có ạ",
                reply_token=first.reply_token,
            )
        )
        return outcome.classification

    assert with_gateway(config, answer_again) == "survey_answer"
    answers = _answers(config)
    assert answers[(LAN, "rides_bus")] == "yes"
    results = jcall(cli, ["survey", "results", "transport-survey", "--format", "json"], config)
    assert results["questions"][0]["answers"] == {"yes": 1}


def test_answer_matcher_languages_numbers_and_filler() -> None:
    matcher = AnswerMatcher.load(EXAMPLES.parent / "locales")
    yesno = Question.model_validate(
        {
            "id": "q",
            "type": "choice",
            "text": "Bus?",
            "choices": [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}],
        }
    )
    cases = {
        ("es", "¡Sí!"): "yes",
        ("es", "SI"): "yes",
        ("so", "Haa"): "yes",
        ("vi", "có"): "yes",
        ("ar", "نعم"): "yes",
        ("fr", "Oui merci"): "yes",
        ("sw", "hapana"): "no",
        ("es", "2"): "no",
        ("ar", "٢"): "no",
        ("en", "ＹＥＳ"): "yes",
        ("es", "1."): "yes",
        ("en", "1️⃣"): "yes",
        ("vi", "２"): "no",
    }
    for (language, text), expected in cases.items():
        assert matcher.match(yesno, text, language) == expected, (language, text)
    assert matcher.match(yesno, "banana", "es") is None
    # A later clause that starts with another answer takes the first back; a count does not.
    for language, text in (("en", "no, yes"), ("en", "Yes. No wait, we can't"), ("es", "Sí. No, mejor no")):
        assert matcher.read(yesno, text, language).value is None, text
    assert matcher.read(yesno, "Yes, 2 of us", "en").value == "yes"
    assert matcher.read(yesno, "Sí, pero no sé la hora", "es").value == "yes"
    rating = Question.model_validate({"id": "r", "type": "rating", "text": "How happy?"})
    assert matcher.match(rating, "4 stars", "en") == "4"
    for language, text in (("en", "5 stars"), ("en", "5 out of 5"), ("es", "5 estrellas"),
                           ("fr", "5 étoiles"), ("so", "5 stars")):
        assert matcher.match(rating, text, language) == "5", (language, text)  # the top mark too
    assert matcher.match(rating, "7", "en") is None
    assert matcher.match(rating, "3 or 4", "en") is None


def test_survey_spec_branches() -> None:
    spec = SurveySpec.model_validate(__import__("yaml").safe_load(SURVEY.read_text(encoding="utf-8")))
    assert spec.next_question("rides_bus", "no").id == "comments"  # type: ignore[union-attr]
    assert spec.next_question("rides_bus", "yes").id == "pickup_time"  # type: ignore[union-attr]
    assert spec.next_question("pickup_time", "3").id == "comments"  # type: ignore[union-attr]
    assert spec.next_question("comments", "anything") is None


def test_concurrent_duplicate_answer_is_processed_once(cli: Any, families: Path) -> None:
    """Covered more broadly in test_twoway_inbound; here: an answer delivered twice moves once."""
    config = families
    jcall(cli, ["survey", "send", str(SURVEY), "--json"], config)

    async def twice(gw: Any) -> list[bool]:
        from gateway.sandbox_tools import inject_reply

        first = await inject_reply(gw, MARIA, "sí", provider_id="SMdup1")
        second = await inject_reply(gw, MARIA, "sí", provider_id="SMdup1")
        return [first["duplicate"], second["duplicate"]]

    assert with_gateway(config, twice) == [False, True]
    asked = [_question_of(r) for r in outbox_rows(config, address=MARIA)]
    assert asked == ["rides_bus", "pickup_time"]  # the next question was sent once
