"""The ctranslate2 engine inside a gateway: placeholders guarded by the translation service,
`gateway translate install --model DIR` and `gateway translate languages --json` for a
district's imported families."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

from gateway.testing.harness import open_gateway, write_config


def _families(path: Path, languages: dict[str, int]) -> Path:
    """One family per entry, ``count`` guardians each (the first family of a language gets two)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["family_id", "guardian_name", "language", "phone", "school", "grade", "student_name"]
        )
        number = 0
        for language, families in languages.items():
            for family in range(families):
                guardians = 2 if family == 0 else 1
                for _ in range(guardians):
                    number += 1
                    writer.writerow(
                        [f"F-{language}-{family}", f"Guardian {number}", language,
                         f"+1913555{number:04d}", "Lincoln", "3", f"Student {language} {family}"]
                    )  # fmt: skip
    return path


def _config(folder: Path, model: Path) -> Path:
    settings = {"ctranslate2": {"model_dir": str(model), "threads": 1}}
    return write_config(folder, translation={"engines": ["ctranslate2"], "engine_settings": settings})


async def test_the_service_rejects_a_translation_that_breaks_a_placeholder(
    tmp_path, mangling_model, nllb_model
):
    config = _config(tmp_path / "gw", mangling_model)
    async with open_gateway(config) as gw:
        broken, plain = await gw.translation.translate_many(
            ["The world meets on March 4 at 5:30 PM.", "Welcome to the world"], "so"
        )
    assert broken.origin == "fallback" and broken.reason in ("placeholder lost", "placeholder broken")
    assert broken.text == "The world meets on March 4 at 5:30 PM."
    assert plain.origin == "machine" and plain.engine == "ctranslate2"
    assert plain.text == "Welcome to the world"  # this model only mangles "]"

    async with open_gateway(_config(tmp_path / "gw2", nllb_model)) as gw:
        (kept,) = await gw.translation.translate_many(["The world meets on March 4 at 5:30 PM."], "so")
    assert kept.origin == "machine" and kept.text == "The order meets on March 4 at 5:30 PM."


def test_install_model_and_languages_for_the_districts_families(tmp_path, cli, nllb_model):
    config = write_config(tmp_path / "gw", translation={"engines": ["ctranslate2"]})
    families = _families(tmp_path / "families.csv", {"so": 3, "prs": 2, "ht": 1, "kar": 1, "es": 1, "en": 1})
    assert cli(["families", "import", str(families)], config).exit_code == 0

    before = json.loads(cli(["translate", "languages", "--json"], config).stdout)
    assert before["uncovered"] == ["so", "prs", "es", "ht", "kar"]
    (engine,) = before["engines"]
    assert engine["engine"] == "ctranslate2" and not engine["available"]
    assert any("translate install --model" in note for note in engine["notes"])

    installed = cli(["translate", "install", "--model", str(nllb_model)], config)
    assert installed.exit_code == 0, installed.output
    assert "registered the nllb model" in installed.stdout and "202 languages" in installed.stdout
    assert "CC-BY-NC-4.0" in installed.stdout
    assert "non-commercial use only" in installed.stderr

    data = json.loads(cli(["translate", "languages", "--json"], config).stdout)
    assert data["source_language"] == "en"
    rows = {row["language"]: row for row in data["district"]}
    assert [row["language"] for row in data["district"]] == ["so", "prs", "en", "es", "ht", "kar"]
    assert (rows["so"]["guardians"], rows["so"]["families"]) == (4, 3)
    assert rows["so"]["catalog"] == "so" and rows["so"]["status"] == "machine"
    assert rows["so"]["engines"] == [
        {"engine": "ctranslate2", "code": "som_Latn", "licence": engine_licence(data)}
    ]
    assert rows["so"]["replies"] == ["ctranslate2"]
    assert rows["prs"]["engines"][0]["code"] == "prs_Arab" and rows["prs"]["catalog"] is None
    assert rows["ht"]["engines"][0]["code"] == "hat_Latn"
    assert rows["en"]["status"] == "source"
    assert rows["kar"] == {
        "language": "kar", "name": rows["kar"]["name"], "guardians": 2, "families": 1,
        "catalog": None, "engines": [], "replies": [], "status": "uncovered",
    }  # fmt: skip
    assert data["uncovered"] == ["kar"]
    (engine,) = data["engines"]
    assert engine["available"] and len(engine["languages"]) == 201
    assert "CC-BY-NC-4.0" in engine["licence"] and str(nllb_model) in engine["source"]
    assert {"source": "en", "target": "so"} in engine["pairs"]
    assert all(p["source"] == "en" or p["target"] == "en" for p in engine["pairs"])

    table = cli(["translate", "languages"], config)
    assert table.exit_code == 0
    assert "no engine translates into: kar" in " ".join(table.stdout.split())


def engine_licence(data: dict) -> str:
    """The ctranslate2 engine's licence as ``translate languages`` reports it."""
    return next(e["licence"] for e in data["engines"] if e["engine"] == "ctranslate2")


def test_install_model_names_what_is_missing(tmp_path, cli, nllb_model):
    config = write_config(tmp_path / "gw", translation={"engines": []})
    broken = tmp_path / "nllb-200-distilled-600M"
    shutil.copytree(nllb_model, broken)
    (broken / "sentencepiece.bpe.model").unlink()
    result = cli(["translate", "install", "--model", str(broken)], config)
    assert result.exit_code == 2
    assert "missing sentencepiece.bpe.model" in result.output
    assert "--copy_files" in result.output
    ok = cli(["translate", "install", "--model", str(nllb_model)], config)
    assert ok.exit_code == 0
    assert "ctranslate2 is not listed in translation.engines" in ok.stderr


PROBE = """
import json, sys
sys.argv = ["gateway", *json.loads(sys.argv[1])]
from gateway.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("argostranslate", "torch", "ctranslate2", "sentencepiece") if m in sys.modules)
print("PROBE" + json.dumps({"code": code, "heavy": heavy}))
"""


def test_listing_languages_reads_the_vocabulary_without_importing_ctranslate2(tmp_path, cli, nllb_model):
    config = write_config(tmp_path / "gw", translation={"engines": ["ctranslate2"]})
    assert cli(["translate", "install", "--model", str(nllb_model)], config).exit_code == 0
    args = ["translate", "languages", "--json", "--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE")]
    assert line, done.stdout + done.stderr
    assert json.loads(line[-1][len("PROBE") :]) == {"code": 0, "heavy": []}
