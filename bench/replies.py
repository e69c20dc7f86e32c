"""The reply corpus's confusion table: expected outcome × what the gateway did, for every
reply of gateway/testing/reply_corpus.py, through the real inbound pipeline.

    .venv/bin/python bench/replies.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from gateway.testing.harness import open_gateway, write_config
from gateway.testing.reply_corpus import confusion_table, run_corpus


async def main() -> None:
    """Run the corpus once and print the table and the replies that went otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with open_gateway(write_config(folder / "gw")) as gw:
            results = await run_corpus(gw, folder)
    print(confusion_table(results))
    for result in results:
        if not result.ok:
            print(f"  {result.reply.language}: {result.reply.text!r}: expected {result.reply.expected}, "
                  f"got {result.outcome} ({result.value!r})")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
