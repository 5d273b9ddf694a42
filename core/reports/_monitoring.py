"""The monitoring report of one model for a period: health first, then drift and performance over time, alerts and
what was done about them, retraining runs and promotions.

Built on what :mod:`core.monitoring`, :mod:`core.alerts` and :mod:`core.pipelines` store. Batch contents never
appear: only figures per batch (rows, drift scores, metrics). Examples of unseen category values, which the
monitoring page shows to the people who fix the data, are left out of the PDF.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from reportlab.platypus import Flowable
from sqlmodel import col, select

from core import alerts, charts, monitoring, pipelines, projects, registry
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.models import PredictionBatch, RegisteredModel, VersionStatus
from core.reports import _template as t
from core.training import runs
from core.training.evaluation import GREATER_IS_BETTER

HEALTH = {"alert": ("red", "open alerts"), "warning": ("amber", "needs a look"), "ok": ("green", "in order"),
          "no data": ("grey", "no batches scored yet")}
MAX_ALERTS_ON_CHART = 4
ALERT_STATUS = {"open": "open: nobody has acted yet", "acknowledged": "acknowledged: being looked at",
                "resolved": "resolved"}


@dataclass(frozen=True)
class Period:
    since: date | None
    until: date | None

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        day = moment.date()
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    @property
    def words(self) -> str:
        if self.since and self.until:
            return f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"
        if self.since:
            return f"from {self.since:%Y-%m-%d}"
        if self.until:
            return f"up to {self.until:%Y-%m-%d}"
        return "all batches so far"


def _model(session, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"Model {model_id} does not exist.")
    return model


class MonitoringFacts:
    """Everything the report reads about one model in one period, loaded once."""

    def __init__(self, *, session, settings: Settings, model_id: int, period: Period) -> None:
        if period.since and period.until and period.since > period.until:
            raise InvalidInput("The period starts after it ends: choose a start date on or before the end date.")
        self.settings, self.period = settings, period
        self.model = _model(session, model_id)
        self.project = projects.get_project(session=session, project_id=self.model.project_id)
        self.summary = registry.get_model(session=session, model_id=model_id)
        self.health = monitoring.model_health(session=session, model_id=model_id)
        everything = monitoring.timeline(session=session, model_id=model_id)
        self.task = everything["task"]
        self.events = [e for e in everything["events"] if period.contains(_moment(e["at"]))]
        self.training = everything["training"]
        self.points = [p for p in everything["points"] if period.contains(_moment(p["at"]))]
        self.cells = [c for c in everything["cells"] if period.contains(_moment(c["at"]))]
        self.reports = [r for r in monitoring.list_reports(session=session, model_id=model_id, limit=100_000)
                        if period.contains(r.batch_created_at)]
        self.reports.reverse()  # oldest first, like the timeline
        self.alerts = [a for a in alerts.list_alerts(session=session, project_id=self.project.id, model_id=model_id,
                                                      limit=100_000)
                       if period.contains(a.created_at) or a.status != "resolved"]
        self.alerts.reverse()
        self.retraining = [r for r in pipelines.list_runs(session=session, model_id=model_id, limit=100_000)
                           if period.contains(r.created_at)]
        self.retraining.reverse()
        self.changes = []  # promotions and rollbacks in the period
        for version in self.summary.versions:
            for change in registry.transitions(session=session, version_id=version.id):
                if period.contains(change.created_at) and (
                        change.to_status == VersionStatus.production or change.from_status == VersionStatus.production):
                    self.changes.append((version, change))
        self.changes.sort(key=lambda item: item[1].created_at)
        batch_ids = [r.batch_id for r in self.reports]
        self.input_hashes = sorted(session.exec(select(PredictionBatch.input_sha256)
                                                .where(col(PredictionBatch.id).in_(batch_ids))).all()) \
            if batch_ids else []
        self.versions_seen = sorted({r.version_number for r in self.reports})
        self.model_hashes = []
        for version in self.summary.versions:
            if version.number in self.versions_seen or (self.summary.production and
                                                        version.id == self.summary.production.id):
                run = runs.get_run(session=session, run_id=version.run_id)
                self.model_hashes.append((f"v{version.number} model SHA-256", run.model_sha256 or ""))

    @property
    def subject(self) -> str:
        live = f" (v{self.summary.production.number} live)" if self.summary.production else ""
        return f"{self.model.name}{live} · {self.period.words}"

    @property
    def hashes(self) -> list[tuple[str, str]]:
        found = list(self.model_hashes)
        if self.input_hashes:
            digest = hashlib.sha256("\n".join(self.input_hashes).encode()).hexdigest()
            found.append((f"{t.plural(len(self.input_hashes), 'batch', 'batches')} (SHA-256 of their input hashes)",
                          digest))
        return found


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _performance_text(point: dict[str, Any]) -> str:
    if point.get("value") is None:
        return "no labels"
    text = f"{registry.SHORT_METRICS.get(point['metric'], point['metric'])} {t.fmt(point['value'])}"
    if point.get("low") is not None:
        text += f" ({t.fmt(point['low'])} to {t.fmt(point['high'])})"
    return text


def _outside_training(point: dict[str, Any], training: dict[str, Any] | None) -> bool:
    if not training or point.get("value") is None or point.get("metric") != training.get("metric"):
        return False
    if GREATER_IS_BETTER.get(point["metric"], True):
        return training.get("low") is not None and point["value"] < training["low"]
    return training.get("high") is not None and point["value"] > training["high"]


def _figures(facts: MonitoringFacts) -> dict[str, Any]:
    points = facts.points
    judged = [p for p in points if p["judged"]]
    labelled = [p for p in points if p.get("value") is not None]
    return {
        "batches": len(points), "rows": sum(p["rows"] or 0 for p in points), "judged": len(judged),
        "drifted": [p for p in judged if p["dataset_drift"]],
        "prediction_drift": [p for p in judged if p["prediction_drift"]],
        "labelled": labelled, "worse": [p for p in labelled if _outside_training(p, facts.training)],
        "failed": [r for r in facts.reports if r.status == "failed"],
    }


# ── summary ─────────────────────────────────────────────────────────────────────────────────────────


def summary(facts: MonitoringFacts, meta: t.Meta) -> list[Flowable]:
    s = t.styles()
    figures = _figures(facts)
    light, words = HEALTH.get(facts.health.health, ("grey", facts.health.health))
    reasons = t.bullets(facts.health.reasons or ["–"], s.cell)
    health_table = t.table(None, [[t.light_cell(light, words), reasons]], (1.1, 3.5),
                           fills={(0, 0): t.LIGHT_FILLS[light]}, zebra=False)
    sentences = []
    if not figures["batches"]:
        sentences.append(f"No batch was scored with {facts.model.name} in this period.")
    else:
        sentences.append(f"{t.plural(figures['batches'], 'batch', 'batches')} ({t.fmt(figures['rows'])} rows) were "
                         f"scored with {facts.model.name} in this period, by version"
                         f"{'s' if len(facts.versions_seen) > 1 else ''} "
                         f"{', '.join(f'v{n}' for n in facts.versions_seen)}.")
        not_judged = figures["batches"] - figures["judged"]
        drift = (f"The input data had drifted away from the training data in {len(figures['drifted'])} of the "
                 f"{figures['judged']} batches large enough to judge")
        drift += f" ({not_judged} too small to judge)." if not_judged else "."
        if figures["prediction_drift"]:
            drift += f" The predictions themselves shifted in {len(figures['prediction_drift'])}."
        sentences.append(drift)
        if figures["labelled"]:
            last = figures["labelled"][-1]
            text = (f"True outcomes arrived for {t.plural(len(figures['labelled']), 'batch', 'batches')}; on the "
                    f"latest (batch {last['batch_id']}) the {_performance_text(last)}")
            if facts.training:
                text += (f", against {t.fmt(facts.training['value'])} on the test data at training "
                         f"(v{facts.training['version']}).")
            worse = len(figures["worse"])
            sentences.append(text + (f" In {t.plural(worse, 'batch', 'batches')} quality fell below the training "
                                     "interval." if worse else ""))
        else:
            sentences.append("No true outcomes (labels) arrived for these batches, so quality could not be measured.")
    raised = [a for a in facts.alerts if facts.period.contains(a.created_at)]
    by_status = Counter(a.status for a in raised)
    if raised:
        sentences.append(f"{t.plural(len(raised), 'alert')} raised: {by_status['resolved']} resolved, "
                         f"{by_status['acknowledged']} being looked at, {by_status['open']} still open.")
    else:
        sentences.append("No alert was raised in this period.")
    older = [a for a in facts.alerts if not facts.period.contains(a.created_at)]
    if older:
        verb = "is" if len(older) == 1 else "are"
        sentences.append(f"{t.plural(len(older), 'older alert')} from before the period {verb} still not resolved.")
    if facts.retraining:
        outcomes = Counter(r.status for r in facts.retraining)
        sentences.append(f"Retraining ran {t.plural(len(facts.retraining), 'time')} ("
                         + ", ".join(f"{n} {pipelines.STATUSES.get(k, k).lower()}" for k, n in outcomes.items())
                         + ").")
    else:
        sentences.append("The model was not retrained in this period.")
    promotions = [(v, c) for v, c in facts.changes if c.to_status == VersionStatus.production]
    if promotions:
        sentences.append("Put into production: " + "; ".join(
            f"v{v.number} on {t.when(c.created_at, time=False)} by {c.actor_name}" for v, c in promotions) + ".")
    flow: list[Flowable] = [*t.title_block(meta, f"{facts.model.name} · {facts.period.words}")]
    flow += [t.heading("Health now", 1), health_table, t.heading("In this period", 2),
             t.box(t.bullets(sentences, s.bullet))]
    flow.append(t.heading("What this report describes", 2))
    flow += t.identification(meta, extra=[("Model", facts.model.name),
                                          ("Period", facts.period.words + " (dates in UTC, both included)")])
    return flow


# ── details ─────────────────────────────────────────────────────────────────────────────────────────


def _batches(facts: MonitoringFacts) -> list[Flowable]:
    s = t.styles()
    flow = t.section("1. Batches scored", t.para(
        "Each scoring batch is compared with the training data column by column. A batch is judged only when it has "
        f"at least {facts.settings.monitor_min_rows:,} rows; smaller ones are shown but never raise an alert.",
        s.small))
    if not facts.points:
        return [*flow, t.para("No batch in this period.", s.body)]
    body = []
    for point, report in zip(facts.points, facts.reports, strict=False):
        if point["status"] != "finished":
            drift = {"failed": "report failed", "missing": "no report"}.get(point["status"], point["status"])
        elif not point["judged"]:
            drift = "not judged (too small)"
        else:
            columns = len(report.columns) if report is not None else 0
            drift = (f"{point['drifted_columns']} of {columns} columns ({point['drift_share']:.0%})"
                     + (": DRIFT" if point["dataset_drift"] else ""))
        shifted = "–" if not point["judged"] else "yes" if point["prediction_drift"] else "no"
        body.append([str(point["batch_id"]), t.stamp(_moment(point["at"])), f"v{point['version']}",
                     t.fmt(point["rows"]), drift, shifted, _performance_text(point)])
    flow.append(t.table(["Batch", "Scored (UTC)", "Version", "Rows", "Input columns drifted", "Predictions shifted",
                         "Quality (when labels arrived)"], body, (0.5, 1.25, 0.65, 0.5, 1.5, 0.95, 1.65)))
    return flow


def _drift_by_column(facts: MonitoringFacts) -> list[Flowable]:
    s = t.styles()
    flow = t.section("2. Drift over time")
    if not facts.cells:
        return [*flow, t.para("No judged batch in this period, so no drift scores.", s.body)]
    by_column: dict[str, list[dict[str, Any]]] = {}
    for cell in facts.cells:
        if cell["verdict"] in ("drift", "no drift"):  # batches too small to judge are not counted
            by_column.setdefault(cell["column"], []).append(cell)
    body = []
    for column, cells in sorted(by_column.items(), key=lambda item: -sum(c["verdict"] == "drift" for c in item[1])):
        drifted = sum(c["verdict"] == "drift" for c in cells)
        scores = [c["score"] for c in cells if c["score"] is not None]
        method = cells[-1].get("method") or "–"
        lower = cells[-1].get("lower_is_drift")
        body.append([column, f"{drifted} of {len(cells)}", _score(scores[-1] if scores else None, lower),
                     _score((min(scores) if lower else max(scores)) if scores else None, lower),
                     f"{method}: drift when {'below' if lower else 'at or above'} {t.fmt(cells[-1].get('threshold'))}"])
    flow += _drift_chart(facts)
    if not by_column:
        return [*flow, t.para("No batch in this period was large enough to judge.", s.body)]
    flow.append(t.para("How often each input column drifted in the judged batches of the period, its score in the "
                       "newest batch and its most extreme score. Tests on small batches give a p-value (drift when "
                       "small), on larger ones a distance (drift when large).", s.small))
    flow.append(t.table(["Column", "Batches drifted", "Newest score", "Most extreme", "Test"], body,
                        (1.35, 0.8, 0.8, 0.8, 2.65)))
    return flow


def _score(value: float | None, p_value: bool | None) -> str:
    if value is None:
        return "–"
    if p_value:
        return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"
    return f"{value:.3f}"


def _drift_chart(facts: MonitoringFacts) -> list[Flowable]:
    """The monitoring page's chart of drift over time (its events: alerts, promotions, retraining)."""
    if not any(p["status"] == "finished" for p in facts.points):
        return []
    threshold = facts.reports[-1].drift_share_threshold if facts.reports else facts.settings.monitor_drift_share
    events, note = _chart_events(facts)
    return [t.chart_image(charts.drift_share_timeline_chart(facts.points, events, threshold=threshold)), *note]


