"""File sniffing: kind, encoding, delimiter, header, and every refusal with its code."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from territoria.core.contract import FileFormat
from territoria.core.errors import InputFileError
from territoria.ingest import sniff, sniff_json
from territoria.ingest.excel import xlsx_to_csv
from territoria.ingest.sniff import FileInfo, sniff_file, utf8_copy

FRENCH = "nom;commune;note\nLefèvre;Saint-Étienne;l’œuvre\nŒdipe;Pontoise;« très » bien\n"


def _write(path: Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def _refused(path: Path, hints: FileFormat | None = None) -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        sniff_file(path, hints)
    assert caught.value.file == path
    assert caught.value.expected and caught.value.hint
    return caught.value


# --- files --------------------------------------------------------------------------------


def test_missing_directory_and_empty_files_are_refused(tmp_path: Path) -> None:
    assert _refused(tmp_path / "absent.csv").code == "file_missing"
    (tmp_path / "dossier.csv").mkdir()
    assert _refused(tmp_path / "dossier.csv").code == "file_not_regular"
    assert _refused(_write(tmp_path / "vide.csv", b"")).code == "file_empty"


def test_header_only_csv_is_valid_with_zero_rows(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "entete.csv", "id;nom\n"))
    assert (info.header, info.delimiter, info.lines) == (("id", "nom"), ";", 1)


def test_size_and_sha256_are_those_of_the_bytes(tmp_path: Path) -> None:
    data = FRENCH.encode("cp1252")
    info = sniff_file(_write(tmp_path / "a.csv", data))
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_unknown_extension_and_mismatched_content(tmp_path: Path) -> None:
    assert _refused(_write(tmp_path / "a.dat", "a,b\n")).code == "kind_unknown"
    assert "xlsx" in (_refused(_write(tmp_path / "a.xls", b"\xd0\xcf\x11\xe0")).hint or "")
    assert _refused(_write(tmp_path / "a.parquet", "a,b\n1,2\n")).code == "kind_mismatch"
    assert _refused(_write(tmp_path / "a.xlsx", "a,b\n1,2\n")).code == "kind_mismatch"
    table = pa.table({"a": [1]})
    pq.write_table(table, tmp_path / "p.csv")
    error = _refused(tmp_path / "p.csv")
    assert error.code == "kind_mismatch" and "Parquet" in error.message


def test_kind_hint_overrides_extension(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.dat", "a|b\n1|2\n"), FileFormat(kind="csv"))
    assert (info.kind, info.delimiter) == ("csv", "|")


# --- encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp1252", "cp1252"),
        ("utf-16", "utf-16"),
    ],
)
def test_encoding_detection(tmp_path: Path, encoding: str, expected: str) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", FRENCH, encoding))
    assert info.encoding == expected
    assert info.header == ("nom", "commune", "note")
    assert (info.delimiter, info.lines) == (";", 3)
    assert utf8_copy(info, tmp_path).read_text(encoding="utf-8") == FRENCH


def test_cp1252_undefined_bytes_are_kept_as_latin1_code_points(tmp_path: Path) -> None:
    text = "nom,code\nété,\x81\x90\n"
    info = sniff_file(_write(tmp_path / "a.csv", text, "latin-1"))
    assert info.encoding == "cp1252"
    assert utf8_copy(info, tmp_path).read_text(encoding="utf-8") == text


@pytest.mark.parametrize("declared", ["auto", "cp1252", "windows-1252"])
def test_stray_undefined_byte_does_not_garble_cp1252(tmp_path: Path, declared: str) -> None:
    data = "nom;note\nx;L’école €\ny;".encode("cp1252") + b"\x81\x8d\x8f\x90\x9d\n"
    info = sniff_file(_write(tmp_path / "a.csv", data), FileFormat(encoding=declared))
    assert (info.encoding, info.header, info.lines) == ("cp1252", ("nom", "note"), 3)
    copy = utf8_copy(info, tmp_path).read_text(encoding="utf-8")
    assert copy == "nom;note\nx;L’école €\ny;\x81\x8d\x8f\x90\x9d\n"


def test_latin1_only_when_declared(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", b"a;b\n\x92;\x80\x81\n")
    info = sniff_file(path, FileFormat(encoding="latin-1"))
    assert info.encoding == "latin-1"
    assert utf8_copy(info, tmp_path).read_text(encoding="utf-8") == "a;b\n\x92;\x80\x81\n"


def test_stray_undefined_byte_in_cp1252_ndjson(tmp_path: Path) -> None:
    data = '{"nom": "L’école"}\n\n{"nom": "€"}\n'.encode("cp1252") + b'{"nom": "\x81"}\n'
    info = sniff_file(_write(tmp_path / "a.ndjson", data))
    assert (info.kind, info.encoding, info.header, info.lines) == ("ndjson", "cp1252", ("nom",), 4)
    assert "L’école" in utf8_copy(info, tmp_path).read_text(encoding="utf-8")


def test_cp1252_specific_characters(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", "a;b\nl’œuvre;€ – …\n", "cp1252"))
    assert info.encoding == "cp1252"
    assert "l’œuvre" in utf8_copy(info, tmp_path).read_text(encoding="utf-8")


def test_utf8_copy_keeps_a_plain_utf8_file(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", FRENCH))
    assert utf8_copy(info, tmp_path / "ailleurs") == info.path


def test_utf8_copy_refuses_a_file_changed_since_sniffing(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", FRENCH, "cp1252")
    info = sniff_file(path)
    _write(path, FRENCH.replace("Pontoise", "Cergy"), "cp1252")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputFileError) as caught:
        utf8_copy(info, tmp_path / "out")
    assert caught.value.code == "file_changed"
    assert list((tmp_path / "out").iterdir()) == []


def test_declared_encoding_mismatch_names_line_and_offset(tmp_path: Path) -> None:
    data = "a;b\n1;2\n3;Hélène\n".encode("cp1252")
    error = _refused(_write(tmp_path / "a.csv", data), FileFormat(encoding="utf-8"))
    assert error.code == "encoding_invalid"
    assert error.line == 3
    assert error.details["byte_offset"] == data.index(b"\xe9")
    assert "utf-8" in error.message


def test_declared_encoding_mismatch_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sniff, "_CHUNK", 5)
    data = "a;b\nÉté;2\n1;2\n3;Hélène\n".encode()
    data = data.replace("Hélène".encode(), "Hélène".encode("cp1252"))
    error = _refused(_write(tmp_path / "a.csv", data), FileFormat(encoding="utf-8"))
    assert (error.line, error.details["byte_offset"]) == (4, data.index(b"\xe9"))


def test_multibyte_characters_split_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sniff, "_CHUNK", 3)
    info = sniff_file(_write(tmp_path / "a.csv", FRENCH))
    assert (info.encoding, info.lines) == ("utf-8", 3)


def test_declared_encodings_are_canonical(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", "a;b\nà;é\n", "latin-1")
    assert sniff_file(path, FileFormat(encoding="ISO-8859-1")).encoding == "latin-1"
    assert sniff_file(path, FileFormat(encoding="windows-1252")).encoding == "cp1252"
    assert _refused(path, FileFormat(encoding="klingon")).code == "encoding_unknown"


def test_bom_then_invalid_utf8_is_an_encoding_error(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + b"a;b\nx;" + "é\n".encode("cp1252")
    error = _refused(_write(tmp_path / "a.csv", data))
    assert (error.code, error.line) == ("encoding_invalid", 2)


def test_binary_content_is_refused(tmp_path: Path) -> None:
    assert _refused(_write(tmp_path / "a.csv", b"a,b\n1,\x00\x00\n")).code == "file_binary"
    controls = bytes(range(1, 9)) * 50
    assert _refused(_write(tmp_path / "b.csv", controls)).code == "file_binary"
    utf16_without_bom = "a;b\n1;2\n".encode("utf-16-le")
    assert _refused(_write(tmp_path / "c.csv", utf16_without_bom)).code == "file_binary"


# --- csv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_detection_with_quoted_delimiters_and_newlines(
    tmp_path: Path, delimiter: str
) -> None:
    rows = [
        ["id", "libellé", "montant"],
        ["1", "rue de la Paix, bât. A; porte | 2\tgauche", "12,5"],
        ["2", 'dit "le grand"\nsur deux lignes', "3"],
        ["3", "", "4,25"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    info = sniff_file(_write(tmp_path / "a.csv", buffer.getvalue()))
    assert info.delimiter == delimiter
    assert info.header == ("id", "libellé", "montant")
    assert info.lines == buffer.getvalue().count("\n")


def test_french_decimal_commas_do_not_fool_detection(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", "poids;prix\n1,5;2,30\n12,25;3,10\n"))
    assert info.delimiter == ";"


def test_header_cells_are_unquoted_and_stripped(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", '"N° contrat" ; " Nom "\n1;2\n'))
    assert info.header == ("N° contrat", "Nom")


def test_single_column_csv_without_hint(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", "siret\n123\n456\n"))
    assert (info.delimiter, info.header) == (",", ("siret",))


def test_hinted_delimiter_giving_one_column_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", "a,b,c\n1,2,3\n")
    error = _refused(path, FileFormat(delimiter=";"))
    assert (error.code, error.line) == ("delimiter_invalid", 1)
    assert "virgule" in error.message
    assert _refused(path, FileFormat(delimiter=";;")).code == "delimiter_invalid"
    assert sniff_file(path, FileFormat(delimiter=",")).delimiter == ","
    assert sniff_file(_write(tmp_path / "t.tsv", "a\tb\n"), FileFormat(delimiter="tab")).header


def test_file_ending_inside_a_quoted_field_is_truncated(tmp_path: Path) -> None:
    text = 'id;note\n1;"ok"\n2;"commence\nsur plusieurs\nlignes'
    error = _refused(_write(tmp_path / "a.csv", text))
    assert (error.code, error.line) == ("file_truncated", 3)


def test_truncated_quote_line_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sniff, "_CHUNK", 4)
    error = _refused(_write(tmp_path / "a.csv", 'id;note\n1;"a"\n2;\n3;"coupé'))
    assert (error.code, error.line) == ("file_truncated", 4)


def test_stray_quote_inside_a_field_is_not_truncation(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.csv", 'objet;taille\ntuyau;12" pouces\n'))
    assert info.header == ("objet", "taille")


@pytest.mark.parametrize(
    ("header", "positions"),
    [
        ("id;;nom", "position 2"),
        ("id;nom;Nom", "colonnes 2 et 3"),
        ("\n", "absente"),
    ],
)
def test_invalid_headers_name_positions(tmp_path: Path, header: str, positions: str) -> None:
    error = _refused(_write(tmp_path / "a.csv", header + "\n1;2;3\n"))
    assert (error.code, error.line) == ("header_invalid", 1)
    assert positions in error.message


@pytest.mark.parametrize("hints", [None, FileFormat(delimiter=";")])
def test_lines_ending_with_the_delimiter_name_the_last_column(
    tmp_path: Path, hints: FileFormat | None
) -> None:
    path = _write(tmp_path / "a.csv", "a;b;c;\r\n1;2;3;\r\n4;5;6;\r\n")
    info = sniff_file(path, hints)
    assert (info.delimiter, info.lines) == (";", 3)
    assert info.header == ("a", "b", "c", "_vide_final")
    assert info.header[-1] == sniff.TRAILING_EMPTY_COLUMN


@pytest.mark.parametrize(
    ("header", "positions"),
    [
        ("a;;c;", "position 2, 4"),
        (";b;c;", "position 1, 4"),
        ("a;b;;", "position 3, 4"),
        ("a;_Vide_Final;", "colonnes 2 et 3"),
    ],
)
def test_trailing_empty_cell_with_other_bad_cells_is_refused(
    tmp_path: Path, header: str, positions: str
) -> None:
    error = _refused(_write(tmp_path / "a.csv", f"{header}\n1;2;3;\n"))
    assert (error.code, error.line) == ("header_invalid", 1)
    assert positions in error.message


# --- json, ndjson -------------------------------------------------------------------------


def test_json_array_header_and_errors(tmp_path: Path) -> None:
    records = [{"id": 1, "nom": "Zoé"}, {"id": 2, "nom": "Léo"}]
    info = sniff_file(_write(tmp_path / "a.json", json.dumps(records, indent=1)))
    assert (info.kind, info.header, info.lines, info.delimiter) == (
        "json",
        ("id", "nom"),
        None,
        None,
    )
    text = json.dumps(records, indent=1)[:-3]
    error = _refused(_write(tmp_path / "b.json", text))
    assert error.code == "json_invalid" and error.line == text.count("\n") + 1
    assert _refused(_write(tmp_path / "c.json", "id,nom\n")).code == "json_invalid"


def test_big_json_is_checked_by_its_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sniff_json, "_JSON_FULL_PARSE_LIMIT", 10)
    text = json.dumps([{"a": 1, "b": 2}] * 50)
    assert sniff_file(_write(tmp_path / "a.json", text)).header == ("a", "b")
    error = _refused(_write(tmp_path / "b.json", text[:-40]))
    assert error.code == "json_invalid"


def test_ndjson_reports_first_bad_line(tmp_path: Path) -> None:
    good = '{"id": 1, "nom": "a"}\n\n{"id": 2}\n'
    info = sniff_file(_write(tmp_path / "a.ndjson", good))
    assert (info.kind, info.header, info.lines) == ("ndjson", ("id", "nom"), 3)
    error = _refused(_write(tmp_path / "b.jsonl", good + '{"id": 3\n{"id": 4}\n'))
    assert (error.code, error.line) == ("json_invalid", 4)
    assert _refused(_write(tmp_path / "c.ndjson", "[1, 2]\n")).line == 1


def test_json_extension_holding_ndjson(tmp_path: Path) -> None:
    info = sniff_file(_write(tmp_path / "a.json", '{"x": 1}\n{"x": 2}\n'))
    assert (info.kind, info.lines) == ("ndjson", 2)
    hinted = FileFormat(kind="json")
    assert _refused(tmp_path / "a.json", hinted).code == "json_invalid"


# --- parquet, xlsx ------------------------------------------------------------------------


def test_parquet_header_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2], "nom": ["a", "b"]}), path)
    info = sniff_file(path)
    assert (info.kind, info.header, info.encoding, info.lines) == (
        "parquet",
        ("id", "nom"),
        None,
        None,
    )
    assert utf8_copy(info, tmp_path) == path
    data = path.read_bytes()
    assert _refused(_write(tmp_path / "b.parquet", data[:-10])).code == "file_truncated"
    broken = data[:4] + b"\x00" * (len(data) - 8) + b"PAR1"
    assert _refused(_write(tmp_path / "c.parquet", broken)).code == "file_truncated"


def _workbook(path: Path) -> Path:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Élèves")
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    stamp = book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    sheet.write_row(0, 0, ["nom", "naissance", "inscrit", "classe", "note", "commentaire"])
    sheet.write_row(1, 0, ["Zoé", None, None, 12.0, 14.5, 'dit "Zozo", 1ère'])
    sheet.write_datetime(1, 1, dt.datetime(2015, 3, 9), date)
    sheet.write_datetime(1, 2, dt.datetime(2024, 9, 2, 8, 30, 0), stamp)
    sheet.write_row(2, 0, ["Léo", None, None, 7, None, "ligne1\nligne2"])
    sheet.write_boolean(2, 4, True)
    book.add_worksheet("vide")
    book.close()
    return path


def test_xlsx_header_and_csv_conversion(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "a.xlsx")
    info = sniff_file(path)
    assert info.kind == "xlsx" and info.header is not None and info.header[0] == "nom"
    header = xlsx_to_csv(path, tmp_path / "a.csv")
    assert header == ("nom", "naissance", "inscrit", "classe", "note", "commentaire")
    written = (tmp_path / "a.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(written, newline="")))
    assert rows[1] == ["Zoé", "2015-03-09", "2024-09-02T08:30:00", "12", "14.5", 'dit "Zozo", 1ère']
    assert rows[2] == ["Léo", "", "", "7", "TRUE", "ligne1\nligne2"]
    assert xlsx_to_csv(path, tmp_path / "v.csv", sheet="vide") == ()


def test_xlsx_unknown_sheet_and_truncation(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "a.xlsx")
    error = _refused(path, FileFormat(sheet="Feuil1"))
    assert error.code == "sheet_unknown" and "Élèves" in (error.expected or "")
    data = path.read_bytes()
    assert _refused(_write(tmp_path / "b.xlsx", data[: len(data) // 2])).code == "file_truncated"
    assert _refused(path, FileFormat(sheet="vide")).code == "header_invalid"


# --- properties ---------------------------------------------------------------------------

_PREFIXES = [b"", b"PAR1", b"PK\x03\x04", b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b'"']


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(_PREFIXES),
    body=st.binary(max_size=300),
    suffix=st.sampled_from([".csv", ".json", ".ndjson", ".parquet", ".xlsx"]),
    kind=st.sampled_from(["auto", "csv", "json", "ndjson"]),
)
def test_arbitrary_bytes_only_raise_input_file_errors(
    prefix: bytes, body: bytes, suffix: str, kind: str
) -> None:
    hints = FileFormat.model_validate({"kind": kind})
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / f"f{suffix}", prefix + body)
        try:
            info = sniff_file(path, hints)
        except InputFileError as error:
            assert error.code and error.message
        else:
            assert isinstance(info, FileInfo) and info.size == len(prefix + body)


_CELL = st.text(
    st.characters(codec="cp1252", exclude_categories=["Cc", "Cs"]) | st.sampled_from('\n"'),
    max_size=12,
)
_NAME = st.text("abcdefghijklmnopqrstuvwxyzéèàçœ_", min_size=1, max_size=8)


@st.composite
def _tables(draw: st.DrawFn) -> list[list[str]]:
    header = draw(st.lists(_NAME, min_size=2, max_size=5, unique_by=str.casefold))
    rows = draw(st.lists(st.lists(_CELL, min_size=len(header), max_size=len(header)), max_size=8))
    return [header, *rows]


@settings(max_examples=120, deadline=None)
@given(
    table=_tables(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]),
)
def test_random_tables_round_trip(table: list[list[str]], delimiter: str, encoding: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(table)
    text = buffer.getvalue()
    data = text.encode(encoding)
    with tempfile.TemporaryDirectory() as folder:
        info = sniff_file(_write(Path(folder) / "t.csv", data))
        assert info.delimiter == delimiter
        assert info.header == tuple(table[0])
        try:
            data.decode("utf-8")
            family = {"utf-8-sig": "utf-8-sig"}.get(encoding, "utf-8")
        except UnicodeDecodeError:
            family = "cp1252"
        assert info.encoding == family
        if family == encoding or text.isascii():
            copy = utf8_copy(info, Path(folder))
            assert copy.read_bytes().decode("utf-8") == text
