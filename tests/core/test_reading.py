"""Reading uploads: every accepted format becomes a table of text, and every bad file gets a plain refusal."""

import datetime as dt
import io
import random
import time
import zipfile

import openpyxl
import pandas as pd
import pytest

from core.data import reading
from core.data.reading import RawTable, ReadLimits, ReadOptions
from core.errors import InvalidInput

LIMITS = ReadLimits(max_bytes=10 * 1024 * 1024)


def read(data: bytes | str, filename: str = "data.csv", limits: ReadLimits = LIMITS, **options) -> RawTable:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return reading.read_table(data, filename, limits=limits, options=ReadOptions(**options))


def refusal(data: bytes | str, filename: str = "data.csv", limits: ReadLimits = LIMITS, **options) -> str:
    with pytest.raises(InvalidInput) as caught:
        read(data, filename, limits, **options)
    message = str(caught.value)
    assert "Traceback" not in message and "Error tokenizing" not in message
    return message


def rows(table: RawTable) -> list[list]:
    return table.frame.to_numpy().tolist()


def workbook_bytes(*sheets: tuple[str, list[list]], merge: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, cells in sheets:
        sheet = book.create_sheet(title)
        for row in cells:
            sheet.append(row)
        if merge:
            sheet.merge_cells(merge)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- text files that are read --------------------------------------------------------------------------------


def test_csv_values_stay_text_and_missing_values_become_none():
    table = read("id,age,city\n1,34,Zürich\n2,,NA\n3,41.5,Oslo\n")
    assert list(table.frame.columns) == ["id", "age", "city"]
    assert rows(table) == [["1", "34", "Zürich"], ["2", None, None], ["3", "41.5", "Oslo"]]
    assert all(pd.api.types.is_object_dtype(dtype) for dtype in table.frame.dtypes)
    assert (table.file_format, table.encoding, table.delimiter, table.decimal) == ("csv", "utf-8", ",", ".")
    assert table.total_rows == 3
    assert table.sheets == [] and table.sheet is None
    assert table.notes == ["Detected encoding UTF-8 and separator ','."]


def test_every_common_missing_marker_becomes_none_but_other_text_is_kept():
    markers = ["", "NA", "N/A", "null", "NULL", "NaN", "nan", "-", "."]
    body = "".join(f"{i},{marker}\n" for i, marker in enumerate(markers))
    table = read("id,value\n" + body + "99,n.a.\n100, NA \n")
    assert table.frame["value"].tolist() == [None] * len(markers) + ["n.a.", " NA "]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name():
    table = read(b"\xef\xbb\xbfname,city\nAnna,Z\xc3\xbcrich\n")
    assert list(table.frame.columns) == ["name", "city"]
    assert rows(table) == [["Anna", "Zürich"]]
    assert table.encoding == "utf-8-sig"


def test_utf16_with_byte_order_mark_is_read():
    table = read("name;wert\nZürich;1,5\nGenève;2\n".encode("utf-16"))
    assert table.encoding == "utf-16"
    assert rows(table) == [["Zürich", "1,5"], ["Genève", "2"]]
    assert table.notes == ["Detected encoding UTF-16 and separator ';' with decimal comma."]


def test_utf16_without_byte_order_mark_is_recognised():
    table = read("name,size\nBern,3\n".encode("utf-16-le"))
    assert table.encoding == "utf-16-le"
    assert rows(table) == [["Bern", "3"]]


def test_windows_1252_file_is_detected_with_its_euro_sign_and_umlauts():
    table = read("Stadt;Preis\nZürich;5,50 €\nKöln;-\n".encode("cp1252"))
    assert table.encoding == "cp1252"
    assert rows(table) == [["Zürich", "5,50 €"], ["Köln", None]]
    assert table.notes == ["Detected encoding Windows-1252 and separator ';' with decimal comma."]


def test_bytes_undefined_in_windows_1252_fall_back_to_latin_1():
    table = read(b"code,label\n1,caf\xe9\x81\n")
    assert table.encoding == "latin-1"
    assert rows(table) == [["1", "caf\xe9\x81"]]


def test_declared_encoding_is_used_and_reported():
    table = read("city,n\nGenève,1\n".encode("latin-1"), encoding="latin-1")
    assert rows(table) == [["Genève", "1"]]
    assert table.notes == ["Read with encoding Latin-1, as chosen; detected separator ','."]


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_each_separator_is_detected(separator):
    text = "\n".join(separator.join(row) for row in [["id", "name", "score"], ["1", "Ann", "7"], ["2", "Bo", "8"]])
    table = read(text + "\n")
    assert table.delimiter == separator
    assert rows(table) == [["1", "Ann", "7"], ["2", "Bo", "8"]]
    assert table.decimal == ("," if separator == ";" else ".")


def test_semicolon_file_keeps_decimal_comma_numbers_as_text():
    table = read("region;income;rate\nNord;1234,5;0,25\nSüd;987,0;1,5\n")
    assert table.decimal == ","
    assert table.frame["income"].tolist() == ["1234,5", "987,0"]
    assert table.frame["rate"].tolist() == ["0,25", "1,5"]


def test_declared_separator_wins_over_detection():
    table = read("a;b,c\n1;2,3\n", delimiter=",")
    assert list(table.frame.columns) == ["a;b", "c"]
    assert table.notes == ["Detected encoding UTF-8; used separator ',', as chosen."]


def test_quoted_values_may_hold_separators_newlines_and_quotes():
    text = 'id,comment,n\n1,"hello, world",5\n2,"line one\nline two",6\n3,"say ""hi""",7\n4,"",8\n'
    table = read(text)
    assert rows(table) == [
        ["1", "hello, world", "5"],
        ["2", "line one\nline two", "6"],
        ["3", 'say "hi"', "7"],
        ["4", None, "8"],
    ]


def test_windows_line_endings_and_blank_lines_are_handled():
    table = read("a,b\r\n1,2\r\n\r\n   \r\n3,4\r\n")
    assert rows(table) == [["1", "2"], ["3", "4"]]


def test_quotes_inside_unquoted_values_are_kept_as_written():
    table = read("name,height\nAnn,5'10\"\nBo,6'1\"\n")
    assert table.frame["height"].tolist() == ["5'10\"", "6'1\""]


def test_formula_like_cells_are_kept_exactly_as_text():
    formulas = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "=1+2", "-2+3"]
    body = "".join(f"{i},{value},x\n" for i, value in enumerate(formulas))
    table = read("id,cell,other\n" + body)
    assert table.delimiter == ","
    assert table.frame["cell"].tolist() == formulas


