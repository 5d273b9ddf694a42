"""The model card report: a page for a manager, then every card section, the figures, lineage and hashes."""

from __future__ import annotations

from typing import Any

from reportlab.platypus import Flowable, Paragraph

from core import charts, model_card, registry, review
from core.config import Settings
from core.errors import NotFound
from core.models import ModelVersionPublic, TrainingRunPublic
from core.reports import _disclosure as disclosure
from core.reports import _template as t
from core.reports._common import DECIDED
from core.training import runs
from core.training.evaluation import GREATER_IS_BETTER, metric_label

TASK_WORDS = {"binary": "a yes/no answer", "multiclass": "one of several classes", "text": "a code for free text",
              "regression": "a number"}


def short_metric(name: str) -> str:
    return registry.SHORT_METRICS.get(name, name.replace("_", " "))


class CardFacts:
    """Everything the report reads about one run, loaded once."""

    def __init__(self, *, session, settings: Settings, run_id: int) -> None:
        self.settings = settings
        self.document = model_card.card_document(session=session, run_id=run_id)
        self.run: TrainingRunPublic = runs.get_run(session=session, run_id=run_id)
        self.version: ModelVersionPublic | None = registry.version_for_run(session=session, run_id=run_id)
        self.revisions = model_card.list_revisions(session=session, run_id=run_id)
        try:
            self.explanation = runs.get_explanation(session=session, run_id=run_id)
        except NotFound:
            self.explanation = None
        self.decision = review.latest_decision(session=session, version_id=self.version.id) if self.version else None
        self.lineage = registry.lineage(session=session, version_id=self.version.id) if self.version else []

    @property
    def subject(self) -> str:
        return self.version.label if self.version else f"Run {self.run.id} (not registered)"

    @property
    def hashes(self) -> list[tuple[str, str]]:
        details = self.document.auto["model_details"]
        return [("Model SHA-256", details["model_sha256"] or ""), ("Data SHA-256", details["dataset_sha256"] or ""),
                ("Test set SHA-256", details["test_set_sha256"] or ""),
                ("Test predictions hash", details["prediction_hash"] or "")]


# ── the summary page ───────────────────────────────────────────────────────────────────────────────


def _headline(facts: CardFacts) -> tuple[str, list[str]]:
    """The sentence on the main figure, and any concern about it."""
    run, settings = facts.run, facts.settings
    metric = run.primary_metric
    values = ((run.evaluation or {}).get("metrics") or {}).get(metric) or {}
    value, low, high = values.get("value"), values.get("low"), values.get("high")
    base = (run.baseline or {}).get(metric)
    rows = (run.evaluation or {}).get("n_rows")
    if value is None:
        return "The main figure of the model could not be computed on the test data.", [
            "The main test figure is missing."]
    sentence = (f"On {t.fmt(rows)} held-out test rows, which the model never saw while learning, its "
                f"{short_metric(metric)} is {t.fmt(value)}")
    if low is not None and high is not None:
        sentence += f" (95% interval {t.fmt(low)} to {t.fmt(high)})"
    direction = "higher" if GREATER_IS_BETTER.get(metric, True) else "lower"
    sentence += f"; {direction} is better."
    concerns = []
    if base is not None:
        dummy = "always predicts the average" if run.task == "regression" else "always gives the most common answer"
        gain = registry.advantage(metric, value, base)
        sentence += f" A simple rule that {dummy} scores {t.fmt(base)}"
        if gain >= settings.baseline_margin:
            sentence += ", so the model adds real value over it."
        else:
            sentence += ", so the model is not clearly better than that rule."
            concerns.append("The model does not beat the simple baseline by the required margin "
                            f"({settings.baseline_margin}).")
    if low is not None and high is not None and high - low > settings.ci_width_tolerance:
        concerns.append(f"The 95% interval of the main figure is wide ({t.fmt(low)} to {t.fmt(high)}): the test data "
                        "is too small to pin the quality down.")
    return sentence, concerns


def _groups_sentence(facts: CardFacts) -> tuple[str, list[str]]:
    run, settings = facts.run, facts.settings
    sensitive = facts.document.auto["factors"]["sensitive_columns"]
    rows = [r for r in (run.evaluation or {}).get("subgroups") or []
            if not r.get("small") and r.get("value") is not None and r.get("gap") is not None
            and not disclosure.below(r.get("count"), settings.min_cell_size)]
    if not sensitive:
        return ("No column was marked as sensitive (such as sex or region), so results per group were not "
                "measured.", ["No sensitive column is marked, so fairness across groups cannot be checked."])
    if not rows:
        return (f"Results per group of {', '.join(sensitive)} were measured, but no group has enough test rows to "
                "judge.", [])
    worst = max(rows, key=lambda r: r["gap"])
    tolerance = settings.subgroup_gap_tolerance
    if worst["gap"] > tolerance:
        text = (f"By group ({', '.join(sensitive)}), the model does noticeably worse for {worst['column']} = "
                f"{worst['group']}: {t.fmt(worst['value'])} against {t.fmt(worst['overall'])} overall.")
        return text, [f"The group {worst['column']} = {worst['group']} is served worse than the tolerance "
                      f"({tolerance}) allows."]
    return (f"By group ({', '.join(sensitive)}), every group with enough test rows is within {tolerance} of the "
            "overall figure.", [])


