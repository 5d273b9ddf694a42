"""The responsible-ML checklist: its template, the evidence the store provides for each item, and the answers.

An assessment belongs to one model version and follows the template version in force when it began. Each
item shows its question, evidence computed from the store (values, a small table or chart) with an automatic
status where the template gives a rule, and the builder's answer and justification. Answers carry a revision
number, so saving over a colleague's newer answer is refused instead of silently overwriting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score
from sqlmodel import Session, select

from core import audit, datasets, model_card
from core.auth import require_role
from core.config import Settings
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    Assessment,
    AssessmentItem,
    AssessmentStatus,
    DatasetVersion,
    ModelVersion,
    Project,
    ReviewRound,
    Role,
    TrainingRun,
    User,
    UserPublic,
    UserRole,
    utcnow,
)
from core.training import runs
from core.training.evaluation import GREATER_IS_BETTER, metric_label

TEMPLATE_PATH = Path(__file__).parent / "templates" / "rml_checklist.json"
ANSWERS = {"yes": "Yes", "partly": "Partly", "no": "No", "not_applicable": "Not applicable"}
STATUS_LABELS = {"pass": "Pass", "warn": "Warning", "fail": "Fail", "not_applicable": "Not applicable",
                 "info": "Information"}
MAX_JUSTIFICATION = 5000
SAMPLE_ROWS = 20_000  # the proxy screen reads at most this many rows
IDENTIFIER_NAME = re.compile(r"(^|_)(id|ident|name|first_?name|surname|address|phone|email|e_?mail|ssn)(_|$)",
                             re.IGNORECASE)
EDITABLE = (AssessmentStatus.draft, AssessmentStatus.changes_requested)


# ── template ────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    dimension: str
    stage: str
    question: str
    evidence_hint: str
    rule: str
    signoff: bool

    @property
    def required(self) -> bool:
        """Items of the monitoring stage are answered in operation, not before the first review."""
        return self.stage != "M"


@dataclass(frozen=True)
class Template:
    id: str
    version: str
    dimensions: dict[str, str]
    stages: dict[str, str]
    items: tuple[ChecklistItem, ...]

    def item(self, code: str) -> ChecklistItem:
        for item in self.items:
            if item.code == code:
                return item
        raise NotFound(f"The checklist has no item {code}.")


@lru_cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    raw = json.loads(path.read_text())
    items = tuple(ChecklistItem(code=i["id"], dimension=i["dimension"], stage=i["stage"], question=i["question"],
                                evidence_hint=i["auto_evidence"], rule=i["auto_rule"],
                                signoff=bool(i["reviewer_signoff_required"])) for i in raw["items"])
    dimensions = {d["code"]: d["name"] for d in raw["dimensions"]}
    unknown = {i.dimension for i in items} - set(dimensions)
    if unknown or len({i.code for i in items}) != len(items):
        raise ValueError(f"Checklist template {path} is inconsistent (dimensions {unknown} or repeated items).")
    return Template(id=raw["template_id"], version=raw["template_version"], dimensions=dimensions,
                    stages=dict(raw["stages"]), items=items)


# ── evidence ────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Evidence:
    """What the store says about one item: an automatic status, one plain sentence, facts, a table or a chart."""

    status: str
    summary: str
    facts: dict[str, str] = field(default_factory=dict)
    table: list[dict[str, Any]] | None = None
    chart: dict[str, Any] | None = None  # {"kind": "bars" | "subgroups" | "importance", ...}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**data)


class EvidenceContext:
    """Everything the evidence rules read, loaded once per assessment view."""

    def __init__(self, *, session: Session, settings: Settings, version: ModelVersion) -> None:
        self.session, self.settings, self.version = session, settings, version
        self.run_row = session.get(TrainingRun, version.run_id)
        self.run = runs.get_run(session=session, run_id=version.run_id)
        self.data = session.get(DatasetVersion, self.run_row.dataset_version_id)
        self.project = session.get(Project, self.run_row.project_id)
        self.card = model_card.card_document(session=session, run_id=version.run_id)
        try:
            self.explanation = runs.get_explanation(session=session, run_id=version.run_id)
        except NotFound:
            self.explanation = None
        self.certificate = runs.latest_certificate(session=session, run_id=version.run_id)
        self.assessment = session.exec(select(Assessment).where(Assessment.version_id == version.id)).first()
        self._frame: pd.DataFrame | None = None
        self._test: pd.DataFrame | None = None

    @property
    def evaluation(self) -> dict[str, Any]:
        return self.run.evaluation or {}

    @property
    def features(self) -> list[str]:
        excluded = set(self.run.config.get("excluded") or [])
        return [c for c, kind in self.run.feature_types.items() if c not in excluded and kind not in ("identifier",
                                                                                                        "ignore")]

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = datasets.load_frame(settings=self.settings,
                                              version=datasets.get_version(session=self.session,
                                                                           version_id=self.data.id))
        return self._frame

    @property
    def test(self) -> pd.DataFrame:
        if self._test is None:
            self._test = runs.load_test_set(settings=self.settings, run=self.run)
        return self._test

    def subgroups(self) -> list[dict[str, Any]]:
        return [g for g in self.evaluation.get("subgroups") or [] if g.get("value") is not None]

    def metric(self, name: str) -> dict[str, Any]:
        return (self.evaluation.get("metrics") or {}).get(name) or {}

    def user_name(self, user_id: int | None) -> str:
        user = self.session.get(User, user_id) if user_id else None
        return (user.display_name or user.username) if user else "–"


Rule = Callable[[EvidenceContext], Evidence]
RULES: dict[str, Rule] = {}


def rule(code: str) -> Callable[[Rule], Rule]:
    def register(function: Rule) -> Rule:
        RULES[code] = function
        return function
    return register


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _beats_baseline(ctx: EvidenceContext) -> tuple[bool, float, float]:
    name = ctx.run.primary_metric
    model, base = ctx.metric(name).get("value"), (ctx.run.baseline or {}).get(name)
    if model is None or base is None:
        return False, model, base
    greater = GREATER_IS_BETTER.get(name, True)
    gain = (model - base) if greater else (base - model)
    return gain >= ctx.settings.baseline_margin, model, base


@rule("RP-01")
def _value(ctx: EvidenceContext) -> Evidence:
    beats, model, base = _beats_baseline(ctx)
    facts = {"Problem": ctx.project.description or "–", "Target": ctx.run.target,
             "Metric": metric_label(ctx.run.primary_metric), "Model": _fmt(model), "Dummy baseline": _fmt(base)}
    if beats:
        return Evidence("pass", f"The model beats the dummy baseline by at least {ctx.settings.baseline_margin}.",
                        facts)
    return Evidence("warn", "The model does not beat the dummy baseline by the configured margin.", facts)


def _card_fields(ctx: EvidenceContext, keys: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    labels = {f.key: f.label for f in model_card.FIELDS}
    facts = {labels[k]: (ctx.card.content.get(k) or "–")[:200] for k in keys}
    return facts, [labels[k] for k in keys if not ctx.card.content.get(k)]


@rule("RP-02")
def _intended_use(ctx: EvidenceContext) -> Evidence:
    facts, missing = _card_fields(ctx, ("primary_uses", "primary_users", "out_of_scope"))
    facts["Card completeness"] = f"{ctx.card.completeness.percent}%"
    if missing:
        return Evidence("fail", f"The model card does not yet say: {', '.join(missing)}.", facts)
    return Evidence("pass", "Intended uses, users and out-of-scope uses are written down.", facts)


@rule("RP-03")
def _human_in_loop(ctx: EvidenceContext) -> Evidence:
    facts = {"Decision threshold": _fmt(ctx.run.decision_threshold),
             "Coding threshold (below it: manual)": _fmt(ctx.run.coding_threshold)}
    if ctx.run.coding_threshold is not None and "__proba__" in "".join(ctx.test.columns):
        confidence = ctx.test.filter(like="__proba__").max(axis=1)
        facts["Share of test records routed to manual review"] = f"{(confidence < ctx.run.coding_threshold).mean():.1%}"
    return Evidence("info", "How outputs are used and where people stay in the loop is for the builder to "
                            "describe.", facts)


@rule("RP-04")
def _harms(ctx: EvidenceContext) -> Evidence:
    risks = ctx.card.content.get(model_card.RISKS_KEY) or []
    table = [{"Risk": r["name"], "Mitigation": r["mitigation"] or "–"} for r in risks]
    if not any(r["name"] and r["mitigation"] for r in risks):
        return Evidence("fail", "No risk with a mitigation is recorded on the model card.", {}, table or None)
    return Evidence("pass", f"{len(risks)} risk(s) recorded on the model card.", {}, table)


def _codes(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 10:
        values = pd.qcut(values.rank(method="first"), 10, labels=False)
    return pd.factorize(values.astype("string").fillna("(missing)"))[0]


@rule("RP-05")
def _sensitive(ctx: EvidenceContext) -> Evidence:
    sensitive = list(ctx.data.sensitive_columns)
    if not sensitive:
        return Evidence("warn", "No column is tagged as sensitive. Tag them on the Data page when the data has "
                                "any (sex, age group, region, language, …).", {})
    used = [c for c in sensitive if c in ctx.features]
    sample = ctx.frame.sample(min(SAMPLE_ROWS, len(ctx.frame)), random_state=0) if len(ctx.frame) else ctx.frame
    table = []
    for column in sensitive:
        if column not in sample:
            continue
        target = _codes(sample[column])
        for feature in ctx.features:
            if feature == column or ctx.run.feature_types.get(feature) == "text":
                continue
            score = float(normalized_mutual_info_score(target, _codes(sample[feature])))
            table.append({"Sensitive column": column, "Feature": feature, "Mutual information": round(score, 3)})
    table.sort(key=lambda row: -row["Mutual information"])
    proxies = [row for row in table if row["Mutual information"] > ctx.settings.proxy_nmi_threshold]
    facts = {"Sensitive columns": ", ".join(sensitive), "Used as features": ", ".join(used) or "none",
             "Proxy threshold (normalised mutual information)": _fmt(ctx.settings.proxy_nmi_threshold)}
    if used or proxies:
        reasons = ([f"{', '.join(used)} {'is a feature' if len(used) == 1 else 'are features'}"] if used else []) + (
            [f"{', '.join(r['Feature'] for r in proxies)} closely tracks a sensitive column"] if proxies else [])
        return Evidence("warn", "; ".join(reasons) + ". Justify why this is acceptable.", facts, table[:10])
    return Evidence("pass", "No sensitive column is a feature and no feature closely tracks one.", facts, table[:10])


@rule("RP-06")
def _group_gaps(ctx: EvidenceContext) -> Evidence:
    groups = ctx.subgroups()
    if not groups:
        return Evidence("not_applicable" if not ctx.data.sensitive_columns else "warn",
                        "No subgroup figures: no sensitive column is tagged." if not ctx.data.sensitive_columns
                        else "No subgroup figures were computed.", {})
    reliable = [g for g in groups if not g.get("small")]
    worst = max(reliable, key=lambda g: abs(g.get("gap") or 0), default=None)
    tolerance = ctx.settings.subgroup_gap_tolerance
    facts = {"Metric": metric_label(groups[0]["metric"]), "Tolerance": _fmt(tolerance),
             "Largest gap": f"{_fmt(abs(worst['gap']))} ({worst['column']} = {worst['group']})" if worst else "–"}
    chart = {"kind": "subgroups", "rows": groups}
    if worst is not None and abs(worst.get("gap") or 0) > tolerance:
        return Evidence("warn", f"The group {worst['column']} = {worst['group']} differs from the overall figure "
                                f"by more than {tolerance}.", facts, chart=chart)
    return Evidence("pass", "Every group with enough rows is within the tolerance of the overall figure.", facts,
                    chart=chart)


@rule("RP-07")
def _representation(ctx: EvidenceContext) -> Evidence:
    sensitive = [c for c in ctx.data.sensitive_columns if c in ctx.frame]
    if not sensitive:
        return Evidence("not_applicable", "No sensitive column is tagged, so no group counts to show.", {})
    table, small = [], []
    for column in sensitive:
        whole = ctx.frame[column].astype("string").fillna("(missing)").value_counts()
        test = ctx.test[column].astype("string").fillna("(missing)").value_counts() if column in ctx.test else {}
        for group, count in whole.items():
            table.append({"Column": column, "Group": group, "Rows": int(count),
                          "Share": f"{count / len(ctx.frame):.1%}", "Test rows": int(test.get(group, 0))})
            if count < ctx.settings.min_group_rows:
                small.append(f"{column} = {group}")
    chart = {"kind": "bars", "rows": [{"label": f"{r['Column']} = {r['Group']}", "value": r["Rows"]} for r in table],
             "title": "Rows per group"}
    if small:
        return Evidence("warn", f"Fewer than {ctx.settings.min_group_rows} rows for {', '.join(small[:5])}.", {},
                        table, chart)
    return Evidence("pass", f"Every group has at least {ctx.settings.min_group_rows} rows.", {}, table, chart)


def _rounds(ctx: EvidenceContext) -> list[ReviewRound]:
    if ctx.assessment is None:
        return []
    return list(ctx.session.exec(select(ReviewRound).where(ReviewRound.assessment_id == ctx.assessment.id)
                                 .order_by(ReviewRound.number)))


@rule("RP-08")
def _accountability(ctx: EvidenceContext) -> Evidence:
    rounds = _rounds(ctx)
    decided = [r for r in rounds if r.decided_by_id]
    reviewers = {r.decided_by_id for r in decided}
    facts = {"Model owner": ctx.user_name(ctx.project.owner_id), "Developer": ctx.run.created_by_name,
             "Owner and contact (card)": ctx.card.content.get("owner_contact") or "–",
             "Reviewers": ", ".join(ctx.user_name(i) for i in reviewers) or "not yet reviewed"}
    if ctx.run.created_by_id in reviewers:
        return Evidence("fail", "The developer reviewed their own model.", facts)
    if not decided:
        return Evidence("info", "The reviewer is recorded when the review is decided; Steward never lets the "
                                "developer review their own model.", facts)
    return Evidence("pass", "Developer and reviewer are different people.", facts)


@rule("RD-01")
def _legal_basis(ctx: EvidenceContext) -> Evidence:
    meta = ctx.data.meta or {}
    facts = {"Source": meta.get("source") or "–", "Legal basis": meta.get("legal_basis") or "–",
             "Data owner": meta.get("owner") or "–"}
    if not meta.get("legal_basis"):
        return Evidence("fail", "The dataset version has no legal basis recorded. Add it when uploading the data.",
                        facts)
    return Evidence("pass", "The legal basis for using the data is recorded.", facts)


@rule("RD-02")
def _minimisation(ctx: EvidenceContext) -> Evidence:
    facts = {"Columns in the data": str(ctx.data.columns), "Used as features": str(len(ctx.features))}
    table = None
    if ctx.explanation is not None:
        overall = ctx.explanation.result.get("overall") or {}
        total = sum(overall.values()) or 1.0
        weak = [name for name, value in overall.items() if value / total < 0.01]
        facts["Features with almost no influence (< 1% of mean |SHAP|)"] = ", ".join(weak) or "none"
        table = [{"Feature": name, "Share of influence": f"{value / total:.1%}"} for name, value in overall.items()]
    return Evidence("info", "Columns that barely influence the model are candidates for removal.", facts, table)


def _identifier_columns(ctx: EvidenceContext) -> list[dict[str, str]]:
    found = []
    for name, column in ((ctx.data.profile or {}).get("columns_profile") or {}).items():
        reasons = []
        if column.get("type") == "identifier":
            reasons.append("typed as identifier")
        if IDENTIFIER_NAME.search(name):
            reasons.append("name suggests an identifier")
        present = column.get("count") or 0
        if present >= 20 and column.get("type") == "categorical" and column.get("distinct", 0) > 0.5 * present:
            reasons.append("categories almost unique per row")
        if present >= 20 and column.get("distinct") == present and column.get("type") == "categorical":
            reasons.append("unique per row")
        if reasons:
            found.append({"Column": name, "Why flagged": "; ".join(reasons),
                          "Feature": "yes" if name in ctx.features else "no"})
    return found


@rule("RD-03")
def _identifiers(ctx: EvidenceContext) -> Evidence:
    flagged = _identifier_columns(ctx)
    used = [row["Column"] for row in flagged if row["Feature"] == "yes"]
    if used:
        return Evidence("fail", f"Flagged identifier(s) used as features: {', '.join(used)}. Exclude them and "
                                "train again.", {}, flagged)
    if flagged:
        return Evidence("pass", "Flagged identifiers are kept out of the features.", {}, flagged)
    return Evidence("pass", "No column looks like a direct identifier.", {})


@rule("RD-04")
def _storage(ctx: EvidenceContext) -> Evidence:
    url = ctx.settings.resolved_database_url
    roles = ctx.session.exec(select(UserRole.role)).all()
    counts = {role: roles.count(role) for role in sorted(set(roles))}
    retention = ctx.card.content.get("retention_until") or ""
    facts = {"Store": url.split(":", 1)[0], "Artifacts": str(ctx.settings.artifacts_path),
             "Users per role": ", ".join(f"{k}: {v}" for k, v in counts.items()),
             "Keep until (card)": retention or "–"}
    if not retention:
        return Evidence("warn", "No retention date on the model card.", facts)
    try:
        date.fromisoformat(retention)
    except ValueError:
        return Evidence("warn", "The retention date on the model card is not a date (YYYY-MM-DD).", facts)
    return Evidence("pass", "Access is role-based and audited; a retention date is set.", facts)


@rule("RD-05")
def _disclosure(ctx: EvidenceContext) -> Evidence:
    k = ctx.settings.min_cell_size
    cells = [g for g in ctx.evaluation.get("subgroups") or [] if g.get("count", 0) < k]
    unsuppressed = [g for g in cells if not g.get("small")]
    facts = {"Minimum cell size": str(k), "Group cells below it": str(len(cells)),
             "Record-level explanations in exports": "only on request, one record at a time, audited"}
    if unsuppressed:
        return Evidence("fail", f"{len(unsuppressed)} group cell(s) below {k} rows would be shown.", facts)
    return Evidence("pass", "Group tables suppress cells with too few rows; no raw rows are exported.", facts)


@rule("RD-06")
def _traceable(ctx: EvidenceContext) -> Evidence:
    facts = {"Dataset": f"{ctx.run.dataset_name} v{ctx.run.dataset_number}", "SHA-256": ctx.data.sha256,
             "Rows × columns": f"{ctx.data.rows} × {ctx.data.columns}", "Source file": ctx.data.source_filename,
             "Uploaded": f"{ctx.data.created_at:%Y-%m-%d %H:%M} by {ctx.user_name(ctx.data.created_by_id)}"}
    if ctx.data.sha256 and ctx.data.schema_:
        return Evidence("pass", "The dataset version's hash and schema are recorded.", facts)
    return Evidence("fail", "The dataset version lacks a hash or schema.", facts)


@rule("SM-01")
def _data_quality(ctx: EvidenceContext) -> Evidence:
    profile = ctx.data.profile or {}
    columns = profile.get("columns_profile") or {}
    missing = {name: c.get("missing_share") or 0.0 for name, c in columns.items()}
    worst = sorted(missing.items(), key=lambda item: -item[1])[:10]
    duplicates = profile.get("duplicate_rows") or 0
    table = [{"Column": name, "Missing": f"{share:.1%}"} for name, share in worst if share > 0]
    facts = {"Duplicate rows": str(duplicates),
             "Missing share threshold": f"{ctx.settings.missing_share_threshold:.0%}"}
    high = [name for name, share in missing.items() if share > ctx.settings.missing_share_threshold]
    if high or duplicates:
        parts = ([f"{', '.join(high)} mostly missing"] if high else []) + (
            [f"{duplicates} duplicate rows"] if duplicates else [])
        return Evidence("warn", "; ".join(parts) + ".", facts, table or None)
    return Evidence("pass", "No column is often missing and no row is duplicated.", facts, table or None)


@rule("SM-02")
def _labels(ctx: EvidenceContext) -> Evidence:
    labelling = ctx.card.content.get("labelling") or ""
    facts = {"Labelling (card)": labelling[:200] or "–"}
    chart = None
    column = (ctx.data.profile or {}).get("columns_profile", {}).get(ctx.run.target) or {}
    top = column.get("top") or column.get("categories")
    if isinstance(top, list) and top and isinstance(top[0], dict):
        chart = {"kind": "bars", "rows": [{"label": str(t.get("value")), "value": t.get("count")} for t in top],
                 "title": f"Values of {ctx.run.target}"}
    if not labelling:
        return Evidence("warn", "The model card does not say how the target values were produced.", facts,
                        chart=chart)
    return Evidence("pass", "How the labels were produced is described.", facts, chart=chart)


@rule("SM-03")
def _coverage(ctx: EvidenceContext) -> Evidence:
    from core import monitoring

    report = monitoring.latest_report(session=ctx.session, version_id=ctx.version.id)
    if report is None:
        return Evidence("not_applicable", "No batch has been scored with this model yet, so there is nothing to "
                                          "compare with the training data. Drift is checked once batches are "
                                          "scored.", {})
    threshold = report.drift_share_threshold
    facts = {"Newest batch": report.label, "Method": report.method, "Drift share threshold": f"{threshold:.0%}"}
    table = [{"Column": c["column"], "Method": c.get("method_name") or "–", "Score": _fmt(c.get("score")),
              "Threshold": _fmt(c.get("threshold")), "Verdict": c["verdict"]} for c in report.columns]
    if not report.judged:
        return Evidence("info", f"The newest batch has {report.rows:,} rows, too few to judge drift; its scores are "
                                "shown for information.", facts, table or None)
    facts["Drifted columns"] = f"{report.drifted_columns} of {len(report.columns)} ({report.drift_share:.0%})"
    if report.drift_share >= threshold:
        return Evidence("warn", f"{report.drift_share:.0%} of the input columns of the newest batch drifted from the "
                                f"training data (threshold {threshold:.0%}): the data the model is applied to no "
                                "longer looks like the data it learnt from.", facts, table)
    return Evidence("pass", f"{report.drift_share:.0%} of the input columns of the newest batch drifted from the "
                            f"training data, below the threshold of {threshold:.0%}.", facts, table)


@rule("SM-04")
def _balance(ctx: EvidenceContext) -> Evidence:
    if ctx.run.task == "regression":
        return Evidence("not_applicable", "A regression target has no classes.", {})
    counts = ctx.frame[ctx.run.target].astype("string").value_counts()
    ratio = float(counts.max() / counts.min()) if len(counts) and counts.min() else float("inf")
    facts = {"Classes": str(len(counts)), "Imbalance (largest / smallest)": _fmt(ratio),
             "Split": "stratified by class" if ctx.run.config.get("cv", "stratified") == "stratified" else
             ctx.run.config.get("cv", "")}
    chart = {"kind": "bars", "rows": [{"label": str(k), "value": int(v)} for k, v in counts.items()],
             "title": "Rows per class"}
    if ratio > 10:
        return Evidence("warn", "The classes are very unbalanced; check that the metric and threshold handle it.",
                        facts, chart=chart)
    return Evidence("pass", "The classes are reasonably balanced and the split keeps their shares.", facts,
                    chart=chart)


@rule("SM-05")
def _leakage(ctx: EvidenceContext) -> Evidence:
    columns = [c for c in ctx.features + [ctx.run.target] if c in ctx.frame]
    frame, test = ctx.frame, ctx.test
    known = frame.index[frame[ctx.run.target].notna()]
    # The test set keeps the dataset's row labels, so both sides are read from the same typed frame.
    train_rows = frame.loc[known.difference(test.index), columns]
    test_rows = frame.loc[test.index.intersection(frame.index), columns]
    train_hashes = set(pd.util.hash_pandas_object(train_rows, index=False).to_numpy())
    overlap = int(np.isin(pd.util.hash_pandas_object(test_rows, index=False).to_numpy(), list(train_hashes)).sum())
    leaks = [w for w in ctx.run.warnings if "predict" in str(w).lower() and "almost" in str(w).lower()]
    facts = {"Split": ctx.run.config.get("cv", "stratified"), "Seed": str(ctx.run.seed),
             "Training rows": str(len(train_rows)), "Test rows": str(len(test_rows)),
             "Test rows identical to a training row": str(overlap), "Leakage warnings": str(len(leaks))}
    if overlap:
        return Evidence("fail", f"{overlap} test row(s) also appear in the training data, so the test figures "
                                "are optimistic. Remove duplicate rows and train again.", facts)
    if leaks:
        return Evidence("warn", "A column predicts the target almost perfectly: " + "; ".join(leaks), facts)
    return Evidence("pass", "Test rows never appear in the training data.", facts)


@rule("SM-06")
def _alternatives(ctx: EvidenceContext) -> Evidence:
    table = [{"Candidate": row.get("description") or row.get("candidate"), "CV mean": _fmt(row.get("mean")),
              "CV std": _fmt(row.get("std")), "Chosen": "yes" if row.get("candidate") == ctx.run.chosen_candidate
              else ""} for row in ctx.run.leaderboard]
    facts = {"Dummy baseline": _fmt((ctx.run.baseline or {}).get(ctx.run.primary_metric))}
    if len(table) < 2:
        return Evidence("warn", "Only one algorithm was tried; a larger time budget compares more.", facts, table)
    return Evidence("pass", f"{len(table)} candidates were compared by cross-validation.", facts, table)


@rule("SM-07")
def _metric_choice(ctx: EvidenceContext) -> Evidence:
    facts = {"Primary metric": metric_label(ctx.run.primary_metric),
             "Also reported": ", ".join(metric_label(m) for m in (ctx.evaluation.get("metrics") or {})
                                        if m != ctx.run.primary_metric),
             "Diagnostics": ", ".join((ctx.evaluation.get("diagnostics") or {}).keys())}
    return Evidence("info", "Whether these metrics fit the intended use is for the builder to argue.", facts)


@rule("SM-08")
def _uncertainty(ctx: EvidenceContext) -> Evidence:
    primary = ctx.metric(ctx.run.primary_metric)
    width = (primary["high"] - primary["low"]) if primary.get("high") is not None and primary.get("low") is not None \
        else None
    chosen = next((r for r in ctx.run.leaderboard if r.get("candidate") == ctx.run.chosen_candidate), {})
    facts = {"Metric": metric_label(ctx.run.primary_metric), "Value": _fmt(primary.get("value")),
             "95% interval": f"{_fmt(primary.get('low'))} – {_fmt(primary.get('high'))}",
             "CV standard deviation": _fmt(chosen.get("std")), "Tolerated width": _fmt(ctx.settings.ci_width_tolerance)}
    if width is None:
        return Evidence("warn", "No confidence interval is available for the primary metric.", facts)
    scale = 1.0 if ctx.run.task != "regression" else max(abs(primary.get("value") or 0), 1e-9)
    if width / scale > ctx.settings.ci_width_tolerance:
        return Evidence("warn", "The 95% interval is wide: more test data would make the figure more certain.",
                        facts)
    return Evidence("pass", "The 95% interval of the primary metric is narrow enough.", facts)


@rule("SM-09")
def _aggregate_bias(ctx: EvidenceContext) -> Evidence:
    test = ctx.test
    if "__predicted__" not in test:
        return Evidence("not_applicable", "The test set has no stored predictions.", {})
    if ctx.run.task == "regression":
        true, predicted = test["__target__"].astype(float).mean(), test["__predicted__"].astype(float).mean()
        bias = (predicted - true) / true if true else float("nan")
        facts = {"Mean of true values": _fmt(true), "Mean of predictions": _fmt(predicted),
                 "Relative bias": f"{bias:.1%}"}
        status = "warn" if abs(bias) > ctx.settings.subgroup_gap_tolerance else "pass"
        return Evidence(status, "The mean of predictions matches the true mean." if status == "pass" else
                        "Predictions would shift the published mean.", facts)
    true = test["__target__"].astype("string").value_counts()
    predicted = test["__predicted__"].astype("string").value_counts()
    table = [{"Class": label, "True total": int(true.get(label, 0)), "Predicted total": int(predicted.get(label, 0))}
             for label in sorted(set(true.index) | set(predicted.index))]
    for row in table:
        t, p = row["True total"], row["Predicted total"]
        row["Relative bias"] = f"{(p - t) / t:.1%}" if t else "–"
    biased = [r["Class"] for r in table if r["True total"] and
              abs(r["Predicted total"] - r["True total"]) / r["True total"] > ctx.settings.subgroup_gap_tolerance]
    if biased:
        return Evidence("warn", f"Predicted totals differ from the true totals by more than "
                                f"{ctx.settings.subgroup_gap_tolerance:.0%} for {', '.join(biased[:5])}.", {}, table)
    return Evidence("pass", "Predicted class totals are close to the true totals.", {}, table)


@rule("SM-10")
def _drivers(ctx: EvidenceContext) -> Evidence:
    if ctx.explanation is None:
        return Evidence("warn", "The model has no explanation yet.", {})
    overlap = ctx.explanation.stability.get("mean_overlap")
    overall = ctx.explanation.result.get("overall") or {}
    facts = {"Top features": ", ".join(list(overall)[:5]), "Top-feature overlap across folds": _fmt(overlap)}
    chart = {"kind": "importance", "overall": dict(list(overall.items())[:10]), "scale": ctx.explanation.scale}
    if overlap is not None and overlap < 0.6:
        return Evidence("warn", "The most important features change between folds: read them with care.", facts,
                        chart=chart)
    return Evidence("pass", "The main drivers are stable across folds.", facts, chart=chart)


@rule("SM-11")
def _local_explanations(ctx: EvidenceContext) -> Evidence:
    if ctx.explanation is None:
        return Evidence("fail", "The model has no explanation, so single predictions cannot be explained.", {})
    facts = {"Method": ctx.explanation.method, "Records explained": str(ctx.explanation.rows_explained),
             "Largest additivity error": _fmt(ctx.explanation.additivity_max_error)}
    if not ctx.explanation.additive:
        return Evidence("fail", "The explanations do not add up to the model's output.", facts)
    return Evidence("pass", "Any single prediction can be explained on the Explanations page; contributions add "
                            "up to the model's output.", facts)


@rule("SM-12")
def _limitations(ctx: EvidenceContext) -> Evidence:
    worst = sorted([g for g in ctx.subgroups() if not g.get("small")], key=lambda g: -(g.get("gap") or 0))[:5]
    table = [{"Column": g["column"], "Group": g["group"], "Rows": g["count"], "Value": _fmt(g["value"]),
              "Gap to overall": _fmt(g.get("gap"))} for g in worst]
    limitations = ctx.card.content.get("limitations") or ""
    facts = {"Limitations (card)": limitations[:200] or "–"}
    if not limitations:
        return Evidence("fail", "The model card has no known limitations written down.", facts, table or None)
    return Evidence("pass", "Known limitations are written down.", facts, table or None)


@rule("SA-01")
def _reproducible(ctx: EvidenceContext) -> Evidence:
    certificate = ctx.certificate
    facts = {"Dataset SHA-256": ctx.data.sha256[:16] + "…", "Code version": ctx.run.code_version or "–",
             "Python": str((ctx.run.environment or {}).get("python")), "Seed": str(ctx.run.seed),
             "Prediction hash": (ctx.run.prediction_hash or "–")[:16] + "…"}
    if certificate is None or certificate.status == "running":
        return Evidence("warn", "The run has not been reproduced yet. Use “Reproduce” on the Model results page.",
                        facts)
    facts["Reproduced"] = f"{certificate.status} on {(certificate.finished_at or certificate.created_at):%Y-%m-%d}"
    if certificate.status != "passed":
        return Evidence("fail", "Re-running the training gave different predictions.", facts)
    return Evidence("pass", "Re-running the training gave identical predictions.", facts)


@rule("SA-02")
def _lineage(ctx: EvidenceContext) -> Evidence:
    parent = ctx.session.get(ModelVersion, ctx.version.parent_id) if ctx.version.parent_id else None
    facts = {"Model version": str(ctx.version.number), "Status": ctx.version.status,
             "Dataset version": f"{ctx.run.dataset_name} v{ctx.run.dataset_number}",
             "Code version": ctx.run.code_version or "", "Configuration": json.dumps(ctx.run.config, sort_keys=True),
             "Previous version": f"v{parent.number}" if parent else "none (first version)",
             "Registered": f"{ctx.version.created_at:%Y-%m-%d} by {ctx.user_name(ctx.version.created_by_id)}"}
    missing = [k for k in ("Code version",) if not facts[k]] + ([] if ctx.run.model_sha256 else ["model hash"])
    if missing:
        return Evidence("fail", f"Lineage is missing: {', '.join(missing)}.", facts)
    return Evidence("pass", "The version is linked to its data, code, configuration and predecessor.", facts)


@rule("SA-03")
def _card_complete(ctx: EvidenceContext) -> Evidence:
    completeness = ctx.card.completeness
    facts = {"Completeness": f"{completeness.percent}%", "Missing": ", ".join(completeness.missing) or "nothing"}
    try:
        errors = model_card.validate_mct(model_card.to_mct(ctx.card), ctx.settings.model_card_schema)
    except InvalidInput as error:
        facts["Schema validation"] = str(error)
        return Evidence("warn", "The card's JSON export could not be validated: no schema file configured.", facts)
    facts["Schema validation"] = "valid" if not errors else f"{len(errors)} error(s)"
    if errors:
        return Evidence("fail", "The card's JSON export does not validate against the Model Card Toolkit schema.",
                        facts, [{"Error": e} for e in errors[:10]])
    if not completeness.complete:
        return Evidence("warn", "The card validates but is not complete yet.", facts)
    return Evidence("pass", "The card is complete and its export validates.", facts)


@rule("SA-04")
def _gates(ctx: EvidenceContext) -> Evidence:
    beats, model, base = _beats_baseline(ctx)
    groups = [g for g in ctx.subgroups() if not g.get("small")]
    worst_gap = max((abs(g.get("gap") or 0) for g in groups), default=0.0)
    certificate = ctx.certificate.status if ctx.certificate else "not run"
    table = [
        {"Gate": "Data matches its schema", "Result": "pass", "Detail": f"dataset {ctx.data.sha256[:12]}…"},
        {"Gate": "Beats the dummy baseline", "Result": "pass" if beats else "fail",
         "Detail": f"{_fmt(model)} vs {_fmt(base)}"},
        {"Gate": "No subgroup much worse", "Result": "pass" if worst_gap <= ctx.settings.subgroup_gap_tolerance
         else "fail", "Detail": f"largest gap {_fmt(worst_gap)}"},
        {"Gate": "Reproduced exactly", "Result": "pass" if certificate == "passed" else "fail", "Detail": certificate},
    ]
    failed = [row["Gate"] for row in table if row["Result"] == "fail"]
    if failed:
        return Evidence("fail", f"Gates not passed yet: {', '.join(failed)}. The registry shows them again at "
                                "promotion, with any override.", {}, table)
    return Evidence("pass", "Every automatic validation gate passes.", {}, table)


@rule("SA-05")
def _approval(ctx: EvidenceContext) -> Evidence:
    decided = [r for r in _rounds(ctx) if r.decided_by_id]
    if not decided:
        return Evidence("info", "No review decision yet. Steward refuses approval by the developer.", {})
    last = decided[-1]
    facts = {"Decision": last.decision, "Reviewer": ctx.user_name(last.decided_by_id),
             "Date": f"{last.decided_at:%Y-%m-%d}", "Conditions": last.conditions or "–"}
    if last.decided_by_id == ctx.run.created_by_id:
        return Evidence("fail", "The developer approved their own model.", facts)
    return Evidence("pass", "The decision was taken by someone other than the developer.", facts)


@rule("SA-06")
def _monitoring_plan(ctx: EvidenceContext) -> Evidence:
    from core import alerts, mail
    from core.models import MonitoringReport

    rules = alerts.list_rules(session=ctx.session, model_id=ctx.version.model_id, active_only=True)
    in_production = ctx.version.status == "production"
    if not rules:
        return Evidence("fail" if in_production else "warn",
                        "No alert rule watches this model. Default rules are added when it is first promoted; "
                        "add or change them on the Alerts page.", {})
    people = ctx.session.exec(select(User).where(User.id.in_(alerts.audience(session=ctx.session,
                                                                             model_id=ctx.version.model_id))))
    reports = ctx.session.exec(select(MonitoringReport.id).where(MonitoringReport.version_id == ctx.version.id)).all()
    emailed = any("email" in r.channels for r in rules)
    facts = {"Active rules": str(len(rules)), "Alerted in the app": ", ".join(sorted(
        p.display_name or p.username for p in people)) or "–",
        "E-mail": ("through the SMTP server" if mail.get_smtp(session=ctx.session).configured else
                   "no SMTP server set up yet") if emailed else "not used",
        "Frequency": "every scored batch (labels add performance)", "Monitoring reports so far": str(len(reports))}
    table = [{"Watches": r.description, "Severity": alerts.SEVERITIES[r.severity],
              "Channels": ", ".join(alerts.CHANNELS[c] for c in r.channels),
              "Recipients": ", ".join(r.recipients) or ("the model's people" if "email" in r.channels else "–"),
              "Starts retraining": "yes" if r.triggers_retraining else "no"} for r in rules]
    covered = {r.metric for r in rules}
    missing = [what for what, metrics in (("data drift", {"drift_share", "column_drift"}),
                                          ("performance", {"performance"})) if not covered & metrics]
    if missing:
        return Evidence("warn", f"The alert rules do not watch {' or '.join(missing)}.", facts, table)
    return Evidence("pass", "Alert rules watch data drift and performance of every scored batch.", facts, table)


@rule("SA-07")
def _retraining(ctx: EvidenceContext) -> Evidence:
    from core import pipelines

    config = pipelines.get_config(session=ctx.session, model_id=ctx.version.model_id)
    triggers = pipelines.retraining_triggers(session=ctx.session, model_id=ctx.version.model_id)
    history = pipelines.list_runs(session=ctx.session, model_id=ctx.version.model_id, limit=10)
    facts = {"Automatic triggers": "; ".join(triggers) or "none (started by hand only)",
             "Next scheduled run": f"{config.next_run_at:%Y-%m-%d %H:%M} UTC" if config.next_run_at else "–",
             "Automatic promotion": f"on (allowed by {config.auto_promote_by_name})" if config.auto_promote
             else "off: retrained versions wait for review and a manager"}
    table = [{"Run": r.id, "Started": f"{r.created_at:%Y-%m-%d %H:%M}", "Trigger": r.trigger_label,
              "Status": pipelines.STATUSES.get(r.status, r.status), "Outcome": r.outcome[:200]} for r in history]
    summary = (f"Retraining starts on {'; '.join(triggers)}." if triggers else
               "No automatic retraining trigger is set; the pipeline runs only when started by hand.")
    if history:
        summary += f" {len(history)} pipeline run{'s' * (len(history) != 1)} so far (newest first below)."
    return Evidence("info", summary, facts, table or None)


@rule("SA-08")
def _rollback(ctx: EvidenceContext) -> Evidence:
    parent = ctx.session.get(ModelVersion, ctx.version.parent_id) if ctx.version.parent_id else None
    if parent is None:
        return Evidence("warn", "There is no previous version to fall back to.", {})
    return Evidence("pass", f"Version {parent.number} can be restored from the registry in one step.",
                    {"Previous version": f"v{parent.number} ({parent.status})"})


@rule("SA-09")
def _users_informed(ctx: EvidenceContext) -> Evidence:
    primary = ctx.metric(ctx.run.primary_metric)
    facts = {"Headline metric": f"{metric_label(ctx.run.primary_metric)} {_fmt(primary.get('value'))} "
                                f"({_fmt(primary.get('low'))} – {_fmt(primary.get('high'))})"}
    return Evidence("info", "The quality report for users of the statistics carries the method note and these "
                            "figures.", facts)


@rule("SA-10")
def _cost(ctx: EvidenceContext) -> Evidence:
    facts = {}
    if ctx.run.started_at and ctx.run.finished_at:
        seconds = (ctx.run.finished_at - ctx.run.started_at).total_seconds()
        facts = {"Training time": f"{seconds:.0f} s", "Rows": str(ctx.data.rows),
                 "Rows per second": f"{ctx.data.rows / max(seconds, 1e-9):,.0f}"}
    return Evidence("info", "Compare these costs with the previous process.", facts)


@rule("GV-01")
def _answered(ctx: EvidenceContext) -> Evidence:
    items = _items(ctx.session, ctx.assessment.id) if ctx.assessment else []
    template = load_template()
    open_codes = [i.code for i in items if not _is_answered(i) and template.item(i.code).required]
    facts = {"Answered": f"{sum(_is_answered(i) for i in items)} of {len(template.items)}"}
    if open_codes:
        return Evidence("fail", f"{len(open_codes)} required item(s) unanswered.", facts)
    return Evidence("pass", "Every required item has an answer and a justification.", facts)


@rule("GV-02")
def _peer_reviewed(ctx: EvidenceContext) -> Evidence:
    rounds = _rounds(ctx)
    if not rounds:
        return Evidence("info", "Not submitted for review yet.", {})
    last = rounds[-1]
    facts = {"Round": str(last.number), "Decision": last.decision or "pending",
             "Reviewer": ctx.user_name(last.decided_by_id)}
    return Evidence("pass" if last.decision else "info", "The reviewer's verdicts are shown per item.", facts)


@rule("GV-03")
def _reassessment(ctx: EvidenceContext) -> Evidence:
    due = ctx.assessment.reassess_by if ctx.assessment else None
    facts = {"Reassess by": f"{due:%Y-%m-%d}" if due else "set at approval"}
    if due and due < date.today():
        return Evidence("warn", "The reassessment date has passed.", facts)
    return Evidence("info" if not due else "pass", "A new model version or a persistent drift alert re-opens the "
                                                   "assessment.", facts)


def collect_evidence(ctx: EvidenceContext) -> dict[str, Evidence]:
    """Evidence for every template item; an item without a rule says so rather than guessing."""
    found = {}
    for item in load_template().items:
        function = RULES.get(item.code)
        found[item.code] = function(ctx) if function else Evidence("info", "No automatic evidence for this item.")
    return found


# ── assessments and answers ────────────────────────────────────────────────────────────────────────


@dataclass
class ItemState:
    code: str
    answer: str
    justification: str
    revision: int
    updated_by_name: str | None
    updated_at: Any


@dataclass
class AssessmentView:
    id: int
    version_id: int
    template_id: str
    template_version: str
    status: str
    rounds: int
    reassess_by: date | None
    reopened_reason: str
    items: dict[str, ItemState]

    @property
    def editable(self) -> bool:
        return self.status in EDITABLE

    def unanswered(self) -> list[str]:
        template = load_template()
        return [code for code, state in self.items.items()
                if template.item(code).required and not (state.answer and state.justification.strip())]


def _is_answered(item: AssessmentItem) -> bool:
    return bool(item.answer) and bool(item.justification.strip())


def _items(session: Session, assessment_id: int) -> list[AssessmentItem]:
    return list(session.exec(select(AssessmentItem).where(AssessmentItem.assessment_id == assessment_id)
                             .order_by(AssessmentItem.id)))


def _view(session: Session, assessment: Assessment) -> AssessmentView:
    def name(user_id):
        user = session.get(User, user_id) if user_id else None
        return (user.display_name or user.username) if user else None

    items = {i.code: ItemState(i.code, i.answer, i.justification, i.revision, name(i.updated_by_id), i.updated_at)
             for i in _items(session, assessment.id)}
    return AssessmentView(id=assessment.id, version_id=assessment.version_id, template_id=assessment.template_id,
                          template_version=assessment.template_version, status=assessment.status,
                          rounds=assessment.rounds, reassess_by=assessment.reassess_by,
                          reopened_reason=assessment.reopened_reason, items=items)


def get_assessment(*, session: Session, version_id: int) -> AssessmentView | None:
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version_id)).first()
    return _view(session, assessment) if assessment else None


def _assessment(session: Session, assessment_id: int) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(f"Assessment {assessment_id} does not exist.")
    return assessment


def start_assessment(*, session: Session, actor: UserPublic, version_id: int) -> AssessmentView:
    """Create the self-assessment of a model version; answers of the model's previous assessment carry over."""
    require_role(actor, Role.builder, Role.admin)
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    if session.exec(select(Assessment).where(Assessment.version_id == version_id)).first() is not None:
        raise Conflict("This model version already has a self-assessment; open it instead.")
    template = load_template()
    previous = session.exec(
        select(Assessment).join(ModelVersion).where(ModelVersion.model_id == version.model_id,
                                                    ModelVersion.number < version.number)
        .order_by(ModelVersion.number.desc())).first()
    carried = {i.code: i for i in _items(session, previous.id)} if previous else {}
    assessment = Assessment(version_id=version_id, template_id=template.id, template_version=template.version,
                            created_by_id=actor.id,
                            reopened_reason=("Answers carried over from the previous version's assessment: check "
                                             "each one against this version's evidence.") if carried else "")
    session.add(assessment)
    session.flush()
    for item in template.items:
        old = carried.get(item.code)
        session.add(AssessmentItem(assessment_id=assessment.id, code=item.code, answer=old.answer if old else "",
                                   justification=old.justification if old else ""))
    audit.record_event(session, actor=actor, action="checklist.start", entity_type="assessment",
                       entity_id=assessment.id, details={"version_id": version_id, "template": template.version,
                                                         "carried_over": bool(carried)})
    session.commit()
    return _view(session, assessment)


