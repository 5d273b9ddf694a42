"""Turn an uploaded file into a table: the one place where bytes become a pandas DataFrame.

CSV and Excel cells arrive as text (``str``, missing values as ``None``): nothing is guessed here, column
types are inferred later by :mod:`core.data.schema`, where the user can correct them. Parquet keeps its own
types. Every refusal raises :class:`~core.errors.InvalidInput` with a message for the person who uploaded
the file: what is wrong, where, and what to do.

A text file is checked in streaming passes over its raw bytes (encoding, binary data, rows with the wrong
number of values) before pandas' C parser reads it once, so a bad line is named exactly and a 150 MB file
never goes through a Python loop per row. An Excel file is checked as a zip archive before anything is
unpacked.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from core.errors import InvalidInput

TEXT_EXTENSIONS = (".csv", ".tsv", ".txt")
XLSX_EXTENSIONS = (".xlsx",)
PARQUET_EXTENSIONS = (".parquet", ".pq")
DELIMITERS = (",", ";", "\t", "|")
NA_MARKERS = ("", "NA", "N/A", "null", "NULL", "NaN", "nan", "-", ".")

_ACCEPTED = ".csv, .tsv, .txt, .xlsx, .parquet or .pq"
_SAMPLE_BYTES = 64 * 1024  # enough lines to tell the encoding and separator apart
_MAX_SAMPLE_BYTES = 8 * 1024 * 1024  # a very wide header is read whole before its columns are counted
_SNIFF_CHARS = 32 * 1024  # csv.Sniffer is regex-based: keep its input small
_SCAN_CHUNK = 8 * 1024 * 1024
_MAX_RATIO = 200  # real workbooks compress 5-50x; far beyond that is a zip bomb
_RATIO_FLOOR = 1024 * 1024  # a small member cannot hurt, however well it compresses
_QUOTE = ord('"')
_CR = ord("\r")

_ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1",
}
_SEPARATOR_LABELS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


@dataclass(frozen=True)
class ReadLimits:
    """How much a file may hold before it is refused."""

    max_bytes: int
    max_columns: int = 2000
    max_xlsx_uncompressed_bytes: int = 1_000_000_000


@dataclass(frozen=True)
class ReadOptions:
    """What the user declared about the file; ``"auto"`` means detect it."""

    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | None = None
    nrows: int | None = None


@dataclass(frozen=True)
class RawTable:
    """A file's table as read, before any column types are applied."""

    frame: pd.DataFrame
    file_format: str
    encoding: str | None
    delimiter: str | None
    decimal: str
    sheets: list[str] = field(default_factory=list)
    sheet: str | None = None
    total_rows: int | None = None
    notes: list[str] = field(default_factory=list)


def read_table(data: bytes, filename: str, *, limits: ReadLimits, options: ReadOptions = ReadOptions()) -> RawTable:
    """Read an uploaded file's bytes into a table, refusing anything Steward cannot use as it is."""
    return _read(_Source(data=data, path=None, size=len(data)), filename, limits, options)


def read_path(path: Path, filename: str, *, limits: ReadLimits, options: ReadOptions = ReadOptions()) -> RawTable:
    """Read a file on disk into a table; the size is checked before anything is read."""
    path = Path(path)
    return _read(_Source(data=None, path=path, size=path.stat().st_size), filename, limits, options)


@dataclass(frozen=True)
class _Source:
    """The file's bytes, in memory or on disk; a large file on disk is streamed, never held twice."""

    data: bytes | None
    path: Path | None
    size: int

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else self.path.open("rb")

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with self.path.open("rb") as fh:
            return fh.read(n)

    def for_library(self) -> BinaryIO | str:
        # BytesIO over bytes shares the buffer, so pandas/openpyxl/pyarrow read the upload without a copy.
        return io.BytesIO(self.data) if self.data is not None else str(self.path)


def _read(source: _Source, filename: str, limits: ReadLimits, options: ReadOptions) -> RawTable:
    if options.nrows is not None and options.nrows < 1:
        raise ValueError("nrows must be at least 1")
    suffix = Path(filename).suffix.lower()
    if suffix not in TEXT_EXTENSIONS + XLSX_EXTENSIONS + PARQUET_EXTENSIONS:
        raise InvalidInput(_unknown_extension_message(filename, suffix))
    if source.size > limits.max_bytes:
        raise InvalidInput(
            f"'{filename}' is {_megabytes(source.size)}, larger than the {_megabytes(limits.max_bytes)} limit. "
            "Upload a smaller file: keep only the rows and columns you need, or save it as Parquet, "
            "which is much smaller."
        )
    if source.size == 0:
        raise InvalidInput(_empty_message(filename))
    if suffix in XLSX_EXTENSIONS:
        return _read_xlsx(source, filename, limits, options)
    if suffix in PARQUET_EXTENSIONS:
        return _read_parquet(source, filename, limits, options)
    return _read_text(source, filename, limits, options)