def _status_sentence(facts: CardFacts) -> tuple[str, list[str]]:
    version, decision = facts.version, facts.decision
    if version is None:
        return ("This trained model is not registered in the model registry yet, so it has not been reviewed or "
                "approved.", ["Not registered, not reviewed."])
    status = registry.status_label(version)
    text = f"It is registered as {version.label}, status: {status}."
    concerns = []
    if decision is None:
        text += " No peer-review decision has been taken yet."
        concerns.append("No peer-review decision yet.")
    else:
        words = DECIDED.get(decision["decision"], decision["decision"])
        text += (f" Peer review (round {decision['round']}): {words} by {decision['decided_by_name']} on "
                 f"{t.when(decision['decided_at'], time=False)}.")
        if decision.get("conditions"):
            text += f" Conditions: {t.shorten(decision['conditions'], 300)}"
        if decision["decision"] not in registry.APPROVED:
            concerns.append(f"The latest review decision is “{words}”.")
    return text, concerns


def summary(facts: CardFacts, meta: t.Meta) -> list[Flowable]:
    s = t.styles()
    document, run = facts.document, facts.run
    text = document.content
    details = document.auto["model_details"]
    purpose = text.get("overview") or "The builder has not yet written what the model is for."
    data = document.auto["training_data"]
    features = len(data["features"])
    sentences = [
        f"What it is for: {t.shorten(purpose, 500)}",
        f"It predicts “{run.target}” ({TASK_WORDS.get(run.task, run.task)}) from {t.plural(features, 'input column')}"
        f" of the dataset {data['dataset']} ({t.fmt(data['profile']['rows'])} rows). Algorithm: "
        f"{details['algorithm']}.",
    ]
    concerns: list[str] = []
    for part in (_headline, _groups_sentence, _status_sentence):
        sentence, found = part(facts)
        sentences.append(sentence)
        concerns += found
    reproduced = document.auto["reproducibility"]
    if reproduced and reproduced["status"] == "passed":
        sentences.append(f"Re-running the training from its recorded data, settings and seed gave identical "
                         f"predictions (checked {t.when(reproduced['checked_at'], time=False)}).")
    else:
        sentences.append("Whether re-running the training gives the same model has not been confirmed.")
        concerns.append("Reproducibility is not confirmed.")
    completeness = document.completeness
    risks = text.get(model_card.RISKS_KEY) or []
    if completeness.complete:
        sentences.append(f"The model card is complete (revision {document.revision.number}). The builder recorded "
                         f"{t.plural(len(risks), 'risk')} with mitigations.")
    else:
        sentences.append(f"The model card is {completeness.percent}% complete.")
        concerns.append(f"The model card still lacks: {', '.join(completeness.missing)}.")
    flow: list[Flowable] = [*t.title_block(meta, f"{facts.subject} · predicts “{run.target}”")]
    flow += [t.heading("In brief", 1), t.box(t.bullets(sentences, s.bullet))]
    flow.append(t.heading("Points for attention", 2))
    flow += t.bullets(concerns) if concerns else [t.para("None: the figures, the card and the checks are in order.")]
    flow.append(t.heading("What this report describes", 2))
    flow += t.identification(meta, extra=[("Model", facts.subject),
                                          ("Card revision", f"{document.revision.number} by "
                                                            f"{document.revision.created_by_name}, "
                                                            f"{t.when(document.revision.created_at)}"
                                           if document.revision else "not saved yet")])
    flow.append(Paragraph("The pages that follow give every section of the model card, the figures with their "
                          "intervals, results per group, what drives the predictions, and the full lineage.", s.small))
    return flow


# ── the details ─────────────────────────────────────────────────────────────────────────────────────


def _free_text(document: model_card.CardDocument, section: str) -> list[Flowable]:
    s = t.styles()
    flow: list[Flowable] = []
    for card_field in (f for f in model_card.FIELDS if f.section == section):
        value = document.content.get(card_field.key)
        flow.append(t.heading(card_field.label, 3))
        flow.append(t.para(value, s.body) if value else Paragraph("<i>(not written yet)</i>", s.small))
    return flow


def _auto_note() -> Paragraph:
    return Paragraph("Facts below in grey tables come from the store automatically.", t.styles().small)


