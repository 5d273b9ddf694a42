"""Generate Steward's synthetic sample datasets (deterministic, seeded, no network).

Run ``python sample_data/generate.py [OUT_DIR]``; by default the CSV files are written next to this
script, overwriting any existing copies. Every random draw comes from ``numpy.random.default_rng``
seeded from ``SEED``, so the output is byte-identical on every run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240601
REGIONS = ["Capital", "North", "South", "East", "West", "Islands"]
EDUCATION = ["primary", "lower_secondary", "upper_secondary", "tertiary"]


def _with_missing(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    values = values.astype(float)
    values[rng.random(len(values)) < share] = np.nan
    return values


def labour_force(rng: np.random.Generator, n: int, first_id: int, drifted: bool = False) -> pd.DataFrame:
    """Labour-force-survey-like persons with a binary ``employed`` target."""
    age_shift = 10 if drifted else 0
    age = np.clip(np.round(rng.normal(41 + age_shift, 14, n)), 16, 74).astype(int)
    sex = rng.choice(["female", "male"], n)
    region_p = [0.14, 0.16, 0.22, 0.2, 0.16, 0.12] if drifted else [0.32, 0.2, 0.17, 0.14, 0.12, 0.05]
    region = rng.choice(REGIONS, n, p=region_p)
    edu_p = [0.06, 0.14, 0.4, 0.4] if drifted else [0.12, 0.23, 0.4, 0.25]
    edu_idx = np.clip(rng.choice(4, n, p=edu_p) - (age < 20), 0, 3)
    education = np.array(EDUCATION)[edu_idx]
    hours = np.clip(rng.normal(34 - 5 * drifted - 4 * (sex == "female"), 10, n), 4, 70)
    household = np.clip(rng.poisson(1.6, n) + 1, 1, 9)
    urban_p = np.where(region == "Capital", 0.9, np.where(region == "Islands", 0.3, 0.55))
    urban = np.where(rng.random(n) < urban_p, "yes", "no")
    months = rng.exponential(14, n)

    region_effect = dict(zip(REGIONS, [0.4, 0.1, -0.5, 0.0, 0.2, -0.7], strict=True))
    logit = 1.3 * (
        1.2
        - 2.2 * ((age - 40) / 18) ** 2
        + np.array([-1.0, -0.4, 0.2, 0.9])[edu_idx]
        + 0.05 * (hours - 34)
        + np.vectorize(region_effect.get)(region)
        + 0.3 * (urban == "yes")
        - 0.7 * np.log1p(months / 12)
        - 0.12 * np.maximum(household - 4, 0)
    )
    employed = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(
        {
            "person_id": [f"P{i:06d}" for i in range(first_id, first_id + n)],
            "age": age,
            "sex": sex,
            "region": region,
            "education": np.where(rng.random(n) < 0.03, None, education),
            "hours_usual": _with_missing(rng, np.round(hours, 1), 0.2 if drifted else 0.05),
            "household_size": household,
            "urban": urban,
            "months_since_last_job": _with_missing(rng, np.round(months, 1), 0.15),
            "employed": employed,
        }
    )


# ISCO-like occupation codes with comma-separated job titles and task phrases; several classes share
# words on purpose (nurse / nursing assistant, cook / kitchen helper, taxi / lorry driver, ...).
TITLES = {
    "2211": "doctor, general practitioner, physician, family doctor",
    "2221": "nurse, registered nurse, staff nurse, ward nurse",
    "5321": "nursing assistant, health care assistant, nurse aide",
    "5322": "home care worker, personal carer, care worker",
    "2330": "secondary school teacher, maths teacher, high school teacher",
    "2341": "primary school teacher, class teacher, infant teacher",
    "2411": "accountant, chartered accountant, auditor",
    "4311": "bookkeeper, accounts clerk, payroll clerk",
    "2512": "software developer, programmer, software engineer",
    "3512": "ict support technician, helpdesk technician, it support",
    "4120": "secretary, office secretary, personal assistant",
    "5120": "cook, chef, kitchen chef",
    "9412": "kitchen helper, kitchen porter, dishwasher",
    "5223": "shop assistant, sales assistant, shop worker",
    "5230": "cashier, checkout operator, till operator",
    "8322": "taxi driver, car driver, chauffeur",
    "8332": "lorry driver, truck driver, hgv driver",
    "7115": "carpenter, joiner, builder",
    "7411": "electrician, electrical installer, building electrician",
    "9112": "cleaner, office cleaner, domestic cleaner",
}
TASKS = {
    "2211": "treating patients, medical consultations, diagnosing illness",
    "2221": "patient care on hospital ward, giving medication to patients, nursing care",
    "5321": "helping patients wash, care of hospital patients, assisting nurses",
    "5322": "caring for elderly at home, home help for old people, personal care visits",
    "2330": "teaching pupils in secondary school, teaching chemistry, teaching teenagers",
    "2341": "teaching young children, teaching primary pupils, teaching reading to children",
    "2411": "preparing annual accounts, auditing company accounts, tax accounting",
    "4311": "keeping accounts books, processing invoices, payroll and accounts",
    "2512": "writing software code, developing web applications, programming computers",
    "3512": "fixing computers for users, computer helpdesk support, installing software",
    "4120": "typing letters and diary management, office administration, answering phone in office",
    "5120": "cooking meals in restaurant, preparing food in kitchen, cooking for canteen",
    "9412": "washing dishes in kitchen, cleaning kitchen, helping the cook",
    "5223": "selling clothes in shop, serving customers in store, stocking shelves in shop",
    "5230": "working the till in supermarket, checkout at store, taking payments from customers",
    "8322": "driving taxi, driving people by car, private hire driving",
    "8332": "driving heavy goods vehicle, transporting goods by truck, long distance driving",
    "7115": "making wooden frames, fitting doors and windows, building work with wood",
    "7411": "installing wiring in houses, electrical repairs, fitting electrical systems in buildings",
    "9112": "cleaning offices, cleaning houses, cleaning hotel rooms",
}
EXTRAS = [
    "part time",
    "full time",
    "senior",
    "assistant",
    "trainee",
    "self employed",
    "temporary",
    "night shifts",
]
FILLERS = ["in town", "for many years", "at the moment", "my main job", "since last year"]


def _typo(rng: np.random.Generator, text: str) -> str:
    """Drop or swap a letter inside a word (never touching spaces, so the word count is kept)."""
    inside = [i for i in range(1, len(text)) if text[i - 1 : i + 1].isalpha()]
    i = int(rng.choice(inside))
    if rng.random() < 0.5:
        return text[:i] + text[i + 1 :]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


def job_descriptions(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Free-text job descriptions labelled with an ISCO-like 4-digit occupation code."""
    codes = list(TITLES)
    weights = rng.permutation(np.linspace(1, 4, len(codes)))
    sizes = np.floor(weights / weights.sum() * n).astype(int)
    sizes[: n - sizes.sum()] += 1
    labels = rng.permutation(np.repeat(codes, sizes))
    rows = []
    for code in labels:
        # coding noise: a few records are worded like another occupation
        source = codes[int(rng.integers(len(codes)))] if rng.random() < 0.08 else code
        titles, tasks = TITLES[source].split(", "), TASKS[source].split(", ")
        parts = [str(rng.choice(titles))] if rng.random() < 0.75 else []
        if not parts or rng.random() < 0.5:
            parts.append(str(rng.choice(tasks)))
        if rng.random() < 0.35:
            parts.insert(int(rng.integers(0, len(parts) + 1)), str(rng.choice(EXTRAS)))
        if len(" ".join(parts).split()) < 3:
            parts.append(str(rng.choice(FILLERS)))
        text = " ".join(" ".join(parts).split()[:12])
        if rng.random() < 0.05:
            text = _typo(rng, text)
        case = rng.random()
        rows.append(text.upper() if case < 0.1 else text.capitalize() if case < 0.5 else text)
    ids = [f"J{i:05d}" for i in range(1, n + 1)]
    return pd.DataFrame({"record_id": ids, "description": rows, "code": labels})