# --- text (CSV, TSV, TXT) ---------------------------------------------------------------------------------


def _read_text(source: _Source, filename: str, limits: ReadLimits, options: ReadOptions) -> RawTable:
    head = source.head(_SAMPLE_BYTES)
    _refuse_other_formats(head, filename, expected="text")
    if options.delimiter != "auto" and options.delimiter not in DELIMITERS:
        raise InvalidInput(
            f"'{options.delimiter}' is not a separator Steward can use. Choose comma, semicolon, tab or '|'."
        )
    declared = options.encoding != "auto"
    codec = _declared_codec(options.encoding, head) if declared else _bom_codec(head)
    if declared and not _is_utf16(codec) and head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        advice = "the file starts with the mark of UTF-16, so choose UTF-16"
        raise InvalidInput(_encoding_message(filename, codec, 1, declared=True, advice=advice))
    if not (codec and _is_utf16(codec)) and b"\x00" in head:
        raise InvalidInput(_binary_message(filename))
    codec = _settle_encoding(source, filename, codec, declared=declared)
    reported_encoding = codec
    if not _ascii_compatible(codec):
        # UTF-16 and the like are rare and small: re-encode once so every later pass works on ASCII bytes.
        with source.open() as fh:
            utf8 = fh.read().decode(codec).encode("utf-8")
        source, codec = _Source(data=utf8, path=None, size=len(utf8)), "utf-8"

    sample_bytes = _read_sample(source)
    sample = codecs.getincrementaldecoder(codec)(errors="replace").decode(sample_bytes, final=False)
    if _control_share(sample[:_SAMPLE_BYTES]) > 0.01:
        raise InvalidInput(_binary_message(filename))
    if not sample.strip() and len(sample_bytes) == source.size:
        raise InvalidInput(_empty_message(filename))

    truncated = len(sample_bytes) < source.size
    delimiter = options.delimiter if options.delimiter != "auto" else _detect_delimiter(sample, truncated)
    header = _header_record(sample, delimiter)
    if header is None:
        raise InvalidInput(_empty_message(filename))
    _check_names(header, limits, filename, excel=False)

    newline = ord("\n") if b"\n" in sample_bytes or b"\r" not in sample_bytes else _CR
    max_records = None if options.nrows is None else options.nrows + 1
    # With one column no line can be short, and pandas names a line with extra values itself.
    if len(header) > 1:
        skip = len(codecs.BOM_UTF8) if codec == "utf-8-sig" and head.startswith(codecs.BOM_UTF8) else 0
        bad = _scan_records(source, delimiter, newline, max_records, skip=skip)
        if bad is _UNSURE:
            bad = _scan_records_slowly(source, codec, delimiter, max_records)
        if isinstance(bad, _BadRecord):
            raise InvalidInput(_bad_record_message(bad, delimiter))

    frame = _parse_text(source, filename, codec, delimiter, options.nrows)
    if len(frame.columns) == len(header):
        frame.columns = header
    frame = _missing_to_none(frame)
    if frame.empty:
        raise InvalidInput(_no_rows_message(filename))
    total_rows = len(frame) if options.nrows is None or len(frame) < options.nrows else None
    decimal = "," if delimiter == ";" else "."
    return RawTable(
        frame=frame,
        file_format="csv",
        encoding=reported_encoding,
        delimiter=delimiter,
        decimal=decimal,
        sheets=[],
        sheet=None,
        total_rows=total_rows,
        notes=[_text_note(reported_encoding, declared, delimiter, options.delimiter != "auto", decimal)],
    )


def _declared_codec(name: str, head: bytes) -> str:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise InvalidInput(
            f"'{name}' is not an encoding Steward knows. Choose UTF-8, Windows-1252 (cp1252), Latin-1 or UTF-16."
        ) from None
    codec = {"iso8859-1": "latin-1"}.get(codec, codec)
    if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"  # the mark is not part of the first column's name
    return codec