def test_a_column_where_every_value_is_missing_is_allowed():
    table = read("id,empty,n\n1,,3\n2,NA,4\n")
    assert table.frame["empty"].tolist() == [None, None]


def test_a_single_column_file_is_allowed():
    table = read("city\nOslo\nRome\n")
    assert list(table.frame.columns) == ["city"]
    assert table.frame["city"].tolist() == ["Oslo", "Rome"]


def test_preview_reads_only_the_first_rows_and_leaves_the_total_unknown():
    text = "n,square\n" + "".join(f"{i},{i * i}\n" for i in range(10))
    preview = read(text, nrows=3)
    assert preview.frame["n"].tolist() == ["0", "1", "2"]
    assert preview.total_rows is None
    whole = read(text, nrows=50)
    assert len(whole.frame) == 10 and whole.total_rows == 10


def test_preview_does_not_need_the_rest_of_the_file_to_be_tidy():
    text = "a,b\n1,2\n3,4\n5,6,7\n"
    assert rows(read(text, nrows=2)) == [["1", "2"], ["3", "4"]]
    assert "Line 4" in refusal(text)


def test_read_path_reads_a_file_on_disk_like_read_table(tmp_path):
    path = tmp_path / "upload.bin"
    path.write_bytes("Stadt;Preis\nZürich;5,50\n".encode("cp1252"))
    table = reading.read_path(path, "prices.csv", limits=LIMITS)
    assert rows(table) == [["Zürich", "5,50"]]
    assert (table.encoding, table.delimiter, table.decimal) == ("cp1252", ";", ",")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 11, 64])