def _chart_events(facts: MonitoringFacts) -> tuple[list[dict[str, Any]], list[Flowable]]:
    """The events the charts mark; many alerts would write their labels over each other, so then only the rest."""
    alerts_marked = [e for e in facts.events if e["kind"] == "alert"]
    if len(alerts_marked) <= MAX_ALERTS_ON_CHART:
        return facts.events, []
    note = t.para(f"The {len(alerts_marked)} alerts of the period are listed in section 4; the charts mark "
                  "promotions and retraining only, so that their labels stay legible.", t.styles().small)
    return [e for e in facts.events if e["kind"] != "alert"], [note]


def _performance_charts(facts: MonitoringFacts) -> list[Flowable]:
    events, _note = _chart_events(facts)  # the note is under the drift chart already
    flow = [t.chart_image(charts.performance_timeline_chart(facts.points, events, training=facts.training))]
    if any(p.get("automation_rate") is not None for p in facts.points):
        flow.append(t.chart_image(charts.automation_timeline_chart(facts.points, events)))
    return flow


def _performance(facts: MonitoringFacts) -> list[Flowable]:
    s = t.styles()
    flow = t.section("3. Quality over time")
    labelled = [p for p in facts.points if p.get("value") is not None]
    if not labelled:
        return [*flow, t.para("No labels arrived for the batches of this period.", s.body)]
    if facts.training:
        flow.append(t.para(f"At training, v{facts.training['version']} scored "
                           f"{registry.SHORT_METRICS.get(facts.training['metric'], facts.training['metric'])} "
                           f"{t.fmt(facts.training['value'])} (95% interval {t.fmt(facts.training.get('low'))} to "
                           f"{t.fmt(facts.training.get('high'))}) on its test data.", s.body))
    flow += _performance_charts(facts)
    body = [[str(p["batch_id"]), t.stamp(_moment(p["at"])), f"v{p['version']}", _performance_text(p),
             "below the training interval" if _outside_training(p, facts.training) else "within or above"]
            for p in labelled]
    flow.append(t.table(["Batch", "Scored (UTC)", "Version", "Quality on the labelled rows", "Against training"],
                        body, (0.6, 1.25, 0.7, 2.4, 1.6)))
    return flow