def _bom_codec(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # UTF-16 without a mark: ASCII text leaves a zero byte in every other position.
    even, odd = head[0:4096:2], head[1:4096:2]
    if len(odd) >= 8:
        even_zeros, odd_zeros = even.count(0) / len(even), odd.count(0) / len(odd)
        if odd_zeros > 0.3 and even_zeros < 0.05:
            return "utf-16-le"
        if even_zeros > 0.3 and odd_zeros < 0.05:
            return "utf-16-be"
    return None


def _settle_encoding(source: _Source, filename: str, codec: str | None, *, declared: bool) -> str:
    """Check the whole file decodes; without a declared encoding or a mark, try UTF-8, Windows-1252, Latin-1."""
    if codec is not None:
        problem = _first_problem(source, codec)
        if problem is not None:
            offset, is_nul = problem
            if is_nul:
                raise InvalidInput(_binary_message(filename, _line_at(source, offset, codec)))
            raise InvalidInput(_encoding_message(filename, codec, _line_at(source, offset, codec), declared))
        return codec
    for candidate in ("utf-8", "cp1252"):
        problem = _first_problem(source, candidate)
        if problem is None:
            return candidate
        if problem[1]:
            raise InvalidInput(_binary_message(filename, _line_at(source, problem[0], candidate)))
    return "latin-1"  # every byte is a Latin-1 character


def _first_problem(source: _Source, codec: str) -> tuple[int, bool] | None:
    """Offset of the first byte that does not decode (False) or is a NUL (True), or None."""
    check_nul = not _is_utf16(codec)
    ascii_ok = _ascii_compatible(codec)
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    with source.open() as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            if check_nul and (nul := chunk.find(b"\x00")) >= 0:
                return offset + nul, True
            pending = decoder.getstate()[0]
            # Pure ASCII decodes the same in every ASCII-compatible codec: skip building an 8 MB string.
            if not (ascii_ok and not pending and chunk.isascii()):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    return max(0, offset - len(pending) + error.start), False
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return max(0, offset - 1), False
    return None


def _line_at(source: _Source, offset: int, codec: str) -> int:
    before = source.head(offset)
    if _ascii_compatible(codec):
        return before.count(b"\n") + 1
    return before.decode(codec, errors="replace").count("\n") + 1


def _is_utf16(codec: str) -> bool:
    return codecs.lookup(codec).name.startswith(("utf-16", "utf-32"))


def _ascii_compatible(codec: str) -> bool:
    """Whether ASCII bytes mean the same in this codec, so separators and quotes can be found byte by byte."""
    probe = 'a,;\t|"\r\n'
    try:
        return probe.encode("ascii").decode(codec) == probe
    except UnicodeError:
        return False


def _read_sample(source: _Source) -> bytes:
    size = _SAMPLE_BYTES
    sample = source.head(size)
    # A header of thousands of columns can be longer than the sample: widen it until it holds a few lines.
    while sample.count(b"\n") + sample.count(b"\r") < 3 and len(sample) == size and size < _MAX_SAMPLE_BYTES:
        size *= 4
        sample = source.head(size)
    return sample


def _control_share(text: str) -> float:
    """Share of control characters, which text tables never hold but binary data decoded as text is full of."""
    if not text:
        return 0.0
    # C1 controls (0x80-0x9f) are left out: a Latin-1 file owes its fallback to exactly those bytes.
    controls = sum(text.count(chr(c)) for c in itertools.chain(range(0, 9), (11, 12), range(14, 32), (127,)))
    return controls / len(text)


def _detect_delimiter(sample: str, truncated: bool) -> str:
    """The candidate that splits the sample's lines into the same number of fields as the header."""
    text = sample[:_SNIFF_CHARS]
    if truncated or len(sample) > _SNIFF_CHARS:
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut > 0 else text  # drop the partial last line, unless it is the only one
    scores = {}
    for delimiter in DELIMITERS:
        try:
            records = [r for r in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), 200)
                       if not _is_blank(r)]
        except csv.Error:
            continue
        if not records:
            continue
        width, rest = len(records[0]), records[1:]
        consistency = sum(len(r) == width for r in rest) / len(rest) if rest else 1.0
        scores[delimiter] = (width >= 2, consistency, width)
    if not scores:
        return ","
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    best = max(scores.values())
    tied = [d for d in DELIMITERS if scores.get(d) == best]
    # csv.Sniffer alone is easily fooled (a '|' inside a formula, commas inside text): it only breaks ties.
    return sniffed if sniffed in tied else tied[0]


def _is_blank(record: list[str]) -> bool:
    # pandas skips empty and whitespace-only lines; csv.reader gives [] or ['   '] for them.
    return not record or (len(record) == 1 and not record[0].strip())