def test_row_check_gives_the_same_answer_whatever_the_chunk_size(monkeypatch, chunk):
    # The bytes are checked chunk by chunk; quotes, blank lines and records must carry across chunk edges.
    monkeypatch.setattr(reading, "_SCAN_CHUNK", chunk)
    good = 'id,text,n\n\n1,"a, ""b""\nc",2\n  \n2,"",3\n3,Zürich,4'
    assert len(read(good).frame) == 3
    assert "Line 6 has 2 values" in refusal(good.replace("2,\"\",3", "2,\"\""))
    assert "Line 7 has 4 values" in refusal(good + ",5")
    assert "line 3 is never closed" in refusal('id,text\n1,x\n2,"open\n3,y\n')


# --- Excel and Parquet files that are read ------------------------------------------------------------------


def test_xlsx_cells_are_read_as_text_and_formulas_are_kept_not_calculated():
    data = workbook_bytes((
        "People",
        [
            ["name", "age", "joined", "ratio", "member", "total", "note"],
            ["Ann", 34, dt.datetime(2024, 1, 31), 0.25, True, "=B2*2", "=cmd|' /C calc'!A0"],
            ["Bo", None, dt.datetime(2024, 2, 1, 10, 30), 1.0, False, "=B3*2", "+1+1"],
            ["Cy", 29, None, None, None, None, "@SUM(A1)"],
        ],
    ))
    table = read(data, "people.xlsx")
    assert table.file_format == "xlsx"
    assert (table.encoding, table.delimiter, table.decimal) == (None, None, ".")
    assert table.sheets == ["People"] and table.sheet == "People"
    assert rows(table) == [
        ["Ann", "34", "2024-01-31", "0.25", "TRUE", "=B2*2", "=cmd|' /C calc'!A0"],
        ["Bo", None, "2024-02-01 10:30:00", "1", "FALSE", "=B3*2", "+1+1"],
        ["Cy", "29", None, None, None, None, "@SUM(A1)"],
    ]
    assert table.total_rows == 3
    assert any("3 cells start with '='" in note for note in table.notes)


def test_xlsx_array_formula_is_kept_as_its_text():
    from openpyxl.worksheet.formula import ArrayFormula

    book = openpyxl.Workbook()
    book.active.append(["n", "total"])
    book.active.append([1, None])
    book.active["B2"] = ArrayFormula("B2", "=SUM(A1:A3*2)")
    buffer = io.BytesIO()
    book.save(buffer)
    assert rows(read(buffer.getvalue(), "a.xlsx")) == [["1", "=SUM(A1:A3*2)"]]


def test_xlsx_first_sheet_is_read_unless_another_is_chosen():
    data = workbook_bytes(("Summary", [["k", "v"], ["a", 1]]), ("Data", [["x"], ["long"], ["short"]]))
    assert rows(read(data, "book.xlsx")) == [["a", "1"]]
    chosen = read(data, "book.xlsx", sheet="Data")
    assert chosen.sheet == "Data" and chosen.sheets == ["Summary", "Data"]
    assert rows(chosen) == [["long"], ["short"]]
    assert "Read sheet 'Data'; the workbook also has 'Summary'." in chosen.notes


def test_xlsx_preview_and_empty_rows():
    data = workbook_bytes(("S", [[None], ["a", "b"], [1, 2], [None, None], [3, "NA"], [5, 6]]))
    table = read(data, "s.xlsx")
    assert rows(table) == [["1", "2"], ["3", None], ["5", "6"]]
    preview = read(data, "s.xlsx", nrows=2)
    assert rows(preview) == [["1", "2"], ["3", None]] and preview.total_rows is None


def test_xlsx_merged_cells_below_the_header_are_allowed():
    data = workbook_bytes(("S", [["a", "b"], ["x", None], [1, 2]]), merge="A2:B2")
    assert rows(read(data, "s.xlsx")) == [["x", None], ["1", "2"]]


def test_parquet_keeps_its_native_types(tmp_path):
    frame = pd.DataFrame({
        "n": [1, 2, 3],
        "x": [0.5, None, 2.5],
        "name": ["a", None, "c"],
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "flag": [True, False, True],
    })
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    table = read(path.read_bytes(), "t.parquet")
    assert table.file_format == "parquet" and table.total_rows == 3
    pd.testing.assert_frame_equal(table.frame, frame)
    preview = reading.read_path(path, "t.pq", limits=LIMITS, options=ReadOptions(nrows=2))
    pd.testing.assert_frame_equal(preview.frame, frame.head(2))
    assert preview.total_rows == 3