def _alerts(facts: MonitoringFacts) -> list[Flowable]:
    s = t.styles()
    flow = t.section("4. Alerts and what was done")
    if not facts.alerts:
        return [*flow, t.para("No alert in this period and none left open from before.", s.body)]
    for alert in facts.alerts:
        title = (f"Alert {alert.id} · {alerts.SEVERITIES.get(alert.severity, alert.severity)} · "
                 f"{t.when(alert.created_at)} · v{alert.version_number}")
        rows: list[tuple[str, Any]] = [("Rule", alert.rule_description), ("What happened", alert.message),
                                       ("Status", ALERT_STATUS.get(alert.status, alert.status))]
        if alert.acknowledged_at:
            rows.append(("Acknowledged", f"{alert.acknowledged_by_name or '–'}, {t.when(alert.acknowledged_at)}"))
        if alert.resolved_at:
            rows.append(("Resolved", f"{alert.resolved_by_name or '–'}, {t.when(alert.resolved_at)}"))
        if alert.pipeline_run_id:
            rows.append(("Retraining", f"pipeline run {alert.pipeline_run_id}"))
        if alert.note:
            rows.append(("What was done", alert.note))
        flow += [t.heading(title, 3), t.facts_table(rows, widths=(1, 3.6))]
    return flow