def _header_record(sample: str, delimiter: str) -> list[str] | None:
    try:
        for record in csv.reader(io.StringIO(sample), delimiter=delimiter):
            if not _is_blank(record):
                return record
    except csv.Error:
        # A header csv cannot split (a name over its field limit) is left to pandas to judge.
        first = sample.lstrip().split("\n", 1)[0]
        return first.split(delimiter) if first else None
    return None


@dataclass(frozen=True)
class _BadRecord:
    line: int
    expected: int
    seen: int | None  # None: a quote opened on this line is never closed


_UNSURE = object()


def _scan_records(source: _Source, delimiter: str, newline: int, max_records: int | None, *, skip: int = 0):
    """Find the first record whose number of fields differs from the header's, on the raw bytes.

    Works on whole chunks with numpy: separators and line breaks inside quotes are masked by the parity of
    the quotes before them, and separators are counted per record with one ``searchsorted``. This matches
    pandas' tokenizer as long as quotes only open at the start of a field; otherwise it returns ``_UNSURE``.
    """
    delim = ord(delimiter)
    expected: int | None = None
    records = 0  # non-blank records seen, header included
    lines_before = 0  # physical line breaks before the current chunk
    parity = 0  # 1 when the chunk starts inside a quoted field
    prev_byte = newline  # the file starts where a field may start
    carry_delims, carry_line, carry_blank = 0, 1, True  # the record running over from the previous chunk

    def check(fields: np.ndarray, nonblank: np.ndarray, line_of) -> _BadRecord | bool | None:
        nonlocal expected, records
        index = np.flatnonzero(nonblank)
        if max_records is not None:
            index = index[: max_records - records]
        if not len(index):
            return None
        if expected is None:
            expected = int(fields[index[0]])
        wrong = index[fields[index] != expected]
        if len(wrong):
            k = int(wrong[0])
            return _BadRecord(line=line_of(k), expected=expected, seen=int(fields[k]))
        records += len(index)
        return max_records is not None and records >= max_records

    with source.open() as fh:
        fh.seek(skip)  # past a byte-order mark, so a quoted first name still starts a field
        while chunk := fh.read(_SCAN_CHUNK):
            a = np.frombuffer(chunk, dtype=np.uint8)
            is_quote = a == _QUOTE
            all_newlines = np.flatnonzero(a == newline)  # physical lines, quoted line breaks included
            ends = all_newlines
            delims = np.flatnonzero(a == delim)
            if parity or is_quote.any():
                quotes = np.flatnonzero(is_quote)
                opening = quotes[((np.arange(1, len(quotes) + 1) + parity) & 1) == 1]
                before = a[np.maximum(opening - 1, 0)]
                before[opening == 0] = prev_byte
                starts_field = (before == delim) | (before == newline) | (before == _CR) | (before == _QUOTE)
                if not starts_field.all():
                    return _UNSURE  # a quote inside an unquoted value: let csv count the fields
                # Running parity of the quotes seen so far: 1 means the byte sits inside a quoted field.
                inside = np.bitwise_xor.accumulate(is_quote.view(np.uint8)).view(bool)
                if parity:
                    inside = ~inside
                ends = ends[~inside[ends]]
                delims = delims[~inside[delims]]
                parity = int(inside[-1])
            # Separators before each record's end; their differences are the separators per record.
            before_end = np.searchsorted(delims, ends)
            per_record = np.diff(before_end, prepend=0, append=len(delims))
            per_record[0] += carry_delims
            starts = np.concatenate(([0], ends + 1))
            complete = len(ends)
            blank = np.zeros(complete + 1, dtype=bool)
            for k in np.flatnonzero(per_record == 0):  # only records without a separator can be blank
                end = ends[k] if k < complete else len(a)
                blank[k] = not chunk[starts[k]:end].strip() and (k > 0 or carry_blank)

            def line_of(k: int, lines_before=lines_before, all_newlines=all_newlines, starts=starts,
                        carry_line=carry_line) -> int:
                if k == 0:
                    return carry_line
                return lines_before + int(np.searchsorted(all_newlines, starts[k])) + 1

            outcome = check(per_record[:complete] + 1, ~blank[:complete], line_of)
            if isinstance(outcome, _BadRecord):
                return outcome
            if outcome:
                return None
            carry_delims = int(per_record[complete])
            carry_blank = bool(blank[complete])
            if complete:
                carry_line = lines_before + int(np.searchsorted(all_newlines, starts[complete])) + 1
            lines_before += len(all_newlines)
            prev_byte = int(a[-1])
    if parity:
        return _BadRecord(line=carry_line, expected=expected or 0, seen=None)
    if not carry_blank or carry_delims:
        outcome = check(np.array([carry_delims + 1]), np.array([True]), lambda k: carry_line)
        if isinstance(outcome, _BadRecord):
            return outcome
    return None


