"""Translation benchmark: the ``ctranslate2`` engine on the tiny test model, and one broadcast's
distinct strings into 60 languages through the translation service (SQLite), memory cold then warm.

    .venv/bin/python bench/translate.py [--sentences 2000] [--languages 60] [--json]

1. **Engine throughput** (orientation only: the test model has one layer and a 700-token
   vocabulary, so real NLLB-200 models are orders of magnitude slower): sentences per second
   of ``CTranslate2Engine.translate`` en→so in batches of 64, after the model is loaded (load
   time reported apart).
2. **One broadcast into 60 languages**: the workshop invitation's template strings (its msgids
   in the shipped ``locales/gateway.pot``) plus the event's title, description and place
   (the shipped ``examples/reading-workshop.yaml``), through ``TranslationService.translate_many`` for each
   of 60 NLLB languages — first with an empty translation memory (every string goes to the
   engine: engine calls = languages, texts = distinct strings × languages), then again with
   the memory warm (no engine call).

Prints seconds, engine calls, texts per second and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from babel.messages.pofile import read_po
from common import peak_rss_mb, report
from gateway_plugins.ctranslate2_engine import NLLB_TO_BCP47, CTranslate2Engine, nllb_code

from gateway import EngineContext
from gateway.resources import SHIPPED_EXAMPLES, SHIPPED_LOCALES
from gateway.testing.ct2_models import build_ct2_model
from gateway.testing.harness import open_gateway, write_config

EVENT = SHIPPED_EXAMPLES / "reading-workshop.yaml"
POT = SHIPPED_LOCALES / "gateway.pot"
TEMPLATE = "templates/workshop_invitation.j2"

# The languages of a district like Kansas City, Kansas first, then others NLLB-200 has.
DISTRICT_LANGUAGES = (
    "es", "so", "sw", "my", "ne", "prs", "ps", "ar", "vi", "fr", "ht", "rw", "ti", "am", "zh-Hans",
    "zh-Hant", "pt", "ru", "uk", "fa", "ur", "hi", "bn", "pa", "ta", "te", "ko", "ja", "th", "lo",
    "km", "tl", "id", "ms", "tr", "ku", "ckb", "uz", "kk", "ky", "tg", "mn", "ha", "yo", "ig",
    "om", "ln", "lg", "rn", "ny", "sn", "zu", "xh", "wo", "ff", "bm", "kg", "ro", "pl", "bs",
)  # fmt: skip


def broadcast_strings() -> list[str]:
    """The invitation's template msgids and the event's free text, each once."""
    with POT.open("rb") as fh:
        catalog = read_po(fh)
    strings: list[str] = []
    for message in catalog:
        if message.id and any(location[0] == TEMPLATE for location in message.locations):
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            strings.append(msgid)
    event = yaml.safe_load(EVENT.read_text(encoding="utf-8"))
    strings += [event["title"], event["description"], event["place"]]
    return list(dict.fromkeys(strings))


def sample_sentences(count: int) -> list[str]:
    """Varied sentences of 8 to 20 words."""
    words = (
        "the family school night math reading workshop is on at in for with your child please come "
        "join us bring snacks childcare provided bus route pickup time reply yes no world"
    ).split()
    return [
        " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(8 + i % 13)).capitalize() + "."
        for i in range(count)
    ]


async def engine_throughput(model: Path, sentences: int, folder: Path) -> dict[str, object]:
    """Sentences per second of the engine itself, en→so."""
    engine = CTranslate2Engine(EngineContext(folder / "engine", {"model_dir": str(model)}))
    try:
        started = time.perf_counter()
        await engine.translate(["Hello world."], "en", "so")  # loads the model
        loaded = time.perf_counter() - started
        texts = sample_sentences(sentences)
        started = time.perf_counter()
        for start in range(0, len(texts), 64):
            await engine.translate(texts[start : start + 64], "en", "so")
        seconds = time.perf_counter() - started
    finally:
        engine.close()
    return {
        "model load + first sentence s": round(loaded, 3),
        "sentences": sentences,
        "seconds": round(seconds, 2),
        "sentences/s": round(sentences / seconds),
    }


async def broadcast_languages(model: Path, languages: list[str], folder: Path) -> dict[str, object]:
    """One broadcast's distinct strings into every language: memory cold, then warm."""
    strings = broadcast_strings()
    config = write_config(
        folder / "gw",
        translation={
            "engines": ["ctranslate2"],
            "engine_settings": {"ctranslate2": {"model_dir": str(model)}},
        },
    )
    figures: dict[str, object] = {"distinct strings": len(strings), "languages": len(languages)}
    async with open_gateway(config, start=False) as gw:
        await gw.translation.translate_many(["Hello world."], "es")  # load the model
        for label in ("cold", "warm"):
            calls_before = gw.translation.engine_calls
            origins: dict[str, int] = {}
            started = time.perf_counter()
            for language in languages:
                for result in await gw.translation.translate_many(strings, language):
                    origins[result.origin] = origins.get(result.origin, 0) + 1
            seconds = time.perf_counter() - started
            figures[f"{label}: seconds"] = round(seconds, 2)
            figures[f"{label}: engine calls"] = gw.translation.engine_calls - calls_before
            figures[f"{label}: texts/s"] = round(len(strings) * len(languages) / seconds)
            figures[f"{label}: origins"] = dict(sorted(origins.items()))
            figures[f"{label}: peak RSS MB"] = round(peak_rss_mb(), 1)
    return figures


async def run(sentences: int, count: int) -> dict[str, object]:
    """Both measurements."""
    languages = [tag for tag in DISTRICT_LANGUAGES if nllb_code(tag)][:count]
    if len(languages) < count:
        raise SystemExit(f"only {len(languages)} NLLB languages in the list")
    started = time.perf_counter()
    model = build_ct2_model("nllb", language_tokens=list(NLLB_TO_BCP47))
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures: dict[str, object] = {"test model build s": round(built, 2)}
        engine = await engine_throughput(model, sentences, folder)
        figures.update({f"engine {key}": value for key, value in engine.items()})
        broadcast = await broadcast_languages(model, languages, folder)
        figures.update({f"broadcast {key}": value for key, value in broadcast.items()})
    return figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--languages", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(run(args.sentences, args.languages))
    if args.json:
        print(json.dumps(figures))
        return
    report(f"ctranslate2 engine (tiny NLLB-style test model), {args.languages} languages", figures)


if __name__ == "__main__":
    main()