def save_answer(*, session: Session, actor: UserPublic, assessment_id: int, code: str, answer: str,
                justification: str, expected_revision: int) -> ItemState:
    """Save one answer on top of the revision the user saw; a newer save by someone else is not overwritten."""
    require_role(actor, Role.builder, Role.admin)
    assessment = _assessment(session, assessment_id)
    if assessment.status not in EDITABLE:
        raise Conflict("The self-assessment is submitted; answers can change again only if the reviewer asks "
                       "for changes.")
    if answer not in ANSWERS:
        raise InvalidInput(f"Choose one of: {', '.join(ANSWERS.values())}.")
    justification = justification.strip()
    if not justification:
        raise InvalidInput("Write a justification: say why, and point to the evidence.")
    if len(justification) > MAX_JUSTIFICATION:
        raise InvalidInput(f"The justification is longer than {MAX_JUSTIFICATION} characters; shorten it.")
    load_template().item(code)
    item = session.exec(select(AssessmentItem).where(AssessmentItem.assessment_id == assessment_id,
                                                     AssessmentItem.code == code).with_for_update()).one()
    if item.revision != expected_revision:
        who = session.get(User, item.updated_by_id)
        raise Conflict(f"Item {code} was changed by {(who.display_name or who.username) if who else 'someone'} at "
                       f"{item.updated_at:%Y-%m-%d %H:%M} UTC since you opened it. Reload to see their answer; "
                       "yours was not saved.")
    item.answer, item.justification = answer, justification
    item.revision += 1
    item.updated_by_id, item.updated_at = actor.id, utcnow()
    assessment.updated_at = item.updated_at
    session.add(item)
    session.add(assessment)
    audit.record_event(session, actor=actor, action="checklist.answer", entity_type="assessment",
                       entity_id=assessment_id, details={"code": code, "answer": answer, "revision": item.revision})
    session.commit()
    return _view(session, assessment).items[code]


def answer_author_ids(*, session: Session, assessment_id: int) -> set[int]:
    """Everyone who ever answered an item of this assessment (from the audit trail, which keeps every save)."""
    from core.models import AuditEvent

    rows = session.exec(select(AuditEvent.actor_id).where(AuditEvent.action == "checklist.answer",
                                                         AuditEvent.entity_type == "assessment",
                                                         AuditEvent.entity_id == str(assessment_id)))
    return {row for row in rows if row is not None}


def evidence_for(*, session: Session, settings: Settings, version_id: int) -> dict[str, Evidence]:
    """Live evidence while the builder works; the frozen snapshot once the assessment is submitted."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version_id)).first()
    if assessment is not None and assessment.status not in EDITABLE:
        last = session.exec(select(ReviewRound).where(ReviewRound.assessment_id == assessment.id)
                            .order_by(ReviewRound.number.desc())).first()
        if last is not None:
            return {code: Evidence.from_dict(entry["evidence"]) for code, entry in last.snapshot["items"].items()}
    return collect_evidence(EvidenceContext(session=session, settings=settings, version=version))


def reassess_date(settings: Settings, today: date | None = None) -> date:
    return (today or date.today()) + timedelta(days=round(30.44 * settings.reassess_months))