def _scan_records_slowly(source: _Source, codec: str, delimiter: str, max_records: int | None) -> _BadRecord | None:
    """The same check through the csv module, for files with quotes in the middle of values."""
    expected, seen, start_line = None, 0, 1
    with source.open() as fh, io.TextIOWrapper(fh, encoding=codec, newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for record in reader:
                if not _is_blank(record):
                    if expected is None:
                        expected = len(record)
                    elif len(record) != expected:
                        return _BadRecord(line=start_line, expected=expected, seen=len(record))
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        break
                start_line = reader.line_num + 1
        except csv.Error:
            return None  # pandas' own parser has the last word on what csv cannot split
    return None


def _parse_text(source: _Source, filename: str, codec: str, delimiter: str, nrows: int | None) -> pd.DataFrame:
    try:
        return pd.read_csv(
            source.for_library(),
            sep=delimiter,
            encoding=codec,
            engine="c",
            dtype=object,  # every value stays text; object rather than str so pandas' string option can't change it
            na_filter=False,  # missing values are mapped below, the same way for CSV and Excel
            header=0,
            index_col=False,
            quotechar='"',
            doublequote=True,
            skip_blank_lines=True,
            nrows=nrows,
        )
    except pd.errors.EmptyDataError:
        raise InvalidInput(_empty_message(filename)) from None
    except pd.errors.ParserError as error:
        raise InvalidInput(_parser_message(filename, str(error), delimiter)) from None
    except UnicodeDecodeError:
        raise InvalidInput(_encoding_message(filename, codec, None, declared=False)) from None


def _missing_to_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty cells and the usual markers ('NA', 'null', '-', ...) become None; every other value stays text."""
    columns = {}
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        mask = column.isin(NA_MARKERS).to_numpy()  # one hash lookup per cell, in C
        values = column.to_numpy(dtype=object, copy=True)
        values[mask] = None
        columns[position] = values
    # copy=False keeps one array per column instead of copying all of them into one block.
    result = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)), copy=False)
    result.columns = frame.columns
    return result


# --- Excel (.xlsx) ----------------------------------------------------------------------------------------

_MERGE_CELL = re.compile(rb'<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref="([A-Za-z0-9:$]+)"')


def _read_xlsx(source: _Source, filename: str, limits: ReadLimits, options: ReadOptions) -> RawTable:
    import openpyxl

    head = source.head(8)
    _refuse_other_formats(head, filename, expected="xlsx")
    with source.open() as fh:
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError):
            raise InvalidInput(_not_xlsx_message(filename)) from None
        with archive:
            _check_zip(archive, filename, limits)
            if "xl/workbook.xml" not in archive.namelist():
                raise InvalidInput(
                    f"'{filename}' is a zip archive but not an Excel workbook. "
                    "Open the table in Excel and save it as an .xlsx workbook, then upload that."
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions we do not read
                try:
                    workbook = openpyxl.load_workbook(source.for_library(), read_only=True, data_only=False)
                except Exception:  # openpyxl raises many kinds of error for a damaged workbook
                    raise InvalidInput(
                        f"'{filename}' could not be opened as an Excel workbook; it may be damaged. "
                        "Open it in Excel, save it again as .xlsx (or export the sheet as CSV) and upload that."
                    ) from None
                try:
                    return _read_workbook(workbook, archive, filename, limits, options)
                finally:
                    workbook.close()


def _check_zip(archive: zipfile.ZipFile, filename: str, limits: ReadLimits) -> None:
    """Refuse a zip bomb from the sizes the archive declares, before anything is unpacked."""
    members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_xlsx_uncompressed_bytes:
        raise InvalidInput(
            f"'{filename}' would unpack to {_megabytes(unpacked)}, more than Steward accepts "
            f"({_megabytes(limits.max_xlsx_uncompressed_bytes)}). Copy the sheet you need into a new workbook, "
            "or export it as CSV, and upload that."
        )
    for member in members:
        if member.file_size > _RATIO_FLOOR and member.file_size > _MAX_RATIO * max(member.compress_size, 1):
            raise InvalidInput(
                f"'{filename}' holds data compressed more than {_MAX_RATIO} times, which is a sign of a damaged "
                "or malicious file. Open it in Excel, save it again (or export the sheet as CSV) and upload that."
            )
    # zipfile stops each member at its declared size (and checks its CRC), so these sizes bound the unpacking.


def _read_workbook(workbook, archive: zipfile.ZipFile, filename: str, limits: ReadLimits,
                   options: ReadOptions) -> RawTable:
    sheets = list(workbook.sheetnames)
    if not sheets:
        raise InvalidInput(f"'{filename}' has no sheets. Add the table to a sheet and upload again.")
    name = options.sheet if options.sheet is not None else sheets[0]
    if name not in sheets:
        raise InvalidInput(
            f"'{filename}' has no sheet called '{name}'. Its sheets are: {', '.join(repr(s) for s in sheets)}."
        )
    sheet = workbook[name]
    if not hasattr(sheet, "iter_rows"):
        raise InvalidInput(f"Sheet '{name}' in '{filename}' holds a chart, not a table. Choose another sheet.")
    # Dimensions written by some tools are wrong (too small, or the whole sheet): read the cells themselves.
    sheet.reset_dimensions()

    rows = iter(sheet.iter_rows(values_only=True))
    # The header is the first row with anything in it; rows above it (empty) keep the numbering right.
    numbered = ((number, values) for number, values in enumerate(rows, start=1) if any(v is not None for v in values))
    header_row, header_values = next(numbered, (0, None))
    if header_values is None:
        raise InvalidInput(f"Sheet '{name}' in '{filename}' is empty. Choose the sheet that holds the table.")
    header = [_cell_text(v, missing_markers=False) for v in header_values]
    while header and header[-1] is None:
        header.pop()
    if len(header) > limits.max_columns:
        _check_names(header, limits, filename, excel=True)
    # Read-only sheets do not load merged cells, so they are found in the sheet's XML (its path is private).
    merged = _merged_ranges(archive, sheet._worksheet_path)
    touching = [ref for ref, top, bottom in merged if top <= header_row <= bottom]
    if touching:
        raise InvalidInput(
            f"Sheet '{name}' in '{filename}' has merged cells in its header row ({', '.join(touching[:3])}). "
            "Unmerge them in Excel so that every column has its own name in one cell, then upload again."
        )

    data: list[list[str | None]] = []
    width = len(header)
    formulas = 0
    exhausted = True
    for values in rows:
        if options.nrows is not None and len(data) >= options.nrows:
            exhausted = False
            break
        if all(v is None for v in values):
            continue  # an empty row, like a blank line in a CSV
        cells = [_cell_text(v) for v in values]
        formulas += sum(1 for c in cells if c is not None and c.startswith("="))
        last = len(cells)
        while last and cells[last - 1] is None:
            last -= 1
        width = max(width, last)
        data.append(cells)

    names = [h if h is not None else "" for h in header] + [""] * (width - len(header))
    _check_names(names, limits, filename, excel=True)
    if not data:
        raise InvalidInput(_no_rows_message(filename, sheet=name))
    rows_out = [cells[:width] + [None] * (width - len(cells)) for cells in data]
    frame = pd.DataFrame(rows_out, columns=names, dtype=object)

    notes = []
    if len(sheets) > 1:
        notes.append(f"Read sheet '{name}'; the workbook also has {', '.join(repr(s) for s in sheets if s != name)}.")
    if formulas:
        notes.append(
            f"{formulas} {'cells start' if formulas != 1 else 'cell starts'} with '=' (formulas). Steward keeps "
            "them as text "
            "and never calculates them; to use their results, paste the values into the sheet instead."
        )
    return RawTable(
        frame=frame,
        file_format="xlsx",
        encoding=None,
        delimiter=None,
        decimal=".",
        sheets=sheets,
        sheet=name,
        total_rows=len(frame) if exhausted else None,
        notes=notes,
    )


def _merged_ranges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[str, int, int]]:
    """Merged ranges of a sheet (ref, first row, last row), found in its XML without loading the sheet."""
    from openpyxl.utils.cell import range_boundaries

    found: dict[str, tuple[int, int]] = {}
    tail = b""
    with archive.open(sheet_path.lstrip("/")) as xml:
        while chunk := xml.read(_SCAN_CHUNK):
            text = tail + chunk
            for match in _MERGE_CELL.finditer(text):
                ref = match.group(1).decode("ascii").replace("$", "")
                try:
                    _, top, _, bottom = range_boundaries(ref)
                except (ValueError, TypeError):
                    continue
                found[ref] = (top, bottom)
            tail = text[-512:]  # a tag split across two chunks is matched on the next round
    return [(ref, top, bottom) for ref, (top, bottom) in found.items()]


def _cell_text(value, *, missing_markers: bool = True) -> str | None:
    """An Excel value as the text a CSV export would hold; formulas stay as their text."""
    if value is None:
        return None
    if isinstance(value, str):
        return None if missing_markers and value in NA_MARKERS else value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(getattr(value, "text", None), str):
        return value.text  # an array formula, kept as its text like any other formula
    if getattr(value, "t", None) == "dataTable":
        return f"=TABLE({value.r1 or ''},{value.r2 or ''})"
    return str(value)


# --- Parquet ----------------------------------------------------------------------------------------------


def _read_parquet(source: _Source, filename: str, limits: ReadLimits, options: ReadOptions) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    head = source.head(4)
    _refuse_other_formats(head, filename, expected="parquet")
    damaged = InvalidInput(
        f"'{filename}' is not a readable Parquet file; it may be damaged or in another format. "
        "Export the table again as Parquet (or as CSV) and upload that."
    )
    if head != b"PAR1":
        raise damaged
    try:
        parquet = pq.ParquetFile(source.for_library() if source.data is None else pa.BufferReader(source.data))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError):
        raise damaged from None
    if len(schema.names) > limits.max_columns:
        _check_names(list(schema.names), limits, filename, excel=False)
    if parquet.metadata.num_rows == 0:
        raise InvalidInput(_no_rows_message(filename))
    try:
        if options.nrows is None:
            table = parquet.read()
        else:
            batches, count = [], 0
            for batch in parquet.iter_batches(batch_size=options.nrows):
                batches.append(batch)
                count += batch.num_rows
                if count >= options.nrows:
                    break
            table = pa.Table.from_batches(batches, schema=schema).slice(0, options.nrows)
        frame = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError):
        raise damaged from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # a saved index (an id, a date) is data the user will want as a column
    frame.columns = [str(c) for c in frame.columns]
    _check_names(list(frame.columns), limits, filename, excel=False)
    total = parquet.metadata.num_rows
    return RawTable(
        frame=frame,
        file_format="parquet",
        encoding=None,
        delimiter=None,
        decimal=".",
        sheets=[],
        sheet=None,
        total_rows=total,
        notes=[],
    )


# --- shared checks and messages ---------------------------------------------------------------------------


def _check_names(names: list[str], limits: ReadLimits, filename: str, *, excel: bool) -> None:
    if len(names) > limits.max_columns:
        raise InvalidInput(
            f"'{filename}' has {len(names):,} columns; Steward reads at most {limits.max_columns:,}. "
            "Keep only the columns you need and upload again."
        )
    where = "header row" if excel else "first line"
    empty = [i for i, n in enumerate(names, start=1) if n is None or not str(n).strip()]
    if empty:
        listed = ", ".join(_position(i, excel) for i in empty[:5]) + (" and others" if len(empty) > 5 else "")
        raise InvalidInput(
            f"'{filename}' has a column without a name in its {where} ({listed}). "
            "Give every column a name (or delete the empty column), then upload again."
        )
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names, start=1):
        seen.setdefault(n, []).append(i)
    repeated = {n: p for n, p in seen.items() if len(p) > 1}
    if repeated:
        listed = "; ".join(
            f"'{n}' ({', '.join(_position(i, excel) for i in p)})" for n, p in list(repeated.items())[:5]
        )
        raise InvalidInput(
            f"'{filename}' uses the same column name more than once: {listed}. "
            "Give every column a different name, then upload again."
        )


def _position(index: int, excel: bool) -> str:
    if excel:
        from openpyxl.utils import get_column_letter

        return f"column {index} ({get_column_letter(index)})"
    return f"column {index}"


def _refuse_other_formats(head: bytes, filename: str, *, expected: str) -> None:
    """A file whose content is another accepted format gets told which extension it needs."""
    if expected != "xlsx" and head.startswith(b"PK\x03\x04"):
        raise InvalidInput(
            f"'{filename}' is a zip archive (an Excel workbook is one), not a text table. "
            "If it is an Excel workbook, give it the .xlsx extension; otherwise export the table as CSV."
        )
    if expected != "parquet" and head.startswith(b"PAR1"):
        raise InvalidInput(f"'{filename}' is a Parquet file. Give it the .parquet extension and upload it again.")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput(
            f"'{filename}' is an old-style Excel (.xls) or password-protected workbook, which Steward cannot "
            "open. Open it in Excel, remove any password, save it as 'Excel Workbook (.xlsx)' and upload that."
        )


def _not_xlsx_message(filename: str) -> str:
    return (
        f"'{filename}' is not a valid Excel .xlsx workbook. If it is a CSV file, give it the .csv extension; "
        "otherwise open it in Excel, save it as 'Excel Workbook (.xlsx)' and upload that."
    )


def _unknown_extension_message(filename: str, suffix: str) -> str:
    if suffix in (".xls", ".xlsm", ".xlsb", ".ods"):
        return (
            f"Steward reads Excel files in the .xlsx format, not {suffix}. Open '{filename}' in Excel, "
            "save it as 'Excel Workbook (.xlsx)' (or export the sheet as CSV) and upload that."
        )
    return (
        f"Steward cannot read '{filename}': it reads {_ACCEPTED} files. "
        "Save the table in one of these formats and upload it again."
    )


def _empty_message(filename: str) -> str:
    return f"'{filename}' is empty. Upload a file with a header row and at least one row of data."


def _no_rows_message(filename: str, sheet: str | None = None) -> str:
    where = f"Sheet '{sheet}' in '{filename}'" if sheet else f"'{filename}'"
    return f"{where} has column names but no rows of data. Upload a file with at least one row under the header."


def _binary_message(filename: str, line: int | None = None) -> str:
    where = f" (binary data on line {line})" if line and line > 1 else ""
    return (
        f"'{filename}' does not look like a text table{where}. "
        "Upload a CSV saved as text, an Excel .xlsx workbook or a Parquet file."
    )


def _encoding_message(filename: str, codec: str, line: int | None, declared: bool, advice: str | None = None) -> str:
    label = _ENCODING_LABELS.get(codec, codec)
    where = f"line {line} has characters" if line else "some characters are"
    if advice is None and codec in ("utf-8", "utf-8-sig"):
        advice = "files saved by Excel on Windows are usually Windows-1252 (cp1252)"
    elif advice is None:
        advice = "try UTF-8, Windows-1252 (cp1252) or Latin-1"
    chosen = "the encoding you chose, " if declared else ""
    return (
        f"'{filename}' cannot be read as {chosen}{label}: {where} that are not valid {label}. "
        f"Choose another encoding ({advice}), or save the file as 'CSV UTF-8' and upload it again."
    )


def _bad_record_message(bad: _BadRecord, delimiter: str) -> str:
    sep = _SEPARATOR_LABELS[delimiter]
    if bad.seen is None:
        return (
            f"A quotation mark (\") opened on line {bad.line} is never closed, so the rest of the file would be "
            "read as one value. Close or remove that quotation mark, then upload again."
        )
    if bad.seen > bad.expected:
        hint = f"an extra separator {sep}, or a value containing {sep} that should be in quotes"
    else:
        hint = "a missing value or separator"
    return (
        f"Line {bad.line} has {bad.seen} value{'s' if bad.seen != 1 else ''} but the header has "
        f"{bad.expected} column{'s' if bad.expected != 1 else ''} (separator {sep}). "
        f"Check that line for {hint}, fix it and upload again."
    )


def _parser_message(filename: str, detail: str, delimiter: str) -> str:
    if match := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail):
        expected, line, seen = (int(g) for g in match.groups())
        return _bad_record_message(_BadRecord(line=line, expected=expected, seen=seen), delimiter)
    if match := re.search(r"EOF inside string starting at row (\d+)", detail):
        return _bad_record_message(_BadRecord(line=int(match.group(1)) + 1, expected=0, seen=None), delimiter)
    return (
        f"'{filename}' could not be read as a table. Open it in a spreadsheet program, check that every line "
        "has the same columns as the header, save it as CSV and upload it again."
    )


def _text_note(encoding: str, encoding_declared: bool, delimiter: str, delimiter_declared: bool,
               decimal: str) -> str:
    label = _ENCODING_LABELS.get(encoding, encoding)
    sep = _SEPARATOR_LABELS[delimiter]
    comma = " with decimal comma" if decimal == "," else ""
    if not encoding_declared and not delimiter_declared:
        return f"Detected encoding {label} and separator {sep}{comma}."
    if encoding_declared and delimiter_declared:
        return f"Read with encoding {label} and separator {sep}{comma}, as chosen."
    if encoding_declared:
        return f"Read with encoding {label}, as chosen; detected separator {sep}{comma}."
    return f"Detected encoding {label}; used separator {sep}{comma}, as chosen."


def _megabytes(size: int) -> str:
    mb = size / (1024 * 1024)
    return f"{mb:,.0f} MB" if mb == round(mb) else f"{mb:,.1f} MB"
