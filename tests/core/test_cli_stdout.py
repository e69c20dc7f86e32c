"""What scripts read from the command line: ``--json`` output is JSON alone on standard output,
whole, however slowly a pipe's reader takes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gateway.testing.harness import write_config

GATEWAY = str(Path(sys.executable).with_name("gateway"))


def test_json_piped_to_a_slow_reader_arrives_whole(tmp_path: Path) -> None:
    # A district script reads `families list --json` through a pipe, slower than the gateway
    # writes: every byte must arrive (after the event loop had run, the text stream once cut
    # such output at the pipe's 64 KiB with exit code 0).
    config = write_config(tmp_path / "gw")
    rows = ["family_id,guardian_name,language,phone,school,grade,student_name"]
    rows += [f"P{n:04d},Guardian Number {n},es,+1913555{n:04d},Lincoln,3,Student {n}" for n in range(600)]
    (tmp_path / "families.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    gateway = [GATEWAY, "--config", str(config)]
    subprocess.run([*gateway, "families", "import", str(tmp_path / "families.csv")], check=True,
                   capture_output=True)
    for _ in range(2):  # the cut came from a race: give it more than one chance
        listing = subprocess.Popen([*gateway, "families", "list", "--json"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        assert listing.stdout is not None
        time.sleep(1.5)  # the reader lags: the gateway has long filled the pipe
        output = listing.stdout.read()
        assert listing.wait() == 0
        assert len(output) > 65536
        assert len(json.loads(output)) == 600


def test_sandbox_echo_goes_to_stderr_and_json_alone_to_stdout(tmp_path: Path) -> None:
    # The default configuration echoes every sandbox message; a reply that is answered (HELP)
    # must still give a script nothing but JSON on standard output.
    subprocess.run([GATEWAY, "init"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([GATEWAY, "families", "import", "examples/families.csv"], cwd=tmp_path, check=True,
                   capture_output=True)
    helped = subprocess.run([GATEWAY, "sandbox", "reply", "--from", "+19135550101", "HELP", "--json"],
                            cwd=tmp_path, check=True, capture_output=True, text=True)
    assert json.loads(helped.stdout)["classification"] == "help"
    assert "── sms → +1******0101 [es]" in helped.stderr
