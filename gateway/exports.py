"""Exports: survey results as CSV (spreadsheet-safe), machine translations as .po for review,
and reviewed .po entries imported back into the translation memory."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["export_machine_translations", "import_reviewed_translations", "results_csv", "safe_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will never execute: formula-like text gets a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def results_csv(results: dict[str, Any]) -> str:
    """One row per question × answer × language (and school), with counts."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["survey_id", "question_id", "question", "answer", "language", "school", "count"])
    for question in results["questions"]:
        for value, count in sorted(question["answers"].items()):
            writer.writerow(
                [
                    safe_cell(x)
                    for x in (results["survey_id"], question["id"], question["text"], value, "*", "*", count)
                ]
            )
        for language, counts in question["by_language"].items():
            for value, count in sorted(counts.items()):
                writer.writerow(
                    [
                        safe_cell(x)
                        for x in (
                            results["survey_id"],
                            question["id"],
                            question["text"],
                            value,
                            language,
                            "*",
                            count,
                        )
                    ]
                )
        for school, counts in question.get("by_school", {}).items():
            for value, count in sorted(counts.items()):
                writer.writerow(
                    [
                        safe_cell(x)
                        for x in (
                            results["survey_id"],
                            question["id"],
                            question["text"],
                            value,
                            "*",
                            school,
                            count,
                        )
                    ]
                )
    return out.getvalue()


async def export_machine_translations(gw: Gateway, language: str, target: Path) -> int:
    """Write machine translations into ``language`` as fuzzy entries of a .po file."""
    entries = await gw.translation.machine_entries(language)
    catalog = Catalog(locale=None, domain="gateway", project="family-engagement-gateway", fuzzy=False)
    catalog.locale = None
    for entry in entries:
        catalog.add(
            entry.source_text,
            entry.translated_text,
            flags=("fuzzy",),
            auto_comments=[
                f"machine translation by {entry.engine or 'an engine'}, "
                f"{entry.source_language}→{entry.target_language}, used {entry.hits} times"
            ],
        )

    def write() -> None:
        with target.open("wb") as fh:
            write_po(fh, catalog, width=100, include_previous=False)

    await asyncio.to_thread(write)
    return len(entries)


async def import_reviewed_translations(gw: Gateway, language: str, path: Path) -> int:
    """Store every translated, non-fuzzy entry as a reviewed translation."""

    def read() -> list[tuple[str, str]]:
        with path.open("rb") as fh:
            catalog = read_po(fh)
        return [
            (m.id, m.string) for m in catalog if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
        ]

    pairs = await asyncio.to_thread(read)
    return await gw.translation.add_reviewed(gw.config.translation.source_language, language, pairs)