def house_prices(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Dwellings with a log-normal-ish sale price in euros."""
    types = np.array(["flat", "terraced", "semi-detached", "detached"])
    type_idx = rng.choice(4, n, p=[0.35, 0.25, 0.22, 0.18])
    area = np.round(rng.lognormal(np.log([60, 85, 105, 150])[type_idx], 0.25), 1)
    rooms = np.clip(np.round(area / 25 + rng.normal(0, 0.8, n)), 1, 12).astype(int)
    year = np.clip(np.round(rng.normal(1975, 28, n)), 1850, 2024).astype(int)
    region = rng.choice(REGIONS, n, p=[0.32, 0.2, 0.17, 0.14, 0.12, 0.05])
    distance = np.round(rng.gamma(2.0, np.where(region == "Capital", 3.0, 6.0)), 1)
    garden = np.where(rng.random(n) < np.array([0.15, 0.7, 0.85, 0.95])[type_idx], "yes", "no")
    label_score = np.clip(np.round((2024 - year) / 18 + rng.normal(0, 1, n)), 0, 6).astype(int)
    energy = np.where(rng.random(n) < 0.08, None, np.array(list("ABCDEFG"))[label_score])

    region_level = dict(zip(REGIONS, [0.45, 0.0, -0.15, -0.05, 0.1, -0.3], strict=True))
    age = 2024 - year
    log_price = (
        8.3
        + 0.85 * np.log(area)
        + np.vectorize(region_level.get)(region)
        + np.array([0.0, 0.05, 0.12, 0.25])[type_idx]
        - 0.35 * np.log1p(distance / 3)
        + 0.08 * (garden == "yes")
        - 0.04 * label_score
        - 0.25 * np.exp(-(((age - 50) / 15) ** 2))  # post-war 1960s-1980s stock sells at a discount
        + 0.15 * (age > 100)
        + rng.normal(0, 0.18, n)
    )
    return pd.DataFrame(
        {
            "dwelling_id": [f"D{i:05d}" for i in range(1, n + 1)],
            "floor_area_m2": area,
            "rooms": rooms,
            "year_built": year,
            "region": region,
            "dwelling_type": types[type_idx],
            "distance_to_centre_km": distance,
            "has_garden": garden,
            "energy_label": energy,
            "price_eur": (np.round(np.exp(log_price) / 500) * 500).astype(int),
        }
    )


def main(out_dir: str | Path | None = None) -> list[Path]:
    """Write every sample dataset into ``out_dir`` (default: this script's folder); return the paths."""
    out = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "labour_force.csv": labour_force(np.random.default_rng(SEED), 5000, first_id=1),
        "labour_force_batch_similar.csv": labour_force(
            np.random.default_rng(SEED + 1), 1000, first_id=100001
        ),
        "labour_force_batch_drifted.csv": labour_force(
            np.random.default_rng(SEED + 2), 1000, first_id=200001, drifted=True
        ),
        "job_descriptions.csv": job_descriptions(np.random.default_rng(SEED + 3), 3000),
        "house_prices.csv": house_prices(np.random.default_rng(SEED + 4), 3000),
    }
    paths = []
    for name, frame in frames.items():
        path = out / name
        frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in main(sys.argv[1] if len(sys.argv) > 1 else None):
        print(f"wrote {written} ({written.stat().st_size:,} bytes)")