def test_parquet_saved_index_becomes_a_column(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="key")).to_parquet(path)
    table = read(path.read_bytes(), "t.parquet")
    assert list(table.frame.columns) == ["key", "v"]


# --- files that are refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\n\t \r\n"])
def test_an_empty_file_is_refused(data):
    assert "is empty" in refusal(data)


def test_a_header_without_data_rows_is_refused():
    assert "no rows of data" in refusal("id,age,city\n")
    assert "no rows of data" in refusal("id,age,city\n\n\n")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03" * 2000,
        random.Random(7).randbytes(5000),
        bytes(b or 1 for b in random.Random(8).randbytes(5000)),  # no NUL byte: caught by its control characters
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
    ],
)
def test_binary_data_with_a_csv_name_does_not_look_like_a_text_table(data):
    assert "does not look like a text table" in refusal(data)


def test_binary_data_further_down_a_text_file_is_refused_naming_the_line():
    data = b"a,b\n" + b"1,2\n" * 20_000 + b"3,\x00\x00\n"
    assert "does not look like a text table (binary data on line 20002)" in refusal(data)


def test_a_workbook_named_csv_is_told_to_use_the_xlsx_extension():
    assert ".xlsx extension" in refusal(workbook_bytes(("S", [["a"], [1]])), "data.csv")


@pytest.mark.parametrize("filename", ["data.json", "data", "report.pdf"])
def test_unknown_extensions_are_refused_naming_the_accepted_ones(filename):
    message = refusal("a,b\n1,2\n", filename)
    assert ".csv, .tsv, .txt, .xlsx, .parquet or .pq" in message


def test_old_excel_files_are_asked_to_be_saved_as_xlsx():
    assert "save it as 'Excel Workbook (.xlsx)'" in refusal(b"\xd0\xcf\x11\xe0rest", "old.xls")


def test_a_row_with_more_values_than_the_header_is_refused_naming_its_line():
    message = refusal("id,name,n\n1,Ann,3\n\n2,\"Bo\nBerg\",4\n3,Cy,5,6\n4,Di,7\n")
    assert message.startswith("Line 6 has 4 values but the header has 3 columns (separator ',')")
    assert "extra separator" in message


def test_a_row_with_fewer_values_than_the_header_is_refused_naming_its_line():
    message = refusal("id;name;n\n1;Ann;3\n2;Bo\n3;Cy;5\n")
    assert message.startswith("Line 3 has 2 values but the header has 3 columns (separator ';')")
    assert "missing value" in message


def test_a_single_column_file_with_a_separator_in_a_row_is_refused_naming_the_line():
    message = refusal("city\nOslo\nRome,Italy\n", delimiter=",")
    assert message.startswith("Line 3 has 2 values but the header has 1 column (separator ',')")


def test_a_short_last_row_without_a_final_line_break_is_refused():
    assert "Line 3 has 1 value but" in refusal("a,b\n1,2\n3")


def test_a_short_row_is_found_in_a_file_with_quotes_inside_values():
    assert "Line 3 has 1 value but" in refusal("name,height\nAnn,5'10\"\nBo\n")


def test_duplicate_column_names_are_refused_naming_them():
    message = refusal("id,age,id,city,age\n1,2,3,4,5\n")
    assert "'id' (column 1, column 3); 'age' (column 2, column 5)" in message


def test_empty_column_names_are_refused_naming_their_position():
    assert "(column 2)" in refusal("id,,city\n1,2,3\n")
    assert "(column 3)" in refusal("id,city,  \n1,2,3\n")


def test_a_file_over_the_size_limit_is_refused_with_both_sizes(tmp_path):
    limits = ReadLimits(max_bytes=1024 * 1024)
    data = b"a,b\n" + b"1,2\n" * 400_000
    message = refusal(data, limits=limits)
    assert "is 1.5 MB, larger than the 1 MB limit" in message
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    with pytest.raises(InvalidInput, match="larger than the 1 MB limit"):
        reading.read_path(path, "big.csv", limits=limits)


