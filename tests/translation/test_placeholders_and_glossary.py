"""HTML, placeholders and glossary terms around a real engine call, in Arabic and Burmese."""

from __future__ import annotations

import re

import pytest
import yaml

from gateway.testing.harness import open_gateway

SOURCE = (
    '<p>Dear <b>Families</b>, the <a href="https://district.example/r?id=7">reading workshop</a> '
    "is on March 4, 2027 at 5:30 PM in room 12 &amp; the library.</p>"
    "<p>Questions: family.liaison@district.example or +1 913 555 0199; 2 snacks per child.</p>"
)
PROTECTED = [
    "<p>",
    "<b>",
    "</b>",
    '<a href="https://district.example/r?id=7">',
    "</a>",
    "March 4, 2027",
    "5:30 PM",
    "12",
    "&amp;",
    "</p>",
    "family.liaison@district.example",
    "+1 913 555 0199",
    "2",
]
WORDS = {
    "ar": ["العائلات", "القراءة", "ورشة", "المكتبة", "وجبات", "طفل"],
    "my": ["မိသားစုများ", "စာဖတ်", "အလုပ်ရုံ", "စာကြည့်တိုက်", "ကလေး"],
}


def _tags(text: str) -> list[str]:
    return re.findall(r"<[^>]+>", text)


@pytest.mark.parametrize("language", ["ar", "my"])
async def test_html_and_placeholders_survive_a_round_trip(make_config, engines, language):
    async with open_gateway(make_config(), extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate(SOURCE, language)
    assert result.origin == "machine"
    assert result.text.startswith(f"[{language}] ")
    for original in PROTECTED:
        assert original in result.text
    assert _tags(result.text) == _tags(SOURCE)  # same tags, same order
    for word in WORDS[language]:
        assert word in result.text
    # The engine saw tokens, never a tag, an address, a date or a number.
    (seen,) = engines.recorder.texts(target=language)
    assert "<" not in seen and "http" not in seen and "@" not in seen and "March" not in seen
    assert re.sub(r"\[\d+\]", "", seen).strip(" ,.;:") and not re.search(r"\d", re.sub(r"\[\d+\]", "", seen))
    assert len(re.findall(r"\[\d+\]", seen)) == len(PROTECTED) + 2  # <p> and </p> twice


@pytest.mark.parametrize("language", ["ar", "my"])
@pytest.mark.parametrize("mode", ["drop", "duplicate", "mangle"])
async def test_a_broken_placeholder_falls_back_to_the_source(make_config, engines, language, mode):
    config = make_config(engine_settings={"table": {"mode": mode}})
    async with open_gateway(config, extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate(SOURCE, language)
        assert (result.text, result.origin) == (SOURCE, "fallback")
        # Not remembered, and counted as a fallback.
        status = await gw.translation.status()
    assert status["memory_entries"] == 0
    assert status["by_language"][language]["fallback"] == 1


async def test_names_are_protected(make_config, engines):
    async with open_gateway(make_config(), extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate(
            "Hello Reading Family, the bus is late.", "es", names=["Reading Family"]
        )
    assert result.text == "[es] Hello Reading Family, the autobús is late."
    assert engines.recorder.texts() == ["Hello [1], the bus is late."]


@pytest.fixture
def glossary_config(tmp_path, make_config):
    glossary = tmp_path / "glossary.yaml"
    glossary.write_text(
        yaml.safe_dump(
            {
                "terms": {
                    "Roosevelt Elementary": "keep",
                    "FAFSA": "keep",
                    "IEP": {"es": "IEP (Programa de Educación Individualizada)", "default": "keep"},
                    "Family Math Night": {
                        "es": "Noche Familiar de Matemáticas",
                        "ar": "ليلة الرياضيات العائلية",
                    },
                }
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return make_config(glossary=str(glossary))


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "es",
            "[es] Bring your IEP (Programa de Educación Individualizada) questions to "
            "Noche Familiar de Matemáticas at Roosevelt Elementary; FAFSA help for every familia.",
        ),
        (
            "ar",
            "[ar] Bring your IEP questions to ليلة الرياضيات العائلية at Roosevelt Elementary; "
            "FAFSA help for every العائلة.",
        ),
        (
            "my",
            "[my] Bring your IEP questions to Family Math Night at Roosevelt Elementary; "
            "FAFSA help for every မိသားစု.",
        ),
    ],
)
async def test_glossary_terms_never_reach_the_engine(glossary_config, engines, language, expected):
    text = (
        "Bring your IEP questions to Family Math Night at Roosevelt Elementary; FAFSA help for every family."
    )
    async with open_gateway(glossary_config, extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate(text, language)
    assert result.text == expected
    (seen,) = engines.recorder.texts()
    assert seen == "Bring your [1] questions to [2] at [3]; [4] help for every family."
