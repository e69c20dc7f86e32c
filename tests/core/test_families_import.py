"""`gateway families import` and `families list`: E.164, languages, merging, per-row errors."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

from gateway.domain.family_csv import parse_families_csv

HEADER = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,"
    "school,grade,student_name,timezone,tags\n"
)


def csv_file(tmp_path: Path, body: str, *, bom: bool = False, name: str = "families.csv") -> Path:
    path = tmp_path / name
    data = (HEADER + body).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def test_import_merges_rows_normalises_and_lists(tmp_path: Path, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = csv_file(
        tmp_path,
        (
            "F1,Maria Lopez,es-MX,(913) 555-0101,,,sms,Roosevelt,3,Ana Lopez,,newcomer\n"
            "F1,maria  lopez,es-MX,(913) 555-0101,,,sms,Roosevelt,4,Luis Lopez,,\n"
            "F1,Juan Lopez,en,,juan@example.net,,email,Roosevelt,3,Ana Lopez,,\n"
            "F2,Amina Ali,so,+1 913 555 0102,,777,telegram,Lincoln,6,Omar Ali,America/New_York,\n"
        ),
        bom=True,
    )
    result = cli(["families", "import", str(path), "--json"], config_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["families_imported"] == 2
    assert report["families_updated"] == 0
    assert report["students"] == 3
    assert report["errors"] == []

    listing = json.loads(cli(["families", "list", "--json"], config_path).stdout)
    f1 = next(f for f in listing if f["family_id"] == "F1")
    assert [g["name"] for g in f1["guardians"]] == ["Maria Lopez", "Juan Lopez"]
    maria = f1["guardians"][0]
    assert maria["language"] == "es-MX"
    assert maria["endpoints"] == [
        {
            "channel": "sms",
            "kind": "phone",
            "label": "phone",
            "address": "+19135550101",
            "masked": "+1******0101",
            "opted_out": False,
            "invalid": False,
            "channels": [{"channel": "sms", "state": "subscribed", "everywhere": False, "since": None}],
        }
    ]
    assert sorted(s["name"] for s in f1["students"]) == ["Ana Lopez", "Luis Lopez"]
    assert f1["tags"] == ["newcomer"]
    f2 = next(f for f in listing if f["family_id"] == "F2")
    assert {e["channel"] for e in f2["guardians"][0]["endpoints"]} == {"sms", "telegram"}
    assert f2["guardians"][0]["timezone"] == "America/New_York"

    by_school = json.loads(cli(["families", "list", "--school", "lincoln", "--json"], config_path).stdout)
    assert [f["family_id"] for f in by_school] == ["F2"]
    by_language = json.loads(cli(["families", "list", "--language", "es", "--json"], config_path).stdout)
    assert [f["family_id"] for f in by_language] == ["F1"]


def test_reimport_is_idempotent(tmp_path: Path, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = csv_file(tmp_path, "F1,Maria Lopez,es,(913) 555-0101,,,sms,Roosevelt,3,Ana Lopez,,\n")
    first = json.loads(cli(["families", "import", str(path), "--json"], config_path).stdout)
    second = json.loads(cli(["families", "import", str(path), "--json"], config_path).stdout)
    assert first["families_imported"] == 1
    assert second["families_imported"] == 0 and second["families_updated"] == 0
    assert second["families_unchanged"] == 1
    listing = json.loads(cli(["families", "list", "--json"], config_path).stdout)
    assert len(listing) == 1 and len(listing[0]["guardians"]) == 1
    assert len(listing[0]["guardians"][0]["endpoints"]) == 1


def test_bad_rows_are_reported_by_line_and_good_rows_imported(tmp_path: Path, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = csv_file(
        tmp_path,
        (
            "F1,Maria Lopez,es,(913) 555-0101,,,sms,Roosevelt,3,Ana Lopez,,\n"  # line 2 ok
            "F2,Bad Phone,es,12345,,,sms,Roosevelt,3,Kid,,\n"  # line 3
            "F3,Wrong Lang,sp,(913) 555-0103,,,sms,Roosevelt,3,Kid Three,,\n"  # line 4
            ",No Family,en,(913) 555-0104,,,sms,Roosevelt,3,Kid Four,,\n"  # line 5
            "F5,Bad Email,en,,not-an-email,,email,Roosevelt,3,Kid Five,,\n"  # line 6
            "F6,Bad Zone,en,(913) 555-0106,,,sms,Roosevelt,3,Kid Six,Mars/Base,\n"  # line 7
            'F7,"Multi\nLine",en,(913) 555-0107,,,sms,Roosevelt,3,Kid Seven,,\n'  # lines 8-9 ok
            "F8,Bad Channel,en,(913) 555-0108,,,fax,Roosevelt,3,Kid Eight,,\n"  # line 10
        ),
    )
    result = cli(["families", "import", str(path), "--json"], config_path)
    report = json.loads(result.stdout)
    errors = {(e["line"], e["column"]): e for e in report["errors"]}
    assert set(errors) == {
        (3, "phone"),
        (4, "language"),
        (5, "family_id"),
        (6, "email"),
        (7, "timezone"),
        (10, "preferred_channel"),
    }
    assert "did you mean 'es'" in errors[(4, "language")]["reason"]
    assert errors[(3, "phone")]["value"] == "12345"
    assert errors[(4, "language")]["family_id"] == "F3"
    assert report["families_imported"] == 2
    ids = {f["family_id"] for f in json.loads(cli(["families", "list", "--json"], config_path).stdout)}
    assert ids == {"F1", "F7"}


def test_wrong_encoding_rows_are_reported_and_rest_imported(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        HEADER.encode()
        + "F1,José Pérez,es,(913) 555-0101,,,sms,Lincoln,6,Ana,,\n".encode("latin-1")
        + b"F2,Amy Chen,en,(913) 555-0102,,,sms,Lincoln,6,Bo Chen,,\n"
    )
    report = json.loads(cli(["families", "import", str(path), "--json"], sqlite_config).stdout)
    assert [(e["line"], e["reason"][:19]) for e in report["errors"]] == [(2, "not valid UTF-8 (sa")]
    assert report["families_imported"] == 1


def test_excel_unicode_text_and_semicolon_files_import(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    # Excel's "Unicode Text": UTF-16 with its byte-order mark, tab-separated (both byte orders);
    # Excel where the decimal separator is a comma: semicolons. Names in Arabic, Chinese,
    # Vietnamese, Amharic and Spanish (with a comma inside a name) arrive as written.
    rows = [
        ["U1", "محمد أحمد", "ar", "(913) 555-0201", "", "", "sms", "Lincoln", "6", "ليلى أحمد", "", ""],
        ["U2", "王秀英", "zh-Hans", "(913) 555-0202", "", "", "sms", "Lincoln", "6", "李明", "", ""],
        ["U3", "Nguyễn Thị Đặng", "vi", "", "dang@example.net", "", "email", "Lincoln", "6", "Bảo", "", ""],
        ["U4", "ሰላም ተስፋዬ", "am", "(913) 555-0204", "", "", "sms", "Lincoln", "6", "ዮናስ", "", ""],
        ["U5", "Núñez, María José", "es", "(913) 555-0205", "", "", "sms", "Lincoln", "6", "Ana", "", ""],
    ]
    header = HEADER.strip().split(",")
    tab = "\r\n".join("\t".join(r) for r in [header, *rows[:2]]) + "\r\n"
    files = {
        "unicode-le.txt": tab.encode("utf-16"),  # BOM + the machine's order (little-endian here)
        "unicode-be.txt": b"\xfe\xff"
        + "\r\n".join("\t".join(r) for r in [header, *rows[2:4]]).encode("utf-16-be"),
        "semicolons.csv": ("\n".join(";".join(r) for r in [header, rows[4]]) + "\n").encode("utf-8"),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        report = json.loads(cli(["families", "import", str(path), "--json"], sqlite_config).stdout)
        assert report["errors"] == [], (name, report["errors"])
    listed = json.loads(cli(["families", "list", "--json"], sqlite_config).stdout)
    names = {f["family_id"]: [g["name"] for g in f["guardians"]] for f in listed}
    assert names == {row[0]: [row[1]] for row in rows}


def test_a_broken_utf16_line_is_reported_and_the_rest_imported() -> None:
    body = "F1\tAna Díaz\tes\t(913) 555-0101\nF2\tBo Chen\ten\t(913) 555-0102\nF3\tLi\tzh\t(913) 555-0103"
    data = bytearray(("family_id\tguardian_name\tlanguage\tphone\n" + body).encode("utf-16-le"))
    at = data.index("Bo".encode("utf-16-le"))
    data[at : at + 2] = b"\x00\xd8"  # a lone surrogate in line 3
    parsed = parse_families_csv(codecs.BOM_UTF16_LE + bytes(data) + b"\x41")  # and a cut last character
    assert [(e.line, e.reason.split(" (")[0]) for e in parsed.errors] == [
        (3, "not valid UTF-16 although the file starts as UTF-16"),
        (4, "not valid UTF-16 although the file starts as UTF-16"),
    ]
    assert [g.name for f in parsed.families.values() for g in f.guardians.values()] == ["Ana Díaz"]


def test_a_header_without_the_required_columns_under_any_separator_says_which_are_missing() -> None:
    parsed = parse_families_csv(b"family_id;guardian_name;phone\nF1;Maria;(913) 555-0101\n")
    assert [(e.line, e.column) for e in parsed.errors] == [(1, "family_id,guardian_name,language")]


def test_dry_run_writes_nothing(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    path = csv_file(tmp_path, "F1,Maria Lopez,es,(913) 555-0101,,,sms,Roosevelt,3,Ana Lopez,,\n")
    report = json.loads(cli(["families", "import", str(path), "--dry-run", "--json"], sqlite_config).stdout)
    assert report["families_imported"] == 1 and report["dry_run"] is True
    assert json.loads(cli(["families", "list", "--json"], sqlite_config).stdout) == []


def test_duplicate_rows_and_formula_cells_warn() -> None:
    data = (
        HEADER + 'F1,=HYPERLINK("x"),en,(913) 555-0101,,,sms,Lincoln,6,Ana,,\n'
        'F1,=HYPERLINK("x"),en,(913) 555-0101,,,sms,Lincoln,6,Ana,,\n'
    ).encode()
    parsed = parse_families_csv(data)
    reasons = [w.reason for w in parsed.warnings]
    assert any("spreadsheet formula" in r for r in reasons)
    assert any("duplicate of line 2" in r for r in reasons)
    assert parsed.errors == []


def test_missing_required_column_is_one_clear_error() -> None:
    parsed = parse_families_csv(b"family_id,guardian_name,phone\nF1,Maria,(913) 555-0101\n")
    assert [(e.line, e.column) for e in parsed.errors] == [(1, "language")]


def test_progress_bar_on_large_files(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    rows = "".join(f"F{i},Parent {i},es,,p{i}@example.net,,email,Lincoln,6,Kid {i},,\n" for i in range(2100))
    path = csv_file(tmp_path, rows)
    result = cli(["families", "import", str(path)], sqlite_config)
    assert result.exit_code == 0, result.output
    assert "importing families" in result.output
    assert "imported 2100 new" in result.output
