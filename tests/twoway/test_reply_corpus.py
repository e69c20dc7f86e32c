"""The reply corpus (gateway/testing/reply_corpus.py): more than 120 replies in 11 languages
through the real inbound pipeline. No reply that asks something is ever recorded as an answer
alone; every reply gets the outcome a person would expect."""

from __future__ import annotations

from pathlib import Path

from gateway.testing.harness import open_gateway, write_config
from gateway.testing.reply_corpus import CORPUS, confusion_table, run_corpus


def test_corpus_is_broad_enough() -> None:
    languages = {r.language for r in CORPUS}
    assert len(CORPUS) >= 120
    assert {"en", "es", "fr", "vi", "ar", "so", "sw", "pt"} <= languages
    assert sum(r.asks for r in CORPUS) >= 25
    assert {r.prompt for r in CORPUS} == {"rsvp", "choice", "text", "late"}


async def test_every_reply_of_the_corpus_gets_the_expected_outcome(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw")
    async with open_gateway(config) as gw:
        results = await run_corpus(gw, tmp_path)
    table = confusion_table(results)
    print(table)
    assert not [r for r in results if r.reply.asks and r.outcome == "answer"], table
    wrong = [
        (r.reply.language, r.reply.text, r.reply.expected, r.outcome, r.value) for r in results if not r.ok
    ]
    assert not wrong, f"{table}\n" + "\n".join(map(str, wrong))
