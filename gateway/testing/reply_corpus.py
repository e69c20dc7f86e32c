"""A corpus of real-looking family replies with what the gateway must make of each, and a
runner that pushes them through the real inbound pipeline.

Each reply goes from its own family (so one reply's state never shapes another's) to an open
RSVP (yes / no / maybe) or an open survey question; ``late`` replies answer an RSVP whose event
has started. Outcomes:

- ``answer`` — the value is recorded, nothing for staff;
- ``answer+inbox`` — the value is recorded and staff read the rest;
- ``inbox`` — nothing recorded, staff read it (a question, a story, a late answer...);
- ``reprompt`` — nothing recorded, the question is asked once more;
- ``ack`` — thanks, nothing to do;
- ``opt_out`` / ``help`` — the compliance keywords;
- ``urgent`` — in the inbox, flagged urgent.

``bench/replies.py`` prints the confusion table of a run; the test suite asserts the corpus,
and above all that no reply that asks something is ever recorded as an answer.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.storage.models import InboundRecord, utcnow

__all__ = ["CORPUS", "CorpusResult", "Reply", "confusion_table", "run_corpus"]


@dataclass(frozen=True)
class Reply:
    """One reply and what must come of it."""

    language: str
    text: str
    expected: str
    value: str | None = None
    prompt: str = "rsvp"
    """``rsvp`` (an invitation's yes / no / maybe), ``choice`` (how the child gets to school:
    1 bus, 2 car, 3 walk), ``text`` (anything the family needs), ``late`` (an RSVP whose event
    has started)."""

    @property
    def asks(self) -> bool:
        """Whether the reply asks something (it must never be recorded as an answer alone)."""
        return any(mark in self.text for mark in "?？؟")


def R(language: str, text: str, expected: str, value: str | None = None, prompt: str = "rsvp") -> Reply:
    """Shorthand for the table below."""
    return Reply(language, text, expected, value, prompt)


CORPUS: tuple[Reply, ...] = (
    # English
    R("en", "yes", "answer", "yes"),
    R("en", "Yes please", "answer", "yes"),
    R("en", "YES!!", "answer", "yes"),
    R("en", "1", "answer", "yes"),
    R("en", "ok 1", "answer", "yes"),
    R("en", "Yes we will come, thank you", "answer", "yes"),
    R("en", "We'll be there", "answer", "yes"),
    R("en", "No thank you", "answer", "no"),
    R("en", "2", "answer", "no"),
    R("en", "Cannot come, sorry", "answer", "no"),
    R("en", "maybe", "answer", "maybe"),
    R("en", "Not sure yet", "answer", "maybe"),
    R("en", "3", "answer", "maybe"),
    R("en", "Is there a bus? We have no car", "inbox"),
    R("en", "Can I bring my toddler? No babysitter at home.", "inbox"),
    R("en", "What time does it start?", "inbox"),
    R("en", "Where is it?", "inbox"),
    R("en", "Yes?", "inbox"),
    R("en", "No bus? Then we can't come.", "inbox"),
    R("en", "Is it free? Yes or no", "inbox"),
    R("en", "Yes, but what time does it end?", "answer+inbox", "yes"),
    R("en", "Yes. Can I bring my 2 kids?", "answer+inbox", "yes"),
    R("en", "No, we work that night. Will there be another session?", "answer+inbox", "no"),
    R("en", "Yes, thank you. See you there!", "answer", "yes"),
    R("en", "Yes, 2 adults and 3 kids", "answer+inbox", "yes"),
    R("en", "Yes I will be there with my two kids", "inbox"),
    R("en", "y", "answer", "yes"),
    R("en", "Thank you!", "ack"),
    R("en", "thanks", "ack"),
    R("en", "7", "reprompt"),
    R("en", "I think so", "reprompt"),
    R("en", "yes no", "reprompt"),
    R("en", "We would love to come but my husband works late and I do not drive", "inbox"),
    R("en", "STOP", "opt_out"),
    R("en", "stop texting me please", "opt_out"),
    R("en", "HELP", "help"),
    R("en", "Could the bus please stop at 5th street?", "inbox"),
    R("en", "My son was hurt at school today and he is bleeding, please call me", "urgent"),
    # Spanish
    R("es", "Sí", "answer", "yes"),
    R("es", "¡Sí, gracias!", "answer", "yes"),
    R("es", "si claro", "answer", "yes"),
    R("es", "1", "answer", "yes"),
    R("es", "Sí vamos a ir", "answer", "yes"),
    R("es", "No puedo", "answer", "no"),
    R("es", "no, gracias", "answer", "no"),
    R("es", "Tal vez", "answer", "maybe"),
    R("es", "No sé todavía", "answer", "maybe"),
    R("es", "No puedo ir el jueves pero sí el viernes, ¿hay otra fecha?", "inbox"),
    R("es", "¿A qué hora termina?", "inbox"),
    R("es", "¿Hay transporte? No tenemos carro", "inbox"),
    R("es", "¿Puedo llevar a mi hijo pequeño? Sí o no", "inbox"),
    R("es", "Sí, ¿puedo llevar a mis hijos?", "answer+inbox", "yes"),
    R("es", "No gracias, ya tenemos planes", "answer+inbox", "no"),
    R("es", "Sí, nos vemos allí", "answer", "yes"),
    R("es", "Gracias", "ack"),
    R("es", "muchas gracias", "ack"),
    R("es", "No más mensajes por favor", "opt_out"),
    R("es", "ayuda", "help"),
    R("es", "Mi hijo tiene miedo, otro niño lo amenaza con un cuchillo", "urgent"),
    R("es", "Mi esposo trabaja de noche y no tengo quien cuide a los niños", "inbox"),
    # French
    R("fr", "Oui", "answer", "yes"),
    R("fr", "oui merci", "answer", "yes"),
    R("fr", "Non merci", "answer", "no"),
    R("fr", "Peut-être", "answer", "maybe"),
    R("fr", "1", "answer", "yes"),
    R("fr", "Je ne sais pas encore", "answer", "maybe"),
    R("fr", "Est-ce qu'il y a une garderie ?", "inbox"),
    R("fr", "Quelle est l'adresse exacte ?", "inbox"),
    R("fr", "Oui, mais à quelle heure ça finit ?", "answer+inbox", "yes"),
    R("fr", "Non, nous ne pouvons pas. Y aura-t-il une autre date ?", "answer+inbox", "no"),
    R("fr", "Merci beaucoup", "ack"),
    R("fr", "STOP", "opt_out"),
    R("fr", "aide", "help"),
    # Vietnamese
    R("vi", "Có", "answer", "yes"),
    R("vi", "Dạ có", "answer", "yes"),
    R("vi", "Có, cảm ơn", "answer", "yes"),
    R("vi", "Không", "answer", "no"),
    R("vi", "Dạ không", "answer", "no"),
    R("vi", "Không đến được, xin lỗi", "answer", "no"),
    R("vi", "Có thể", "answer", "maybe"),
    R("vi", "1", "answer", "yes"),
    R("vi", "Có phiên dịch tiếng Việt tại buổi họp không?", "inbox"),
    R("vi", "Có xe buýt không?", "inbox"),
    R("vi", "Có xe buýt đưa đón không", "inbox"),
    R("vi", "Mấy giờ bắt đầu?", "inbox"),
    R("vi", "Vâng ạ", "answer", "yes"),
    R("vi", "Cảm ơn", "ack"),
    R("vi", "Dừng", "opt_out"),
    # Arabic
    R("ar", "نعم", "answer", "yes"),
    R("ar", "نعم، شكراً", "answer", "yes"),
    R("ar", "لا", "answer", "no"),
    R("ar", "ربما", "answer", "maybe"),
    R("ar", "إن شاء الله", "answer", "maybe"),
    R("ar", "١", "answer", "yes"),
    R("ar", "٢", "answer", "no"),
    R("ar", "هل توجد حافلة إلى الورشة؟ ليس لدينا سيارة.", "inbox"),
    R("ar", "هل يمكنني إحضار أطفالي الصغار؟", "inbox"),
    R("ar", "نعم، ولكن متى تنتهي الورشة؟", "answer+inbox", "yes"),
    R("ar", "شكرا جزيلا", "ack"),
    R("ar", "توقف", "opt_out"),
    R("ar", "مساعدة", "help"),
    R("ar", "ابني يتعرض للضرب في المدرسة كل يوم", "urgent"),
    # Somali
    R("so", "haa", "answer", "yes"),
    R("so", "Haa, mahadsanid", "answer", "yes"),
    R("so", "maya", "answer", "no"),
    R("so", "Maya mahadsanid", "answer", "no"),
    R("so", "laga yaabee", "answer", "maybe"),
    R("so", "1", "answer", "yes"),
    R("so", "Bas ma jiraa? Gaari ma haysanno", "inbox"),
    R("so", "Haa, laakiin goorma ayay dhammaanaysaa?", "answer+inbox", "yes"),
    R("so", "mahadsanid", "ack"),
    R("so", "jooji", "opt_out"),
    R("so", "caawin", "help"),
    R("so", "Wiilkayga waa la garaacay dugsiga maanta", "urgent"),
    # Swahili
    R("sw", "ndiyo", "answer", "yes"),
    R("sw", "Ndiyo, asante", "answer", "yes"),
    R("sw", "hapana", "answer", "no"),
    R("sw", "Hapana asante", "answer", "no"),
    R("sw", "Sitakuja, samahani", "answer", "no"),
    R("sw", "labda", "answer", "maybe"),
    R("sw", "1", "answer", "yes"),
    R("sw", "Kuna basi? Hatuna gari", "inbox"),
    R("sw", "Ndiyo, lakini itaisha saa ngapi?", "answer+inbox", "yes"),
    R("sw", "Asante sana", "ack"),
    R("sw", "msaada", "help"),
    # Portuguese
    R("pt", "Sim", "answer", "yes"),
    R("pt", "Sim, obrigado", "answer", "yes"),
    R("pt", "Não", "answer", "no"),
    R("pt", "Não posso, obrigada", "answer", "no"),
    R("pt", "Talvez", "answer", "maybe"),
    R("pt", "1", "answer", "yes"),
    R("pt", "Tem ônibus? Não temos carro", "inbox"),
    R("pt", "Posso levar meus filhos?", "inbox"),
    R("pt", "Sim, mas que horas termina?", "answer+inbox", "yes"),
    R("pt", "Obrigada!", "ack"),
    R("pt", "Pare", "opt_out"),
    R("pt", "ajuda", "help"),
    # Burmese, Nepali, Chinese
    R("my", "ဟုတ်ကဲ့", "answer", "yes"),
    R("my", "မလာနိုင်ပါ", "answer", "no"),
    R("my", "၁", "answer", "yes"),
    R("ne", "हो", "answer", "yes"),
    R("ne", "होइन", "answer", "no"),
    R("ne", "२", "answer", "no"),
    R("zh-Hans", "好的", "answer", "yes"),
    R("zh-Hans", "不能来", "answer", "no"),
    R("zh-Hans", "有校车吗？", "inbox"),
    # A survey question: how does your child get to school? 1 school bus, 2 car, 3 walking.
    R("en", "1", "answer", "bus", "choice"),
    R("en", "school bus", "answer", "bus", "choice"),
    R("en", "Car please", "answer", "car", "choice"),
    R("en", "walking", "answer", "walk", "choice"),
    R("en", "Sometimes the bus, sometimes I drive. Why do you ask?", "inbox", None, "choice"),
    R("en", "Does the bus stop near Oak Street?", "inbox", None, "choice"),
    R("en", "4", "reprompt", None, "choice"),
    R("es", "2", "answer", "car", "choice"),
    R("ar", "٣", "answer", "walk", "choice"),
    R("vi", "Xe buýt có an toàn không?", "inbox", None, "choice"),
    # A free-text question: stored as the answer and read by a person.
    R("en", "I need a Vietnamese interpreter", "answer+inbox", "I need a Vietnamese interpreter", "text"),
    R(
        "es",
        "Necesitamos ayuda con útiles escolares",
        "answer+inbox",
        "Necesitamos ayuda con útiles escolares",
        "text",
    ),  # fmt: skip
    # Late: the event has started; nothing is recorded, staff read it.
    R("en", "yes", "inbox", None, "late"),
    R("es", "Sí", "inbox", None, "late"),
    R("so", "haa", "inbox", None, "late"),
)

EVENT_START_IN = timedelta(days=5)


@dataclass
class CorpusResult:
    """What the gateway made of one reply."""

    reply: Reply
    outcome: str
    value: str | None
    classification: str

    @property
    def ok(self) -> bool:
        """Whether the outcome (and the recorded value) is the expected one."""
        return self.outcome == self.reply.expected and (
            self.reply.value is None or self.value == self.reply.value
        )


def _families_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["family_id", "guardian_name", "language", "phone", "preferred_channel", "school", "grade",
             "student_name", "timezone"]
        )  # fmt: skip
        for number, reply in enumerate(CORPUS):
            school = {"rsvp": "Lincoln", "late": "Lincoln", "choice": "Roosevelt", "text": "Washington"}[
                reply.prompt
            ]
            writer.writerow(
                [f"C{number:04d}", f"Parent {number}", reply.language, f"+1913777{number:04d}", "sms", school,
                 "3", f"Child {number}", "America/Chicago"]
            )  # fmt: skip
    return path


SURVEYS = {
    "choice": {
        "id": "getting-to-school",
        "title": "Getting to school",
        "audience": "school:Roosevelt",
        "questions": [
            {
                "id": "how",
                "type": "choice",
                "text": "How does your child get to school?",
                "choices": [
                    {"value": "bus", "label": "School bus", "synonyms": ["bus"]},
                    {"value": "car", "label": "Car", "synonyms": ["car", "drive"]},
                    {"value": "walk", "label": "Walking", "synonyms": ["walk", "walking"]},
                ],
            },
            {"id": "anything", "type": "text", "text": "Anything else?", "optional": True},
        ],
    },
    "text": {
        "id": "needs",
        "title": "What you need",
        "audience": "school:Washington",
        "questions": [{"id": "need", "type": "text", "text": "Is there anything you need from the school?"}],
    },
}


async def run_corpus(gw: Any, folder: Path) -> list[CorpusResult]:
    """Import a family per reply, send the invitation and the surveys, push every reply through
    the inbound pipeline (late ones after their event has started) and read the outcomes."""
    import time_machine

    from gateway.broadcasts import send_broadcast, send_survey
    from gateway.domain.events import EventSpec
    from gateway.domain.surveys import SurveySpec
    from gateway.families import import_families
    from gateway.sandbox_tools import inject_reply

    await import_families(gw, _families_csv(folder / "corpus.csv"), progress=False)
    start = (utcnow() + EVENT_START_IN).replace(microsecond=0)
    event = EventSpec(
        id="corpus-workshop",
        title="Family Math Night",
        place="Lincoln library",
        start=start,
        end=start + timedelta(hours=1),
        audience="school:Lincoln",
        rsvp=True,
    )
    await send_broadcast(gw, "workshop_invitation", event_spec=event)
    for data in SURVEYS.values():
        await send_survey(gw, spec=SurveySpec.model_validate(data))
    await gw.start_channels()
    await gw.dispatcher.run_until_idle()

    results: list[CorpusResult] = []
    numbered = list(enumerate(CORPUS))
    for number, reply in [(n, r) for n, r in numbered if r.prompt != "late"]:
        results.append(await _one(gw, inject_reply, number, reply))
    with time_machine.travel(start + timedelta(minutes=10), tick=True):
        for number, reply in [(n, r) for n, r in numbered if r.prompt == "late"]:
            results.append(await _one(gw, inject_reply, number, reply))
    return results


async def _one(gw: Any, inject: Any, number: int, reply: Reply) -> CorpusResult:
    outcome = await inject(gw, f"+1913777{number:04d}", reply.text)
    async with gw.db.session() as session:
        record = await session.get(InboundRecord, outcome["inbound_id"])
        assert record is not None
        classification = record.classification
        value = record.recorded_answer
        inbox, urgent = record.inbox, record.urgent
        reprompted = classification == "survey_unmatched"
    if urgent:
        kind = "urgent"
    elif classification in ("opt_out", "help"):
        kind = classification
    elif classification == "acknowledgement":
        kind = "ack"
    elif reprompted:
        kind = "reprompt"
    elif value is not None:
        kind = "answer+inbox" if inbox else "answer"
    elif inbox:
        kind = "inbox"
    else:
        kind = classification
    return CorpusResult(reply, kind, value, classification)


OUTCOMES = ("answer", "answer+inbox", "inbox", "reprompt", "ack", "opt_out", "help", "urgent")


def confusion_table(results: list[CorpusResult]) -> str:
    """Expected (rows) × what happened (columns), plus the count of questions recorded as an
    answer alone (must be zero)."""
    counts: Counter[tuple[str, str]] = Counter((r.reply.expected, r.outcome) for r in results)
    seen = [o for o in OUTCOMES if any(o in pair for pair in counts)] + sorted(
        {o for pair in counts for o in pair} - set(OUTCOMES)
    )
    width = max(len(o) for o in seen) + 2
    lines = ["expected \\ got".ljust(width + 4) + "".join(o.rjust(width) for o in seen)]
    for expected in seen:
        row = [counts[(expected, got)] for got in seen]
        if any(row):
            lines.append(expected.ljust(width + 4) + "".join(str(n).rjust(width) for n in row))
    questions_as_answers = sum(1 for r in results if r.reply.asks and r.outcome == "answer")
    wrong_values = sum(1 for r in results if r.outcome == r.reply.expected and not r.ok)
    languages = len({r.reply.language for r in results})
    lines.append(
        f"{len(results)} replies in {languages} languages; {sum(r.ok for r in results)} as expected; "
        f"questions recorded as an answer alone: {questions_as_answers}; wrong values: {wrong_values}"
    )
    return "\n".join(lines)
