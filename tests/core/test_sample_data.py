"""The committed sample datasets are reproducible and have the properties the docs promise."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
FILES = {
    "labour_force.csv": 5000,
    "labour_force_batch_similar.csv": 1000,
    "labour_force_batch_drifted.csv": 1000,
    "job_descriptions.csv": 3000,
    "house_prices.csv": 3000,
}
LABOUR_COLUMNS = [
    "person_id",
    "age",
    "sex",
    "region",
    "education",
    "hours_usual",
    "household_size",
    "urban",
    "months_since_last_job",
    "employed",
]


def _load_generator():
    spec = importlib.util.spec_from_file_location("sample_data_generate", SAMPLE_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / name, dtype={"code": str})


def test_generator_is_deterministic_and_matches_committed_files(tmp_path):
    written = _load_generator().main(tmp_path)
    assert sorted(p.name for p in written) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


@pytest.mark.parametrize(("name", "rows"), FILES.items())
def test_row_counts_and_sizes(name, rows):
    assert len(_read(name)) == rows
    assert (SAMPLE_DIR / name).stat().st_size < 1_000_000


def test_columns():
    for name in ["labour_force.csv", "labour_force_batch_similar.csv", "labour_force_batch_drifted.csv"]:
        assert list(_read(name).columns) == LABOUR_COLUMNS, name
    assert list(_read("job_descriptions.csv").columns) == ["record_id", "description", "code"]
    assert list(_read("house_prices.csv").columns) == [
        "dwelling_id",
        "floor_area_m2",
        "rooms",
        "year_built",
        "region",
        "dwelling_type",
        "distance_to_centre_km",
        "has_garden",
        "energy_label",
        "price_eur",
    ]


def test_labour_force_target_is_balanced_enough_and_ids_are_disjoint():
    main = _read("labour_force.csv")
    shares = main["employed"].value_counts(normalize=True)
    assert set(shares.index) == {"yes", "no"}
    assert shares.min() >= 0.20
    assert main["person_id"].is_unique
    ids = [set(_read(n)["person_id"]) for n in FILES if n.startswith("labour_force")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert 0.10 <= main["months_since_last_job"].isna().mean() <= 0.20
    assert main["age"].between(16, 74).all()


def test_drifted_batch_is_clearly_older_than_similar_batch():
    similar = _read("labour_force_batch_similar.csv")
    drifted = _read("labour_force_batch_drifted.csv")
    assert drifted["age"].mean() - similar["age"].mean() >= 5
    assert drifted["hours_usual"].isna().mean() > similar["hours_usual"].isna().mean()


def test_job_descriptions_have_enough_classes_of_reasonable_size():
    jobs = _read("job_descriptions.csv")
    counts = jobs["code"].value_counts()
    assert 15 <= len(counts) <= 25
    assert counts.min() >= 50
    assert jobs["code"].str.fullmatch(r"\d{4}").all()
    assert jobs["description"].str.split().str.len().between(3, 12).all()


def test_house_prices_are_positive():
    houses = _read("house_prices.csv")
    assert (houses["price_eur"] > 0).all()
    assert houses["energy_label"].isna().any()
