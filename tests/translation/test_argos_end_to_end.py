"""The real Argos path: a genuine test package installed with `gateway translate install`,
a broadcast translated through argostranslate, the result read from the sandbox outbox. Also:
commands that translate nothing never import argostranslate (or torch)."""

from __future__ import annotations

import json
import subprocess
import sys

from translation_support import dispatch, emails, run_json, write_event, write_families

from gateway.testing.argos_package import build_test_package
from gateway.testing.harness import write_config

DESCRIPTION = "Welcome to our world of reading on March 4; the map is at https://district.example/w."
#: The Arabic catalog's note for a message translated except for some text (here the description).
ARABIC_NOTE = "جزء من هذه الرسالة ما زال باللغة الإنجليزية: لم نتمكن بعد من ترجمته إلى لغتك."


def test_installed_package_translates_a_broadcast(tmp_path, cli, no_network):
    config = write_config(tmp_path / "gw", translation={"engines": ["argos"], "fallback": "source_language"})
    spanish = build_test_package(tmp_path / "pkg-es", "en", "es", {"▁world": "▁order"})
    mangling = build_test_package(tmp_path / "pkg-ar", "en", "ar", {"]": ")"})  # breaks [n] tokens

    result = cli(["translate", "install", str(spanish)], config)
    assert result.exit_code == 0, result.output
    assert "en→es" in result.output
    assert cli(["translate", "install", str(mangling)], config).exit_code == 0
    packages = tmp_path / "gw" / "data" / "translation" / "argos" / "packages"
    assert sorted(p.name for p in packages.iterdir() if (p / "metadata.json").exists()) == [
        "translate-en_ar-1_0",
        "translate-en_es-1_0",
    ]
    languages = run_json(cli, ["translate", "languages"], config)
    (argos,) = languages["engines"]
    assert argos["engine"] == "argos" and argos["available"]
    assert {(p["source"], p["target"]) for p in argos["pairs"]} == {("en", "es"), ("en", "ar")}
    assert "es" in languages["catalogs"]

    families = write_families(tmp_path / "families.csv", 8, ("es", "ar"))
    assert cli(["families", "import", str(families)], config).exit_code == 0
    event = write_event(tmp_path / "event.yaml", description=DESCRIPTION)
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert sent["translation"]["es"]["texts"] == {"machine": 3}
    # The mangled description is rejected; the title and place (no placeholder) pass.
    assert sent["translation"]["ar"]["texts"] == {"machine": 2, "fallback": 1}
    dispatch(config)

    spanish_mail = emails(cli, config, "es")
    assert spanish_mail
    for message in spanish_mail:
        assert (
            "Welcome to our order of reading on March 4; the map is at https://district.example/w."
            in (message["body"])
        )
        assert "world" not in message["body"]
    arabic_mail = emails(cli, config, "ar")
    assert arabic_mail and all(ARABIC_NOTE in m["body"] and DESCRIPTION in m["body"] for m in arabic_mail)

    status = run_json(cli, ["translate", "status"], config)
    assert status["engine_calls"] == 2  # one batch per language
    assert status["memory_entries"] == 5  # 3 Spanish, 2 Arabic (the rejected one is not kept)


def test_install_refuses_a_file_that_is_not_a_package(tmp_path, cli):
    config = write_config(tmp_path / "gw", translation={"engines": ["argos"]})
    bogus = tmp_path / "bogus.argosmodel"
    bogus.write_bytes(b"not a zip")
    result = cli(["translate", "install", str(bogus)], config)
    assert result.exit_code == 2
    assert "not an Argos package" in result.output


PROBE = """
import json, sys
sys.argv = ["gateway", *json.loads(sys.argv[1])]
from gateway.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in ("argostranslate", "torch", "ctranslate2", "stanza") if m in sys.modules)
print("PROBE" + json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][len("PROBE") :])


def test_commands_that_translate_nothing_do_not_import_argos_or_torch(tmp_path):
    config = write_config(tmp_path / "gw", translation={"engines": ["argos"]})
    assert _probe(["--help"]) == {"code": 0, "heavy": []}
    listed = _probe(["families", "list", "--json", "--config", str(config)])
    assert listed == {"code": 0, "heavy": []}
    languages = _probe(["translate", "languages", "--config", str(config)])
    assert languages == {"code": 0, "heavy": []}
