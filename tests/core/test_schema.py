"""Column types are inferred sensibly, applied strictly, and the content hash ignores the file format."""

import io

import pandas as pd
import pytest

from core.data import schema
from core.data.reading import ReadLimits, read_table
from core.errors import InvalidInput

LIMITS = ReadLimits(max_bytes=10_000_000)
CSV = (
    "person_id,age,income,region,employed,started,note,isco_code\n"
    + "".join(
        f"P{i:04d},{20 + i % 40},{1000 + i * 7.5},{['North', 'South', 'East'][i % 3]},{['yes', 'no'][i % 2]},"
        f"2024-0{1 + i % 9}-1{i % 9},\"works {i} hours a week in town\",{['2211', '0110', '5120'][i % 3]}\n"
        for i in range(60)
    )
)


def raw(text: str, name: str = "t.csv"):
    return read_table(text.encode(), name, limits=LIMITS)


def test_types_are_inferred_from_names_and_values():
    table = raw(CSV)
    assert schema.infer_types(table.frame) == {
        "person_id": "identifier", "age": "numeric", "income": "numeric", "region": "categorical",
        "employed": "boolean", "started": "datetime", "note": "text", "isco_code": "categorical",
    }


def test_decimal_comma_numbers_are_numeric():
    table = raw("amount;label\n" + "1.234,5;a\n2,25;b\n" * 10)
    assert table.decimal == ","
    types = schema.infer_types(table.frame, table.decimal)
    assert types["amount"] == "numeric"
    assert schema.apply_types(table.frame, types, table.decimal)["amount"].iloc[0] == 1234.5


def test_text_in_a_numeric_column_is_refused_with_an_example():
    table = raw("age\n34\n41\nforty\n")
    with pytest.raises(InvalidInput, match="'forty'"):
        schema.apply_types(table.frame, {"age": "numeric"})


def test_ignored_columns_are_dropped_and_all_ignored_is_refused():
    table = raw(CSV)
    types = {**schema.infer_types(table.frame), "note": "ignore"}
    assert "note" not in schema.apply_types(table.frame, types).columns
    with pytest.raises(InvalidInput, match="Keep at least one column"):
        schema.apply_types(table.frame, {name: "ignore" for name in types})


def test_formula_like_text_is_kept_as_text():
    table = raw("name,formula\na,=cmd|' /C calc'!A0\nb,+1+1\n")
    frame = schema.apply_types(table.frame, {"name": "categorical", "formula": "categorical"})
    assert list(frame["formula"]) == ["=cmd|' /C calc'!A0", "+1+1"]


def test_the_same_content_from_csv_and_parquet_has_the_same_hash():
    table = raw(CSV)
    types = schema.infer_types(table.frame)
    from_csv = schema.apply_types(table.frame, types)
    buffer = io.BytesIO()
    pd.read_csv(io.StringIO(CSV), dtype={"isco_code": str}).to_parquet(buffer)  # native numbers, not text
    parquet = read_table(buffer.getvalue(), "t.parquet", limits=LIMITS)
    from_parquet = schema.apply_types(parquet.frame, types)
    assert schema.content_hash(from_csv, types) == schema.content_hash(from_parquet, types)


def test_the_hash_changes_with_a_value_a_type_or_the_row_order():
    table = raw(CSV)
    types = schema.infer_types(table.frame)
    frame = schema.apply_types(table.frame, types)
    base = schema.content_hash(frame, types)
    changed = frame.copy()
    changed.loc[3, "age"] = 99
    assert schema.content_hash(changed, types) != base
    assert schema.content_hash(frame, {**types, "region": "text"}) != base
    assert schema.content_hash(frame.iloc[::-1].reset_index(drop=True), types) != base