def _metrics_table(rows: list[dict[str, Any]]) -> Flowable:
    body = [[row["metric"] + (" – the main metric" if row["primary"] else ""), t.fmt(row["value"]),
             f"{t.fmt(row['low'])} to {t.fmt(row['high'])}" if row["low"] is not None else "–",
             t.fmt(row["baseline"]), "higher" if row["greater_is_better"] else "lower"] for row in rows]
    return t.table(["Metric", "Value", "95% interval", "Simple baseline", "Better is"], body, (3.2, 0.8, 1.4, 1, 0.8))


def _subgroups(facts: CardFacts) -> list[Flowable]:
    s = t.styles()
    minimum = facts.settings.min_cell_size
    rows = (facts.run.evaluation or {}).get("subgroups") or []
    if not rows:
        return [t.para("No results per group: no sensitive column was marked.", s.small)]
    safe = disclosure.subgroup_rows(rows, minimum)
    body = [[r.column, r.group, r.count, "suppressed" if r.suppressed else t.fmt(r.value),
             "suppressed" if r.suppressed else t.fmt(r.gap),
             "too few rows to trust" if r.small and not r.suppressed else ""] for r in safe]
    flow: list[Flowable] = [
        t.heading("Results per group", 2),
        t.para(f"{metric_label(rows[0]['metric'])} on the test rows of each group; the gap is how much worse than "
               f"all rows (positive = worse).", s.small),
        t.table(["Column", "Group", "Test rows", "Value", "Gap", "Note"], body, (1.2, 1.6, 0.9, 0.8, 0.8, 1.6)),
    ]
    suppressed = sum(r.suppressed for r in safe)
    hidden = sum(r.hidden for r in safe)
    if suppressed or hidden:
        flow.append(t.para(
            f"Disclosure control: counts below {minimum} are shown as “< {minimum}” and their figures are suppressed "
            f"({t.plural(suppressed, 'group')})" + (f"; {t.plural(hidden, 'further count')} hidden so that a "
                                                    "suppressed one cannot be worked out from the total" if hidden
                                                    else "") + ".", s.small))
    drawable = disclosure.chartable(rows, minimum)
    if drawable:
        flow.append(t.chart_image(charts.subgroup_chart(drawable)))
        if len(drawable) < len(rows):
            flow.append(t.para("Groups whose counts are suppressed or hidden are left out of the chart.", s.small))
    return flow


def _explanation(facts: CardFacts) -> list[Flowable]:
    s = t.styles()
    explanation = facts.explanation
    if explanation is None:
        return [t.heading("What drives the predictions", 2), t.para("No explanation was computed.", s.small)]
    overall = explanation.result.get("overall") or {}
    flow: list[Flowable] = [
        t.heading("What drives the predictions", 2),
        t.para(f"SHAP values ({explanation.method}) on {t.fmt(explanation.rows_explained)} test rows: the average "
               f"size of each column's effect on the prediction ({explanation.scale}). The explanations "
               f"{'add up to the predictions exactly' if explanation.additive else 'do NOT add up to the predictions'}"
               f" (largest error {t.fmt(explanation.additivity_max_error)}).", s.body),
    ]
    if overall:
        top = dict(list(overall.items())[:15])
        flow.append(t.chart_image(charts.importance_chart(top, explanation.scale)))
        if len(overall) > len(top):
            flow.append(t.para(f"The 15 most important of {len(overall)} columns are shown.", s.small))
    stability = (explanation.stability or {}).get("mean_overlap")
    if stability is not None:
        flow.append(t.para(f"Stability across folds: on average {stability:.0%} of the top columns are the same when "
                           "the model is trained on other parts of the data.", s.small))
    return flow


def _lineage(facts: CardFacts) -> list[Flowable]:
    s = t.styles()
    flow: list[Flowable] = []
    if not facts.lineage:
        flow.append(t.para("The run is not registered, so its lineage ends at the trained model.", s.small))
    for step in facts.lineage:
        flow.append(t.heading(step.title + ("" if step.present else " (not yet)"), 3))
        flow += t.bullets(step.facts, s.bullet)
    flow.append(t.heading("Hashes", 2))
    flow.append(t.facts_table([(what, t.hash_cell(digest)) for what, digest in facts.hashes], widths=(1, 3.2)))
    if facts.revisions:
        flow.append(t.heading("Card revisions", 2))
        body = [[str(r.number), r.created_by_name, t.stamp(r.created_at),
                 ", ".join(c["field"] for c in r.changes) or "–"] for r in facts.revisions]
        flow.append(t.table(["Revision", "By", "When (UTC)", "Fields changed"], body, (0.75, 1.1, 1.3, 4)))
    return flow