def test_bytes_that_are_not_utf8_are_refused_when_utf8_was_declared():
    data = "city,n\nOslo,1\nZürich,2\n".encode("cp1252")
    message = refusal(data, encoding="utf-8")
    assert "cannot be read as the encoding you chose, UTF-8: line 3 has characters" in message
    assert "Windows-1252" in message


def test_a_utf16_file_declared_as_utf8_is_told_to_choose_utf16():
    message = refusal("a,b\n1,2\n".encode("utf-16"), encoding="utf-8")
    assert "cannot be read as the encoding you chose, UTF-8: line 1" in message and "choose UTF-16" in message


def test_an_unknown_declared_encoding_or_separator_is_refused():
    assert "not an encoding Steward knows" in refusal("a,b\n1,2\n", encoding="klingon")
    assert "not a separator Steward can use" in refusal("a,b\n1,2\n", delimiter=":")


def test_ten_thousand_columns_are_refused_quickly():
    header = ",".join(f"c{i}" for i in range(10_000))
    data = (header + "\n" + ",".join("1" for _ in range(10_000)) + "\n") * 2
    started = time.perf_counter()
    message = refusal(data)
    elapsed = time.perf_counter() - started
    assert "has 10,000 columns; Steward reads at most 2,000" in message
    assert elapsed < 1.0


def test_a_file_that_is_not_a_zip_is_refused_as_xlsx():
    assert "not a valid Excel .xlsx workbook" in refusal(b"just some text, really", "data.xlsx")


def test_a_zip_that_is_not_a_workbook_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    assert "zip archive but not an Excel workbook" in refusal(buffer.getvalue(), "data.xlsx")


def test_a_zip_bomb_is_refused_before_anything_is_unpacked():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (20 * 1024 * 1024))
    assert "compressed more than 200 times" in refusal(buffer.getvalue(), "bomb.xlsx")


def test_a_workbook_unpacking_beyond_the_limit_is_refused():
    limits = ReadLimits(max_bytes=LIMITS.max_bytes, max_xlsx_uncompressed_bytes=1000)
    assert "would unpack to" in refusal(workbook_bytes(("S", [["a"], [1]])), "s.xlsx", limits=limits)


def test_merged_cells_in_the_xlsx_header_are_refused():
    data = workbook_bytes(("S", [["Income", None, "Region"], [1, 2, "N"]]), merge="A1:B1")
    message = refusal(data, "s.xlsx")
    assert "merged cells in its header row (A1:B1)" in message and "Unmerge" in message


def test_an_unknown_sheet_is_refused_listing_the_sheets():
    data = workbook_bytes(("Summary", [["k"], [1]]), ("Data", [["x"], [2]]))
    assert "has no sheet called 'Daten'. Its sheets are: 'Summary', 'Data'." in refusal(data, "b.xlsx", sheet="Daten")


def test_xlsx_values_under_a_header_cell_without_a_name_are_refused():
    data = workbook_bytes(("S", [["a", None, "c"], [1, 2, 3]]))
    assert "(column 2 (B))" in refusal(data, "s.xlsx")
    assert "(column 3 (C))" in refusal(workbook_bytes(("S", [["a", "b"], [1, 2, 3]])), "s.xlsx")


def test_xlsx_sheet_with_a_header_only_or_nothing_is_refused():
    assert "no rows of data" in refusal(workbook_bytes(("S", [["a", "b"]])), "s.xlsx")
    assert "is empty" in refusal(workbook_bytes(("S", [])), "s.xlsx")


def test_parquet_that_is_damaged_or_too_wide_is_refused(tmp_path):
    assert "not a readable Parquet file" in refusal(b"PAR1 not really", "t.parquet")
    path = tmp_path / "wide.parquet"
    pd.DataFrame({f"c{i}": [i] for i in range(30)}).to_parquet(path)
    limits = ReadLimits(max_bytes=LIMITS.max_bytes, max_columns=10)
    assert "has 30 columns" in refusal(path.read_bytes(), "wide.parquet", limits=limits)
