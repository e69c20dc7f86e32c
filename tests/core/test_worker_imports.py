"""What a worker imports before it sends: only what its configured channels need. A worker
with one e-mail channel does not load the Twilio client's HTTP layer (and ``requests`` under
it) nor ``langcodes``'s name tables — about a tenth of a second of start-up together
(docs/benchmarks.md, worker start-up)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.testing.harness import write_config

PROBE = """
import asyncio, json, sys
from gateway.app import Gateway
from gateway.config import load_config
import gateway.server

async def main():
    gw = Gateway(load_config(sys.argv[1]))
    await gw.migrate()
    await gw.start_channels()
    await gw.close()

asyncio.run(main())
watched = ("twilio.rest", "twilio.http", "requests", "langcodes")
print("PROBE" + json.dumps(sorted(m for m in watched if m in sys.modules)))
"""


def _loaded(config: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][len("PROBE") :])


def test_an_email_worker_loads_neither_the_twilio_client_nor_langcodes(tmp_path: Path) -> None:
    smtp = {"host": "127.0.0.1", "port": 2525, "starttls": False, "from_address": "office@example.org"}
    channels = {"email": {"plugin": "smtp_email", "endpoint": "email", "smtp": smtp}}
    config = write_config(tmp_path, channels=channels)
    assert _loaded(config) == []


def test_a_twilio_channel_loads_its_client_when_it_starts(tmp_path: Path) -> None:
    sms = {
        "plugin": "twilio_sms",
        "endpoint": "phone",
        "account_sid": "AC" + "0" * 32,
        "auth_token": "secret",
        "from_number": "+15005550006",
        "api_base_url": "http://127.0.0.1:9",
        "status_callback": False,
    }
    config = write_config(tmp_path, channels={"sms": sms})
    loaded = _loaded(config)
    assert "twilio.rest" in loaded and "twilio.http" in loaded
