"""Reading uploaded files: what they really are, their encoding and delimiter, their rows with line numbers."""

from __future__ import annotations

import codecs

import pytest

from sigdesk.errors import UserError
from sigdesk.imports.reading import inspect, iter_rows
from tests.imports.helpers import workbook

HEADER = "Name,Phone,City\r\n"


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ((HEADER + "Zoë,+49 170 1234567,Köln\r\n").encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + (HEADER + "Zoë,+49 170 1234567,Köln\r\n").encode("utf-8"), "utf-8-sig"),
        ((HEADER + "Zoë,+49 170 1234567,Köln\r\n").encode("cp1252"), "cp1252"),
    ],
)
def test_encodings_are_detected_and_accents_survive(tmp_path, data, encoding):
    info = inspect(write(tmp_path, "c.csv", data), "c.csv")
    assert info.encoding == encoding
    assert info.headers == ["Name", "Phone", "City"]
    assert info.preview == [["Zoë", "+49 170 1234567", "Köln"]]


def test_excel_unicode_text_is_utf16_with_tabs(tmp_path):
    data = codecs.BOM_UTF16_LE + "Name\tPhone\r\nJosé Müller\t+49 170 1234567\r\n".encode("utf-16-le")
    info = inspect(write(tmp_path, "u.txt", data), "u.txt")
    assert (info.encoding, info.delimiter) == ("utf-16", "\t")
    assert info.preview == [["José Müller", "+49 170 1234567"]]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(tmp_path, delimiter):
    text = delimiter.join(["Name", "Phone", "Notes"]) + "\n" + delimiter.join(["Ann", "+4917012345", "a, b; c"]) + "\n"
    if delimiter != "\t":
        text = text.replace("a, b; c", '"a, b; c"')
    info = inspect(write(tmp_path, "d.csv", text.encode()), "d.csv")
    assert info.delimiter == delimiter
    assert info.preview[0] == ["Ann", "+4917012345", "a, b; c"]


def test_quoted_cells_keep_delimiters_quotes_and_line_breaks_and_lines_count_from_where_a_row_starts(tmp_path):
    data = b'Name,Notes\n"Smith, Ann","said ""hi""\nand left"\nBob,plain\n\n,\nCarl,x\n'
    path = write(tmp_path, "q.csv", data)
    info = inspect(path, "q.csv")
    rows = list(iter_rows(path, info))
    assert [(row.line, row.cells) for row in rows] == [
        (2, ["Smith, Ann", 'said "hi"\nand left']),
        (4, ["Bob", "plain"]),
        (7, ["Carl", "x"]),
    ]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "empty"),
        ("header.csv", b"Name,Phone\n", "no rows"),
        ("blank.csv", b"\n\n", "no header"),
        ("fake.xlsx", b"Name,Phone\nAnn,+4917012345\n", "not an Excel workbook"),
        ("fake.csv", workbook([["Name"], ["Ann"]]), "not a CSV"),
        ("binary.csv", b"\x7fELF\x00\x01\x02\x00\x00", "not text"),
        ("zip.xlsx", b"PK\x03\x04 not really a zip", "not an Excel workbook"),
        ("notes.pdf", b"%PDF-1.4", "CSV"),
    ],
)
def test_files_that_are_not_what_their_name_says_or_hold_nothing_are_refused_clearly(tmp_path, name, data, message):
    with pytest.raises(UserError) as refused:
        inspect(write(tmp_path, name, data), name)
    assert message in str(refused.value)
    assert refused.value.field == "file"


def test_a_workbook_reads_numbers_and_dates_as_people_typed_them(tmp_path):
    from datetime import date

    data = workbook(
        [
            ["Name", "Phone", "Since"],
            ["Ann", 4917012345678, date(2024, 3, 1)],
            [None, None, None],
            ["Bob", "+44 7911 123456", None],
        ]
    )
    path = write(tmp_path, "w.xlsx", data)
    info = inspect(path, "w.xlsx")
    assert info.format == "xlsx"
    rows = list(iter_rows(path, info))
    assert [(row.line, row.cells) for row in rows] == [
        (2, ["Ann", "4917012345678", "2024-03-01"]),
        (4, ["Bob", "+44 7911 123456", ""]),
    ]
