"""Parse a families CSV into households: validation per row, merging per ``family_id``.

Columns (PRODUCT.md): ``family_id, guardian_name, language, phone, email, telegram_chat_id,
preferred_channel, school, grade, student_name, timezone, tags``. Unknown columns are ignored.
``line`` in errors is the physical line of the file (the header is line 1). A bad row is
reported and skipped; the rest are imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain.contacts import normalize_email, normalize_phone, normalize_telegram
from gateway.domain.languages import LanguageError, normalize_language
from gateway.rendering.bidi import BIDI_CONTROLS, strip_bidi_controls

__all__ = [
    "COLUMNS",
    "CsvProblem",
    "FamilyRecord",
    "GuardianRecord",
    "ParsedFamilies",
    "StudentRecord",
    "name_key",
    "parse_families_csv",
]

COLUMNS = (
    "family_id",
    "guardian_name",
    "language",
    "phone",
    "email",
    "telegram_chat_id",
    "preferred_channel",
    "school",
    "grade",
    "student_name",
    "timezone",
    "tags",
)
REQUIRED = ("family_id", "guardian_name", "language")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def name_key(name: str) -> str:
    """How names are compared: case- and spacing-insensitive."""
    return " ".join(name.split()).casefold()


@dataclass
class CsvProblem:
    """One error or warning, shaped like the ``families import --json`` contract."""

    line: int
    family_id: str | None
    column: str | None
    value: str | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "line": self.line,
            "family_id": self.family_id,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
        }


@dataclass
class GuardianRecord:
    """A guardian merged from one or more rows."""

    name: str
    language: str
    timezone: str
    preferred_channel: str | None = None
    endpoints: dict[str, list[str]] = field(default_factory=dict)
    first_line: int = 0
    timezone_assumed: bool = False
    """No row gave a time zone: ``timezone`` is the default, and quiet hours are careful."""

    def add_endpoint(self, kind: str, address: str) -> None:
        """Add an address once."""
        addresses = self.endpoints.setdefault(kind, [])
        if address not in addresses:
            addresses.append(address)


@dataclass
class StudentRecord:
    """A student merged from one or more rows."""

    name: str
    school: str | None
    grade: str | None
    tags: list[str] = field(default_factory=list)


@dataclass
class FamilyRecord:
    """A household as the file describes it."""

    family_id: str
    guardians: dict[str, GuardianRecord] = field(default_factory=dict)
    students: dict[str, StudentRecord] = field(default_factory=dict)


@dataclass
class ParsedFamilies:
    """The file's households plus every problem found, by line."""

    families: dict[str, FamilyRecord]
    errors: list[CsvProblem]
    warnings: list[CsvProblem]
    rows: int


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]
    bidi_stripped: list[str] = field(default_factory=list)


