"""The survey builder: a liaison builds a survey with branching, previews its first question in
the audience's languages, exports it as a survey file that loads back, and sends it."""

from __future__ import annotations

from typing import Any

import yaml

from gateway.domain.surveys import SurveySpec, load_survey
from gateway.resources import SHIPPED_EXAMPLES


def builder_form(token: str, **extra: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "title": "Getting to school",
        "questions": "2",
        "q1_id": "how",
        "q1_type": "choice",
        "q1_text": "How does your child get to school?",
        "q1_choices": "bus: School bus | bus, yellow bus\ncar: Car | drive\nwalk: Walking",
        "q1_next": "walk -> end; default -> comments",
        "q2_id": "comments",
        "q2_type": "text",
        "q2_text": "Anything else about getting to school?",
        "q2_optional": "on",
        "remind": "2d",
        "aud_school": "Lincoln",
        "channel_sms": "1",
        "channel_email": "1",
        "when": "now",
    }
    form.update(extra)
    return form


async def test_build_preview_export_load_and_send_a_survey(web: Any) -> None:
    await web.login("lincoln@district.example")
    token = await web.csrf("/surveys/new")
    more = await web.client.post("/surveys/new", data=builder_form(token, action="add_question"))
    assert 'id="question-3"' in await more.text()

    preview = await web.client.post("/surveys/new", data=builder_form(token, action="preview"))
    html = await preview.text()
    assert preview.status == 200, html
    assert "Preview of the first question" in html and 'data-language="es"' in html
    assert "School bus" in html

    exported = await web.client.post("/surveys/new", data=builder_form(token, action="export"))
    assert exported.status == 200 and exported.headers["Content-Disposition"].endswith(
        'getting-to-school.yaml"'
    )
    spec = SurveySpec.model_validate(yaml.safe_load(await exported.text()))
    assert spec.question("how").next == {"walk": "end", "default": "comments"}
    assert spec.question("how").choices[0].synonyms == ["bus", "yellow bus"]
    assert spec.audience == "school:Lincoln" and spec.remind_unanswered_after == "2d"

    # A survey file loads into the builder and exports unchanged (round trip).
    example = (SHIPPED_EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8")
    loaded = await web.client.post(
        "/surveys/new", data={"csrf_token": token, "action": "load", "yaml": example, "channel_sms": "1"}
    )
    assert 'value="rides_bus"' in await loaded.text()
    again = await web.client.post(
        "/surveys/new",
        data={
            **{k: v for k, v in builder_form(token).items() if not k.startswith("q")},
            "title": "Bus routes",
            "survey_id": "transport-survey",
            "aud_school": "",
            "audience": "school:Lincoln",
            "questions": "3",
            "q1_id": "rides_bus", "q1_type": "choice", "q1_text": "Does your child ride the school bus?",
            "q1_choices": "yes: Yes | yes, y\nno: No | no, n",
            "q1_next": "no -> comments; default -> pickup_time",
            "q2_id": "pickup_time", "q2_type": "rating",
            "q2_text": "How happy are you with the pickup time? (1 = not at all, 5 = very)",
            "q3_id": "comments", "q3_type": "text", "q3_text": "Anything else you would like us to know?",
            "q3_optional": "on", "q3_next": "end",
            "action": "export",
        },
    )  # fmt: skip
    assert SurveySpec.model_validate(yaml.safe_load(await again.text())) == load_survey(
        SHIPPED_EXAMPLES / "transport-survey.yaml"
    )

    bad = await web.client.post("/surveys/new", data=builder_form(token, action="send", q1_choices=""))
    assert bad.status == 400 and "needs choices" in await bad.text()
    sent = await web.client.post(
        "/surveys/new", data=builder_form(token, action="send"), allow_redirects=False
    )
    assert sent.status == 303 and sent.headers["Location"] == "/surveys/getting-to-school"
    results = await (await web.client.get("/surveys/getting-to-school")).text()
    assert "Getting to school" in results


async def test_survey_answers_guardian_by_guardian_and_its_call_list(web: Any) -> None:
    from gateway.sandbox_tools import inject_reply

    await web.login("lincoln@district.example")
    token = await web.csrf("/surveys/new")
    sent = await web.client.post(
        "/surveys/new", data=builder_form(token, action="send"), allow_redirects=False
    )
    assert sent.status == 303
    await web.gw.start_channels()
    await web.gw.dispatcher.run_until_idle()
    await inject_reply(web.gw, "+19135550101", "1")  # Maria: the school bus
    page = await (await web.client.get("/surveys/getting-to-school?answered=yes")).text()
    assert "Maria Hernández" in page and ">bus<" in page
    call_list = await (await web.client.get("/surveys/getting-to-school/call-list.csv")).text()
    lines = call_list.splitlines()
    assert lines[0] == "\ufeffguardian,language,phone,reason,family_id"  # marked UTF-8 for spreadsheets
    assert len(lines) > 1 and not any("Maria Hernández" in line for line in lines)
    assert all(line.endswith(tuple(f"F{n:03d}" for n in range(1000))) for line in lines[1:])