def details(facts: CardFacts) -> list[Flowable]:
    s = t.styles()
    document, run = facts.document, facts.run
    auto = document.auto
    info = auto["model_details"]
    flow: list[Flowable] = []

    flow += t.section("1. Model details", _auto_note(), t.facts_table([
        ("Model", info["name"]), ("Registered as", facts.subject), ("Project", info["project"]),
        ("Project owner", info["project_owner"]), ("Trained by", info["trained_by"]),
        ("Trained at", t.when(info["trained_at"])), ("Task", f"{run.task}: predicts {TASK_WORDS.get(run.task, '')}"),
        ("Algorithm", info["algorithm"]),
        ("Parameters", ", ".join(f"{k}={v}" for k, v in info["parameters"].items()) or "–"),
        ("Seed", info["seed"]), ("Code version", info["code_version"]), ("Python", info["python"])]))
    flow += _free_text(document, "model_details")

    flow += t.section("2. Intended use", *_free_text(document, "intended_use"))

    flow += t.section("3. Factors", t.facts_table([
        ("Sensitive columns", ", ".join(auto["factors"]["sensitive_columns"]) or "none marked")]))
    flow += _free_text(document, "factors")

    metrics = auto["metrics"]
    thresholds = [(label, t.fmt(metrics[key])) for label, key in (("Decision threshold", "decision_threshold"),
                                                                  ("Coding threshold", "coding_threshold"))
                  if metrics[key] is not None]
    flow += t.section("4. Metrics", t.para(
        f"Main metric: {metrics['primary_metric']}. Each value comes with a 95% interval from resampling the test "
        "rows, and the score of a simple rule (the dummy baseline) for comparison.", s.body),
        _metrics_table(metrics["rows"]))
    if thresholds:
        flow.append(t.facts_table(thresholds))
    flow += _free_text(document, "metrics")

    evaluation = auto["evaluation_data"]
    flow += t.section("5. Evaluation data", t.facts_table([
        ("Held-out test rows", t.fmt(evaluation["rows"])), ("Share of the data", t.fmt(evaluation["share"])),
        ("How rows were held out", evaluation["split"]), ("Seed", evaluation["seed"])]))
    flow += _free_text(document, "evaluation_data")

    data = auto["training_data"]
    profile = data["profile"]
    flow += t.section("6. Training data", t.facts_table([
        ("Dataset", data["dataset"]), ("Source file", data["source_file"]), ("Source", data["source"] or "–"),
        ("Legal basis", data["legal_basis"] or "–"), ("Target", data["target"]),
        ("Input columns", ", ".join(data["features"])),
        ("Size", f"{t.fmt(profile['rows'])} rows × {profile['columns']} columns"),
        ("Duplicate rows", t.fmt(profile["duplicate_rows"])),
        ("Most missing", ", ".join(f"{m['column']} {m['missing_share']:.0%}" for m in profile["most_missing"])
         or "nothing missing")]))
    if profile["warnings"]:
        flow.append(t.heading("Warnings from the data profile", 3))
        flow += t.bullets(profile["warnings"])
    flow += _free_text(document, "training_data")

    flow += t.section("7. Quantitative analyses", *_subgroups(facts))
    flow += _explanation(facts)
    leaderboard = auto["quantitative_analyses"]["leaderboard"]
    if leaderboard:
        flow.append(t.heading("Candidates compared during training", 2))
        flow.append(t.table(["Candidate", "Cross-validation mean", "Standard deviation"],
                            [[row["candidate"], t.fmt(row["cv_mean"]), t.fmt(row["cv_std"])]
                             for row in leaderboard], (3, 1.2, 1.2)))
    reproduced = auto["reproducibility"]
    flow.append(t.labelled("Reproducibility", f"{reproduced['status']} on {t.when(reproduced['checked_at'])}"
                           if reproduced else "not checked yet"))
    flow += _free_text(document, "quantitative_analyses")

    risks = document.content.get(model_card.RISKS_KEY) or []
    flow += t.section("8. Ethical considerations")
    if not risks:
        flow.append(Paragraph("<i>(no risk recorded yet)</i>", s.small))
    for number, risk in enumerate(risks, start=1):
        flow.append(t.heading(f"Risk {number}: {t.shorten(risk['name'], 300)}", 3))
        flow.append(t.labelled("Mitigation", risk["mitigation"] or "–"))

    flow += t.section("9. Caveats and recommendations", *_free_text(document, "caveats"))
    flow += t.section("10. Lineage and hashes", *_lineage(facts))
    return flow


def build(*, session, settings: Settings, run_id: int, meta_for) -> tuple[CardFacts, t.Meta, bytes, int]:
    """Load the facts, then render. ``meta_for(project, subject, hashes)`` makes the header and footer."""
    facts = CardFacts(session=session, settings=settings, run_id=run_id)
    meta = meta_for(facts.document.auto["model_details"]["project"], facts.subject, facts.hashes)
    data, pages = t.render(meta, summary(facts, meta), details(facts))
    return facts, meta, data, pages