def _decoded_lines(data: bytes, errors: list[CsvProblem]) -> str:
    """UTF-8 (BOM or not); undecodable lines are reported and dropped, never guessed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    good: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            good.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(
                CsvProblem(number, None, None, None, "not valid UTF-8 (save the file as 'CSV UTF-8')")
            )
            good.append("")  # keep physical line numbers aligned
    return "\n".join(good)


def _rows(text: str, errors: list[CsvProblem]) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        errors.append(CsvProblem(1, None, None, None, "the file is empty"))
        return
    columns = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        errors.append(
            CsvProblem(1, None, ",".join(missing), None, f"missing required column(s): {', '.join(missing)}")
        )
        return
    if not any(c in columns for c in ("phone", "email", "telegram_chat_id")):
        errors.append(
            CsvProblem(1, None, "phone", None, "needs at least one of phone, email, telegram_chat_id")
        )
        return
    start = reader.line_num + 1
    for record in reader:
        line = start
        start = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        values = {
            col: record[i].strip() if i < len(record) else ""
            for i, col in enumerate(columns)
            if col in COLUMNS
        }
        # Text-direction controls (an override such as U+202E reverses what follows it) never
        # reach a message, a page or a log: removed here, and the row says so.
        stripped = [col for col, value in values.items() if BIDI_CONTROLS.search(value)]
        for col in stripped:
            values[col] = strip_bidi_controls(values[col]).strip()
        yield _Row(line, values, stripped)


def parse_families_csv(
    data: bytes,
    *,
    default_region: str = "US",
    default_language: str = "en",
    default_timezone: str = "America/Chicago",
    channels: frozenset[str] | None = None,
) -> ParsedFamilies:
    """Parse and merge a families CSV; never raises for bad rows (they become errors)."""
    errors: list[CsvProblem] = []
    warnings: list[CsvProblem] = []
    text = _decoded_lines(data, errors)
    families: dict[str, FamilyRecord] = {}
    seen_rows: dict[tuple[str, ...], int] = {}
    count = 0
    for row in _rows(text, errors):
        count += 1
        signature = tuple(row.values.get(c, "") for c in COLUMNS)
        if signature in seen_rows:
            warnings.append(
                CsvProblem(
                    row.line,
                    row.values.get("family_id"),
                    None,
                    None,
                    f"duplicate of line {seen_rows[signature]}; ignored",
                )
            )
            continue
        seen_rows[signature] = row.line
        problem = _apply_row(
            row,
            families,
            warnings,
            default_region=default_region,
            default_language=default_language,
            default_timezone=default_timezone,
            channels=channels,
        )
        if problem:
            errors.append(problem)
    for family in families.values():
        for guardian in family.guardians.values():
            if not guardian.endpoints:
                warnings.append(
                    CsvProblem(
                        guardian.first_line,
                        family.family_id,
                        "phone",
                        None,
                        f"guardian {guardian.name!r} has no phone, email or Telegram chat id",
                    )
                )
    errors.sort(key=lambda p: p.line)
    warnings.sort(key=lambda p: p.line)
    return ParsedFamilies(families, errors, warnings, count)


def _apply_row(
    row: _Row,
    families: dict[str, FamilyRecord],
    warnings: list[CsvProblem],
    *,
    default_region: str,
    default_language: str,
    default_timezone: str,
    channels: frozenset[str] | None,
) -> CsvProblem | None:
    v = row.values
    family_id = v.get("family_id", "")

    def problem(column: str, reason: str) -> CsvProblem:
        return CsvProblem(row.line, family_id or None, column, v.get(column), reason)

    if not family_id:
        return problem("family_id", "required")
    if len(family_id) > 64:
        return problem("family_id", "longer than 64 characters")
    guardian_name = v.get("guardian_name", "")
    if not guardian_name:
        return problem("guardian_name", "required")
    for column in row.bidi_stripped:
        warnings.append(problem(column, "invisible text-direction characters removed"))
    for column in ("guardian_name", "student_name", "school"):
        value = v.get(column, "")
        if value.startswith(FORMULA_PREFIXES):
            warnings.append(problem(column, "starts like a spreadsheet formula; stored as plain text"))
    try:
        language = normalize_language(v.get("language") or default_language)
    except LanguageError as exc:
        return problem("language", str(exc))
    timezone = v.get("timezone") or default_timezone
    assumed = not v.get("timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return problem("timezone", "unknown time zone (use an IANA name like America/Chicago)")
    endpoints: list[tuple[str, str]] = []
    if v.get("phone"):
        try:
            endpoints.append(("phone", normalize_phone(v["phone"], default_region)))
        except ValueError as exc:
            return problem("phone", str(exc))
    if v.get("email"):
        try:
            endpoints.append(("email", normalize_email(v["email"])))
        except ValueError as exc:
            return problem("email", str(exc))
    if v.get("telegram_chat_id"):
        try:
            endpoints.append(("telegram", normalize_telegram(v["telegram_chat_id"])))
        except ValueError as exc:
            return problem("telegram_chat_id", str(exc))
    preferred = (v.get("preferred_channel") or "").strip().lower() or None
    if preferred and channels is not None and preferred not in channels:
        return problem(
            "preferred_channel",
            f"unknown channel (configured: {', '.join(sorted(channels)) or 'none'})",
        )
    student_name = v.get("student_name", "")
    if (v.get("school") or v.get("grade")) and not student_name:
        return problem("student_name", "required when school or grade is given")

    family = families.setdefault(family_id, FamilyRecord(family_id))
    key = name_key(guardian_name)
    guardian = family.guardians.get(key)
    if guardian is None:
        guardian = GuardianRecord(
            guardian_name, language, timezone, preferred, first_line=row.line, timezone_assumed=assumed
        )
        family.guardians[key] = guardian
        if assumed:
            warnings.append(
                problem(
                    "timezone",
                    f"empty: dates shown in {default_timezone}; quiet hours use the most restrictive "
                    "window of the district's time zones until a time zone is given",
                )
            )
    else:
        if guardian.timezone_assumed and not assumed:
            guardian.timezone, guardian.timezone_assumed = timezone, False
        if guardian.language != language:
            warnings.append(
                problem("language", f"guardian already has language {guardian.language!r}; kept it")
            )
        if preferred and not guardian.preferred_channel:
            guardian.preferred_channel = preferred
    for kind, address in endpoints:
        guardian.add_endpoint(kind, address)
    if student_name:
        skey = name_key(student_name)
        tags = [t.strip() for t in v.get("tags", "").split(";") if t.strip()]
        student = family.students.get(skey)
        if student is None:
            family.students[skey] = StudentRecord(
                student_name, v.get("school") or None, v.get("grade") or None, tags
            )
        else:
            for tag in tags:
                if tag not in student.tags:
                    student.tags.append(tag)
            if v.get("school") and student.school and v["school"] != student.school:
                warnings.append(problem("school", f"student already at {student.school!r}; kept it"))
    return None
