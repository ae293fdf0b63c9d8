"""Reading an uploaded contact file: what it really is (CSV text or an .xlsx workbook), its encoding and
delimiter, its header, and its rows one at a time, so a file of any size costs little memory.

A file is judged by its bytes as well as its name: an .xlsx must be a zip holding a workbook, and a CSV
must be text (no NUL bytes unless it is UTF-16, which Excel writes as "Unicode text"). Encodings are
tried in this order: a byte-order mark (UTF-8, UTF-16), strict UTF-8, then charset-normalizer's guess,
where Latin-1 is read as Windows-1252 (its superset for the characters people type). The delimiter is
sniffed among ',', ';' and tab from the first lines.

Line numbers are the file's: the header is line 1; a CSV record spanning several lines (a quoted cell
with line breaks) is numbered by the line it starts on. Wholly empty rows are skipped, never counted.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sigdesk.errors import UserError

FORMATS = ("csv", "xlsx")
CSV_ENDINGS = (".csv", ".txt", ".tsv")
XLSX_ENDINGS = (".xlsx",)
SAMPLE = 64 * 1024
PREVIEW_ROWS = 5
DELIMITERS = (",", ";", "\t")
NEUTRAL_ALPHABETS = ("General Punctuation", "Currency Symbols", "Letterlike Symbols", "Control character")
csv.field_size_limit(1024 * 1024)


def _refuse(message: str) -> UserError:
    return UserError(message, field="file")


@dataclass
class FileInfo:
    """What inspect() learnt of a file: enough to read it again the same way, and to show a preview."""

    format: str
    encoding: str | None
    delimiter: str | None
    headers: list[str]
    preview: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]


def format_of(file_name: str) -> str:
    """The format the file's name promises; anything else is refused, naming what is read."""
    lower = file_name.lower()
    if lower.endswith(CSV_ENDINGS):
        return "csv"
    if lower.endswith(XLSX_ENDINGS):
        return "xlsx"
    raise _refuse("Choose a CSV (.csv, .txt, .tsv) or Excel workbook (.xlsx) file")


def detect_encoding(sample: bytes) -> str:
    """The encoding of a CSV's first bytes; refused when they are not text."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise _refuse("This file is not text: it does not look like a CSV file (is it a spreadsheet or a program?)")
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(sample) >= SAMPLE:  # a character cut by the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise _refuse("This file is not text in an encoding SigDesk can read: save it as CSV UTF-8")
    # Short Western European samples fit several code pages equally (cp1250, cp850...); when the guess
    # reads as Latin script, Windows-1252 (Excel's "CSV" in Western Europe and the Americas) wins.
    latin = all("Latin" in alphabet or alphabet in NEUTRAL_ALPHABETS for alphabet in best.alphabets)
    if latin:
        try:
            sample.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding.lower().replace("_", "-")


def sniff_delimiter(text: str) -> str:
    """',' ';' or tab: what csv.Sniffer finds in the first lines, else whichever the header has most of."""
    lines = text.splitlines()[:20]
    sample = "\n".join(lines)
    try:
        found = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
        if found in DELIMITERS:
            return found
    except csv.Error:
        pass
    header = lines[0] if lines else ""
    return max(DELIMITERS, key=header.count)


def _check_xlsx(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        raise _refuse("This file is not an Excel workbook (.xlsx), whatever its name says") from None
    if "xl/workbook.xml" not in names:
        raise _refuse("This zip file is not an Excel workbook (.xlsx)")


def inspect(path: Path, file_name: str) -> FileInfo:
    """Check that the file is what its name says and read its header and first rows, or refuse it
    (field `file`) with a message that says what is wrong: empty, not text, no header, no rows."""
    fmt = format_of(file_name)
    if path.stat().st_size == 0:
        raise _refuse("The file is empty")
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE)
    if fmt == "xlsx":
        if not head.startswith(b"PK\x03\x04"):
            raise _refuse("This file is not an Excel workbook (.xlsx), whatever its name says")
        _check_xlsx(path)
        info = FileInfo("xlsx", None, None, [])
    else:
        if head.startswith(b"PK\x03\x04"):
            raise _refuse("This file is a zip or an Excel workbook, not a CSV: name it .xlsx or save it as CSV")
        encoding = detect_encoding(head)
        text = head.decode(encoding, errors="ignore")
        info = FileInfo("csv", encoding, sniff_delimiter(text), [])
    rows = iter_rows(path, info, with_header=True)
    try:
        header = next(rows, None)
        if header is None:
            raise _refuse("The file has no header row: the first row must name the columns")
        info.headers = header_names(header.cells)
        for row in rows:
            info.preview.append(row.cells)
            if len(info.preview) >= PREVIEW_ROWS:
                break
    finally:
        rows.close()
    if not info.preview:
        raise _refuse("The file has a header but no rows to import")
    return info


def header_names(cells: list[str]) -> list[str]:
    """The header's names, blanks named by their position (Column 3) so each column can be told apart."""
    names = []
    for number, cell in enumerate(cells, start=1):
        name = cell.strip().lstrip("\ufeff")
        names.append(name or f"Column {number}")
    if not any(cell.strip() for cell in cells):
        raise _refuse("The first row is empty: it must name the columns")
    return names


def iter_rows(path: Path, info: FileInfo, with_header: bool = False) -> Iterator[Row]:
    """The file's non-empty rows in order, the header first when `with_header`; cells as text."""
    reader = _xlsx_rows(path) if info.format == "xlsx" else _csv_rows(path, info)
    header_seen = with_header
    for row in reader:
        if not any(cell.strip() for cell in row.cells):
            continue
        if not header_seen:
            header_seen = True
            continue
        yield row


def _csv_rows(path: Path, info: FileInfo) -> Iterator[Row]:
    try:
        with open(path, encoding=info.encoding or "utf-8", errors="strict", newline="") as handle:
            reader = csv.reader(handle, delimiter=info.delimiter or ",")
            start = 1
            for cells in reader:
                yield Row(start, cells)
                start = reader.line_num + 1
    except UnicodeDecodeError:
        raise _refuse(f"The file is not all {info.encoding} text: save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise _refuse(f"The file is not a well-formed CSV file ({exc})") from None


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person would type: 4917012345 not 4917012345.0, dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(path: Path) -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _refuse(f"This Excel workbook cannot be read ({type(exc).__name__})") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield Row(number, [cell_text(value) for value in values])
    finally:
        workbook.close()


def count_rows(path: Path, info: FileInfo) -> int:
    """How many rows the file has below its header (for the progress bar); a quick pass without parsing
    the values. For a workbook, the sheet's own dimension when it declares one."""
    if info.format == "xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            if sheet.max_row and sheet.calculate_dimension(force=False) not in ("A1:A1",):
                return max(sheet.max_row - 1, 0)
        except (ValueError, TypeError, IndexError):
            pass
        finally:
            workbook.close()
    return sum(1 for _row in iter_rows(path, info))
