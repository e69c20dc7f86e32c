"""Parse a families CSV into households: validation per row, merging per ``family_id``.

Columns (PRODUCT.md): ``family_id, guardian_name, language, phone, email, telegram_chat_id,
preferred_channel, school, grade, student_name, timezone, tags``, and ``address:<kind>`` for any
declared address kind (``address:whatsapp``, ``address:app``: see :mod:`gateway.addresses`;
``phone``, ``email`` and ``telegram_chat_id`` are the older names of ``address:phone``,
``address:email`` and ``address:telegram``). An ``address:`` column of a kind no plugin declares
is an error naming it; other unknown columns are ignored. ``line`` in errors is the physical
line of the file (the header is line 1). A bad row is reported and skipped; the rest are
imported.

Encodings: UTF-8 (with or without a byte-order mark), and UTF-16 when the file starts with its
byte-order mark (Excel's "Unicode Text"); nothing else is guessed — a line that is not UTF-8 is
reported. Separators: commas, or — when the header only splits into the required columns that
way — tabs (Excel's "Unicode Text", "Text (Tab delimited)") or semicolons (Excel where the
decimal separator is a comma).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.addresses import AddressKind, AddressKinds
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
#: Column prefix of an address of a declared kind.
ADDRESS_PREFIX = "address:"
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


@dataclass(frozen=True)
class _Header:
    """The file's address columns: column name → kind, in file order."""

    addresses: dict[str, AddressKind]


def _decoded_lines(data: bytes, errors: list[CsvProblem]) -> str:
    """UTF-8 (BOM or not), or UTF-16 that says so with its BOM; undecodable lines are reported
    and dropped, never guessed."""
    encoding, reason = "utf-8", "not valid UTF-8 (save the file as 'CSV UTF-8')"
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
        reason = "not valid UTF-16 although the file starts as UTF-16 (save the file as 'CSV UTF-8')"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        pass
    # What cannot be decoded becomes U+FFFD: such a line is reported and dropped.
    lines = data.decode(encoding, errors="replace").split("\n")
    for number, line in enumerate(lines, start=1):
        if "\ufffd" in line:
            errors.append(CsvProblem(number, None, None, None, reason))
            lines[number - 1] = ""  # keep physical line numbers aligned
    return "\n".join(lines)


def _header_columns(
    columns: list[str], kinds: AddressKinds, errors: list[CsvProblem]
) -> _Header | None:
    """The address columns of the header; None (with errors) when one names an unknown kind or
    there is none."""
    addresses: dict[str, AddressKind] = {}
    for column in columns:
        kind = kinds.for_column(column)
        if kind is not None:
            addresses[column] = kind
        elif column.startswith(ADDRESS_PREFIX):
            name = column.removeprefix(ADDRESS_PREFIX)
            errors.append(
                CsvProblem(
                    1,
                    None,
                    column,
                    None,
                    f"unknown address kind {name!r} (declared: {', '.join(kinds)}; a channel plugin "
                    "declares its kind)",
                )
            )
    if any(e.line == 1 for e in errors):
        return None
    if not addresses:
        legacy = [c for k in kinds.values() for c in k.columns]
        errors.append(
            CsvProblem(
                1,
                None,
                "phone",
                None,
                f"needs at least one address column: {', '.join(legacy)} or address:<kind> "
                f"(declared kinds: {', '.join(kinds)})",
            )
        )
        return None
    return _Header(addresses)


#: Column separators a header may use: the first that splits it into the required columns.
SEPARATORS = (",", "\t", ";")


def _header_names(cells: list[str]) -> list[str]:
    return [c.strip().lower().lstrip("\ufeff") for c in cells]


def _separator(text: str) -> str:
    """The separator of the file's header line: the first of :data:`SEPARATORS` that splits it
    into the required columns (a comma when none does: the error then names what is missing)."""
    end = text.find("\n")
    line = text if end < 0 else text[:end]
    for separator in SEPARATORS:
        cells = next(csv.reader([line], delimiter=separator), [])
        if all(c in _header_names(cells) for c in REQUIRED):
            return separator
    return ","


def _rows(
    text: str, errors: list[CsvProblem], kinds: AddressKinds, header_out: list[_Header]
) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text))
    try:
        header = next(reader)
    except StopIteration:
        errors.append(CsvProblem(1, None, None, None, "the file is empty"))
        return
    columns = _header_names(header)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        errors.append(
            CsvProblem(1, None, ",".join(missing), None, f"missing required column(s): {', '.join(missing)}")
        )
        return
    parsed = _header_columns(columns, kinds, errors)
    if parsed is None:
        return
    header_out.append(parsed)
    start = reader.line_num + 1
    for record in reader:
        line = start
        start = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        values = {
            col: record[i].strip() if i < len(record) else ""
            for i, col in enumerate(columns)
            if col in COLUMNS or col in parsed.addresses
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
    kinds: AddressKinds | None = None,
    legacy_preferred: dict[str, str | None] | None = None,
) -> ParsedFamilies:
    """Parse and merge a families CSV; never raises for bad rows (they become errors).

    ``kinds``: the declared address kinds (default: the built-in ones). ``channels``: the
    configured channel names ``preferred_channel`` may name; ``legacy_preferred`` maps the
    older values (an address kind, ``sms``) to the channel they now mean (a warning says so).
    """
    errors: list[CsvProblem] = []
    warnings: list[CsvProblem] = []
    kinds = kinds if kinds is not None else AddressKinds()
    text = _decoded_lines(data, errors)
    families: dict[str, FamilyRecord] = {}
    seen_rows: dict[tuple[tuple[str, str], ...], int] = {}
    count = 0
    headers: list[_Header] = []
    for row in _rows(text, errors, kinds, headers):
        count += 1
        signature = tuple(sorted(row.values.items()))
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
            addresses=headers[0].addresses,
            legacy_preferred=legacy_preferred or {},
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
                        f"guardian {guardian.name!r} has no address (phone, e-mail, chat id...)",
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
    addresses: dict[str, AddressKind],
    legacy_preferred: dict[str, str | None],
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
    for column, kind in addresses.items():
        raw = v.get(column)
        if not raw:
            continue
        try:
            endpoints.append((kind.name, kind.parse(raw, region=default_region)))
        except ValueError as exc:
            return problem(column, str(exc))
    preferred = (v.get("preferred_channel") or "").strip().lower() or None
    if preferred and channels is not None and preferred not in channels:
        if preferred in legacy_preferred:
            channel = legacy_preferred[preferred]
            if channel is None:
                warnings.append(
                    problem(
                        "preferred_channel",
                        f"{preferred!r} is an address kind, not a channel, and no configured "
                        "channel reaches it: kept, used once such a channel is configured",
                    )
                )
            else:
                warnings.append(
                    problem(
                        "preferred_channel",
                        f"{preferred!r} is an address kind, not a channel: stored as channel "
                        f"{channel!r} (the first channel of that kind)",
                    )
                )
                preferred = channel
        else:
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