def _retraining(facts: MonitoringFacts) -> list[Flowable]:
    s = t.styles()
    flow = t.section("5. Retraining and promotions")
    if facts.retraining:
        body = [[str(r.id), t.stamp(r.created_at), r.trigger_label, pipelines.STATUSES.get(r.status, r.status),
                 r.candidate_label or "–", r.outcome or "–"] for r in facts.retraining]
        flow.append(t.table(["Run", "Started (UTC)", "Trigger", "Result", "Candidate", "Outcome"], body,
                            (0.45, 1.25, 1.1, 1, 0.9, 2.3)))
    else:
        flow.append(t.para("No retraining run in this period.", s.body))
    flow.append(t.heading("Production changes", 2))
    if facts.changes:
        body = [[f"v{version.number}", t.stamp(change.created_at), change.actor_name,
                 "into production" if change.to_status == VersionStatus.production else
                 f"out of production ({change.to_status.replace('_', ' ')})", change.reason or "–"]
                for version, change in facts.changes]
        flow.append(t.table(["Version", "When (UTC)", "By", "Change", "Reason"], body, (0.75, 1.25, 0.9, 1.3, 2.6)))
    else:
        flow.append(t.para("The production version did not change in this period.", s.body))
    return flow


def details(facts: MonitoringFacts) -> list[Flowable]:
    return [*_batches(facts), *_drift_by_column(facts), *_performance(facts), *_alerts(facts), *_retraining(facts)]


def build(*, session, settings: Settings, model_id: int, since: date | None, until: date | None,
          meta_for) -> tuple[MonitoringFacts, t.Meta, bytes, int]:
    facts = MonitoringFacts(session=session, settings=settings, model_id=model_id, period=Period(since, until))
    meta = meta_for(facts.project.name, facts.subject, facts.hashes)
    data, pages = t.render(meta, summary(facts, meta), details(facts))
    return facts, meta, data, pages
