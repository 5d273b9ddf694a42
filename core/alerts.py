"""Alerts: rules per model, alerts raised from monitoring reports, and their delivery.

A rule watches one figure of a model's monitoring reports (the share of drifted columns, one column's drift
score, a performance metric once labels arrive, the batch volume, the automation rate of a coding model) and
fires when it crosses a threshold. A fired rule becomes an :class:`~core.models.Alert` (open → acknowledged →
resolved, with who and when), a notification in the app for the model's builders and the managers, an e-mail
and a JSON post to a webhook, as the rule says. E-mails and webhook posts are :class:`~core.models.AlertDelivery`
rows: a failed attempt is recorded and retried with growing pauses (here and by ``steward scheduler``); one that
keeps failing is marked failed and the administrators are told, so no alert is lost silently.

A drift alert that fires on several batches in a row re-opens the self-assessment of the production version, and
a rule may start the retraining pipeline (:mod:`core.pipelines`).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from core import audit, mail, notifications
from core.auth import OPERATOR, require_role
from core.config import Settings
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import (
    Alert,
    AlertDelivery,
    AlertRule,
    ModelVersion,
    MonitoringReport,
    Project,
    RegisteredModel,
    Role,
    TrainingRun,
    User,
    UserPublic,
    UserRole,
    VersionStatus,
    utcnow,
)
from core.training.evaluation import GREATER_IS_BETTER
from core.training.evaluation import METRICS as TASK_METRICS

METRICS = {
    "drift_share": "Share of drifted input columns",
    "column_drift": "Drift score of one column",
    "performance": "Performance metric (once labels arrive)",
    "volume": "Rows in a batch",
    "automation_rate": "Automation rate (coding models)",
}
DRIFT_METRICS = ("drift_share", "column_drift")
DIRECTIONS = {"above": "above", "below": "below"}
SEVERITIES = {"info": "Information", "warning": "Warning", "critical": "Critical"}
CHANNELS = {"app": "In the app", "email": "E-mail", "webhook": "Webhook"}
STATUSES = {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}
ACTORS = (Role.builder, Role.manager, Role.admin)  # who may change rules and act on alerts; everyone reads
PERSISTENT_BATCHES = 3  # a drift rule firing on this many judged batches in a row re-opens the assessment
RETRY_DELAYS = (60, 300, 900, 3600, 4 * 3600)  # seconds before attempts 2, 3, …; then the delivery has failed
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
CLAIM_SECONDS = 120  # an attempt under way is not started again by another process for this long
WEBHOOK_TIMEOUT = 10.0
UNFINISHED_REPORTS = ("queued", "running", "failed")

# Monitoring itself raises and resolves nothing by hand: it acts as this pseudo-user in the audit trail.
MONITOR = OPERATOR.model_copy(update={"username": "monitoring", "display_name": "Steward monitoring"})


# ── read models ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class AlertRulePublic:
    id: int
    model_id: int
    metric: str
    column: str | None
    direction: str
    threshold: float
    severity: str
    channels: list[str]
    recipients: list[str]
    webhook_url: str | None
    triggers_retraining: bool
    active: bool
    created_by_name: str
    created_at: datetime

    @property
    def description(self) -> str:
        return describe_rule(self.metric, self.column, self.direction, self.threshold)


@dataclass(frozen=True)
class DeliveryPublic:
    id: int
    alert_id: int
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AlertPublic:
    id: int
    rule_id: int
    model_id: int
    model_name: str
    project_id: int
    version_id: int
    version_number: int
    report_id: int | None
    batch_id: int | None
    metric: str
    rule_description: str
    value: float | None
    threshold: float
    severity: str
    message: str
    status: str
    acknowledged_by_name: str | None
    acknowledged_at: datetime | None
    resolved_by_name: str | None
    resolved_at: datetime | None
    note: str
    pipeline_run_id: int | None
    triggers_retraining: bool
    created_at: datetime
    deliveries: list[DeliveryPublic] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"Alert {self.id}: {self.model_name} v{self.version_number}, {SEVERITIES[self.severity].lower()}"

    @property
    def retraining_trigger(self) -> str:
        return "drift_alert" if self.metric in DRIFT_METRICS else "performance_alert"


# ── rules ───────────────────────────────────────────────────────────────────────────────────────────


def _short_metric(name: str | None) -> str:
    from core.registry import SHORT_METRICS

    return SHORT_METRICS.get(name or "", (name or "").replace("_", " "))


def describe_rule(metric: str, column: str | None, direction: str, threshold: float) -> str:
    """A rule in words, e.g. "Share of drifted input columns above 0.3"."""
    if metric == "column_drift":
        what = f"Drift score of column {column}"
    elif metric == "performance":
        what = f"{_short_metric(column)} (performance)"
    else:
        what = METRICS.get(metric, metric)
    number = f"{threshold:,.0f}" if metric == "volume" else f"{threshold:.3g}"
    return f"{what} {direction} {number}"


def _name(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return "Steward"
    user = session.get(User, user_id)
    return (user.display_name or user.username) if user else f"user {user_id}"


def _rule_public(session: Session, rule: AlertRule) -> AlertRulePublic:
    return AlertRulePublic(id=rule.id, model_id=rule.model_id, metric=rule.metric, column=rule.column,
                           direction=rule.direction, threshold=rule.threshold, severity=rule.severity,
                           channels=list(rule.channels), recipients=list(rule.recipients),
                           webhook_url=rule.webhook_url, triggers_retraining=rule.triggers_retraining,
                           active=rule.active, created_by_name=_name(session, rule.created_by_id),
                           created_at=rule.created_at)


def _model(session: Session, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"Model {model_id} does not exist.")
    return model


def rule_choices(*, session: Session, model_id: int) -> dict[str, list[str]]:
    """What a rule of this model can name: its input columns (for drift) and its task's metrics (performance)."""
    run = _production_run(session, model_id)
    if run is None:
        newest = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)
                              .order_by(col(ModelVersion.number).desc())).first()
        run = session.get(TrainingRun, newest.run_id) if newest else None
    if run is None:
        return {"columns": [], "metrics": []}
    excluded = set(run.config.get("excluded") or [])
    return {"columns": [name for name in run.feature_types if name not in excluded],
            "metrics": list(TASK_METRICS.get(run.task, []))}


def list_rules(*, session: Session, model_id: int, active_only: bool = False) -> list[AlertRulePublic]:
    """A model's alert rules, in the order they were made."""
    query = select(AlertRule).where(AlertRule.model_id == model_id).order_by(col(AlertRule.id))
    if active_only:
        query = query.where(col(AlertRule.active).is_(True))
    return [_rule_public(session, rule) for rule in session.exec(query)]


def _clean_rule(session: Session, model: RegisteredModel, *, metric: str, column: str | None, direction: str,
                threshold: float, severity: str, channels: Iterable[str], recipients: Iterable[str],
                webhook_url: str | None) -> dict[str, Any]:
    if metric not in METRICS:
        raise InvalidInput(f"Choose what the rule watches: {', '.join(METRICS.values())}.")
    if direction not in DIRECTIONS:
        raise InvalidInput("A rule fires when the value is above or below its threshold.")
    if severity not in SEVERITIES:
        raise InvalidInput(f"The severity is one of: {', '.join(SEVERITIES)}.")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError) as error:
        raise InvalidInput("The threshold is a number.") from error
    if not math.isfinite(threshold):
        raise InvalidInput("The threshold is a number.")
    column = (column or "").strip() or None
    task = _production_task(session, model.id)
    if metric == "column_drift" and not column:
        raise InvalidInput("Say which input column's drift score the rule watches.")
    if metric == "performance":
        known = TASK_METRICS.get(task, list(GREATER_IS_BETTER)) if task else list(GREATER_IS_BETTER)
        if column not in known:
            raise InvalidInput(f"Choose the performance metric the rule watches: {', '.join(known)}.")
    if metric in ("drift_share", "automation_rate") and not 0 <= threshold <= 1:
        raise InvalidInput("A share or a rate is between 0 and 1.")
    if metric == "volume" and threshold < 0:
        raise InvalidInput("A number of rows cannot be negative.")
    if metric not in ("column_drift", "performance"):
        column = None
    channels = sorted(set(channels), key=list(CHANNELS).index) if channels else []
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        raise InvalidInput(f"Choose at least one channel: {', '.join(CHANNELS.values())}.")
    recipients = [mail.check_address(r, "The recipient") for r in dict.fromkeys(
        r.strip() for r in recipients if r and r.strip())]
    webhook_url = (webhook_url or "").strip() or None
    if "webhook" in channels and not webhook_url:
        raise InvalidInput("Give the webhook address (https://…) the alert is posted to.")
    if webhook_url and not webhook_url.lower().startswith(("http://", "https://")):
        raise InvalidInput("The webhook address starts with https:// (or http:// inside the office network).")
    if webhook_url and len(webhook_url) > 500:
        raise InvalidInput("The webhook address is longer than 500 characters.")
    return {"metric": metric, "column": column, "direction": direction, "threshold": threshold,
            "severity": severity, "channels": channels, "recipients": recipients, "webhook_url": webhook_url}


def save_rule(*, session: Session, actor: UserPublic, model_id: int, rule_id: int | None = None, metric: str,
              column: str | None = None, direction: str = "above", threshold: float, severity: str = "warning",
              channels: Iterable[str] = ("app",), recipients: Iterable[str] = (), webhook_url: str | None = None,
              triggers_retraining: bool = False, active: bool = True) -> AlertRulePublic:
    """Add a rule to a model, or change one (builders, managers and administrators)."""
    require_role(actor, *ACTORS)
    model = _model(session, model_id)
    values = _clean_rule(session, model, metric=metric, column=column, direction=direction, threshold=threshold,
                         severity=severity, channels=channels, recipients=recipients, webhook_url=webhook_url)
    if rule_id is None:
        rule = AlertRule(model_id=model_id, created_by_id=actor.id or None, **values)
        before = None
    else:
        rule = session.get(AlertRule, rule_id)
        if rule is None or rule.model_id != model_id:
            raise NotFound(f"{model.name} has no alert rule {rule_id}.")
        before = _rule_public(session, rule).description
        for key, value in values.items():
            setattr(rule, key, value)
    rule.triggers_retraining, rule.active = bool(triggers_retraining), bool(active)
    session.add(rule)
    session.flush()
    audit.record_event(session, actor=actor, action="alert.rule.save", entity_type="alert_rule", entity_id=rule.id,
                       details={"model": model.name, "rule": describe_rule(rule.metric, rule.column, rule.direction,
                                                                           rule.threshold),
                                "before": before, "severity": rule.severity, "channels": rule.channels,
                                "triggers_retraining": rule.triggers_retraining, "active": rule.active})
    session.commit()
    return _rule_public(session, rule)


def set_rule_active(*, session: Session, actor: UserPublic, rule_id: int, active: bool) -> AlertRulePublic:
    """Switch a rule off or on again (rules are never deleted: their alerts refer to them)."""
    require_role(actor, *ACTORS)
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"Alert rule {rule_id} does not exist.")
    rule.active = bool(active)
    session.add(rule)
    audit.record_event(session, actor=actor, action="alert.rule.active", entity_type="alert_rule", entity_id=rule.id,
                       details={"active": rule.active})
    session.commit()
    return _rule_public(session, rule)


def _production_run(session: Session, model_id: int) -> TrainingRun | None:
    version = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                      ModelVersion.status == VersionStatus.production)).first()
    return session.get(TrainingRun, version.run_id) if version else None


def _production_task(session: Session, model_id: int) -> str | None:
    run = _production_run(session, model_id)
    if run is None:
        newest = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)
                              .order_by(col(ModelVersion.number).desc())).first()
        run = session.get(TrainingRun, newest.run_id) if newest else None
    return run.task if run else None


def default_rules(*, session: Session, version_id: int) -> list[dict[str, Any]]:
    """The rules a model gets at its first promotion, fitted to the promoted version's test results.

    Drift of more than 30 % of the input columns warns; the primary metric falling outside the 95 % interval
    measured at training is critical and starts retraining; a coding model also watches its automation rate.
    E-mail is added when an SMTP server is set up.
    """
    version = session.get(ModelVersion, version_id)
    run = session.get(TrainingRun, version.run_id)
    channels = ["app", "email"] if mail.get_smtp(session=session).configured else ["app"]
    rules = [{"metric": "drift_share", "column": None, "direction": "above", "threshold": 0.3, "severity": "warning",
              "channels": channels, "triggers_retraining": False}]
    measured = ((run.evaluation or {}).get("metrics") or {}).get(run.primary_metric) or {}
    value = measured.get("value")
    if value is not None and math.isfinite(value):
        greater = GREATER_IS_BETTER.get(run.primary_metric, True)
        bound = measured.get("low") if greater else measured.get("high")
        if bound is None or not math.isfinite(bound) or bound == value:
            bound = value - abs(value) * 0.05 if greater else value + abs(value) * 0.05
        rules.append({"metric": "performance", "column": run.primary_metric,
                      "direction": "below" if greater else "above", "threshold": round(float(bound), 4),
                      "severity": "critical", "channels": channels, "triggers_retraining": True})
    if run.task == "text" and run.coding_threshold is not None:
        tradeoff = ((run.evaluation or {}).get("diagnostics") or {}).get("coding_tradeoff") or []
        row = min(tradeoff, key=lambda r: abs(r["threshold"] - run.coding_threshold), default=None)
        if row and row.get("coverage") is not None:
            rules.append({"metric": "automation_rate", "column": None, "direction": "below",
                          "threshold": round(max(0.0, row["coverage"] - 0.1), 3), "severity": "warning",
                          "channels": ["app"], "triggers_retraining": False})
    return rules


def add_default_rules(session: Session, *, version_id: int, actor: UserPublic | None) -> list[int]:
    """Give a model its default rules when it has none yet, in the caller's transaction (the caller commits).

    The registry calls this when it promotes a version, so every model in production is watched.
    """
    version = session.get(ModelVersion, version_id)
    if session.exec(select(AlertRule.id).where(AlertRule.model_id == version.model_id)).first() is not None:
        return []
    created = []
    for values in default_rules(session=session, version_id=version_id):
        rule = AlertRule(model_id=version.model_id, created_by_id=(actor.id or None) if actor else None, **values)
        session.add(rule)
        session.flush()
        created.append(rule.id)
    audit.record_event(session, actor=actor, action="alert.rule.defaults", entity_type="registered_model",
                       entity_id=version.model_id, details={"rules": created, "version_id": version_id})
    return created


# ── evaluating monitoring reports ──────────────────────────────────────────────────────────────────


def _number(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("value", value.get("rate", value.get("score")))
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def report_value(rule: AlertRule | AlertRulePublic, report: MonitoringReport) -> float | None:
    """The figure of a monitoring report a rule watches, or None when the report does not have it (yet)."""
    if rule.metric == "drift_share":
        return _number(report.drift_share)
    if rule.metric == "volume":
        return float(report.rows)
    if rule.metric == "column_drift":
        for entry in report.columns or []:
            if isinstance(entry, dict) and entry.get("column") == rule.column:
                return _number(entry.get("score", entry.get("drift_score")))
        return None
    performance = report.performance or {}
    if rule.metric == "performance":
        metrics = performance.get("metrics", performance)
        return _number(metrics.get(rule.column)) if isinstance(metrics, dict) else None
    if rule.metric == "automation_rate":  # from the labels when they came, else from the confidence alone
        for source in (performance.get("coding") or {}, performance, report.quality or {},
                       report.prediction_drift or {}):
            found = _number(source.get("automation_rate"))
            if found is not None:
                return found
    return None


def _crossed(rule: AlertRule, value: float) -> bool:
    return value > rule.threshold if rule.direction == "above" else value < rule.threshold


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if metric == "volume" else f"{value:.3g}"


def audience(*, session: Session, model_id: int) -> set[int]:
    """Who hears about a model's alerts: the project owner, everyone who built a version of it, and the managers."""
    model = _model(session, model_id)
    people = {session.get(Project, model.project_id).owner_id, model.created_by_id}
    for version in session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)):
        people.add(version.created_by_id)
        people.add(session.get(TrainingRun, version.run_id).created_by_id)
    people |= set(session.exec(select(UserRole.user_id).where(UserRole.role == Role.manager)))
    active = set(session.exec(select(User.id).where(col(User.id).in_(people), col(User.is_active).is_(True))))
    return active


def _admins(session: Session) -> set[int]:
    return set(session.exec(select(UserRole.user_id).join(User, User.id == UserRole.user_id)
                            .where(UserRole.role == Role.admin, col(User.is_active).is_(True))))


def _email_targets(session: Session, rule: AlertRule) -> list[str]:
    if rule.recipients:
        return list(rule.recipients)
    users = session.exec(select(User).where(col(User.id).in_(audience(session=session, model_id=rule.model_id))))
    return sorted({user.email for user in users if user.email})


def evaluate_report(*, session: Session, settings: Settings, report_id: int, runner=None) -> list[AlertPublic]:
    """Check a finished monitoring report against its model's active rules and raise the alerts that fire.

    Call it when a report is finished, and again when labels add performance figures: a rule fires at most once
    per report. Reports of batches too small to judge (``judged=False``) never raise alerts. Each new alert is
    shown in the app, notified, queued for e-mail and webhook delivery (attempted here once), may re-open the
    production version's self-assessment (drift on :data:`PERSISTENT_BATCHES` batches in a row) and may request a
    retraining run (started on ``runner`` when given, otherwise by ``steward scheduler`` or from the app).
    """
    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"Monitoring report {report_id} does not exist.")
    if not report.judged or report.status in UNFINISHED_REPORTS or report.error:
        return []
    version = session.get(ModelVersion, report.version_id)
    model = session.get(RegisteredModel, version.model_id)
    rules = session.exec(select(AlertRule).where(AlertRule.model_id == model.id, col(AlertRule.active).is_(True))
                         .order_by(col(AlertRule.id))).all()
    raised: list[Alert] = []
    for rule in rules:
        value = report_value(rule, report)
        if value is None or not _crossed(rule, value):
            continue
        if session.exec(select(Alert.id).where(Alert.rule_id == rule.id, Alert.report_id == report.id)).first():
            continue
        description = describe_rule(rule.metric, rule.column, rule.direction, rule.threshold)
        alert = Alert(rule_id=rule.id, model_id=model.id, version_id=version.id, report_id=report.id,
                      metric=rule.metric, value=value, threshold=rule.threshold, severity=rule.severity,
                      message=(f"{model.name} v{version.number}, batch {report.batch_id}: {description} "
                               f"(value {_format(rule.metric, value)})."))
        session.add(alert)
        session.flush()
        raised.append(alert)
        audit.record_event(session, actor=MONITOR, action="alert.raise", entity_type="alert", entity_id=alert.id,
                           details={"model": model.name, "version": version.number, "rule": rule.id,
                                    "report": report.id, "value": value, "threshold": rule.threshold,
                                    "severity": rule.severity})
        if "app" in rule.channels:
            notifications.notify(session, user_ids=audience(session=session, model_id=model.id), page="alerts",
                                 message=f"{SEVERITIES[rule.severity]} alert: {alert.message}")
        targets = [("email", target) for target in _email_targets(session, rule)] if "email" in rule.channels else []
        if "email" in rule.channels and not targets:
            targets = [("email", "(no recipient)")]  # recorded, so the missing address shows as a failed delivery
        if "webhook" in rule.channels and rule.webhook_url:
            targets.append(("webhook", rule.webhook_url))
        for channel, target in targets:
            session.add(AlertDelivery(alert_id=alert.id, channel=channel, target=target, next_attempt_at=utcnow()))
    session.commit()
    for alert in raised:
        rule = session.get(AlertRule, alert.rule_id)
        if rule.metric in DRIFT_METRICS:
            _reopen_if_persistent(session, alert, rule)
        if rule.triggers_retraining:
            _request_retraining(session, settings, alert, rule, runner)
    if raised:
        deliver_due(session=session, settings=settings, alert_ids=[a.id for a in raised])
    return [get_alert(session=session, alert_id=alert.id) for alert in raised]


def _reopen_if_persistent(session: Session, alert: Alert, rule: AlertRule) -> None:
    recent = session.exec(select(MonitoringReport.id).where(
        MonitoringReport.version_id == alert.version_id, col(MonitoringReport.judged).is_(True),
        col(MonitoringReport.status).not_in(UNFINISHED_REPORTS), col(MonitoringReport.error).is_(None),
        MonitoringReport.batch_id <= session.get(MonitoringReport, alert.report_id).batch_id)
        .order_by(col(MonitoringReport.batch_id).desc()).limit(PERSISTENT_BATCHES)).all()
    if len(recent) < PERSISTENT_BATCHES:
        return
    fired = set(session.exec(select(Alert.report_id).where(Alert.rule_id == rule.id,
                                                           col(Alert.report_id).in_(recent))))
    if fired != set(recent):
        return
    production = session.exec(select(ModelVersion).where(ModelVersion.model_id == alert.model_id,
                                                         ModelVersion.status == VersionStatus.production)).first()
    if production is None:
        return
    from core import review  # review imports the registry, which imports this module when it promotes

    description = describe_rule(rule.metric, rule.column, rule.direction, rule.threshold)
    reason = (f"Drift persisted: “{description}” fired on {PERSISTENT_BATCHES} batches in a row (alert {alert.id}). "
              f"Check the answers against the new data and submit the assessment for review again.")
    try:
        review.reopen(session=session, actor=MONITOR, version_id=production.id, reason=reason)
    except (NotFound, Conflict) as error:
        alert.note = _append(alert.note, f"The self-assessment could not be re-opened: {error}")
    else:
        alert.note = _append(alert.note, f"Drift on {PERSISTENT_BATCHES} batches in a row: the self-assessment "
                                         f"of v{production.number} was re-opened.")
    session.add(alert)
    session.commit()


def _request_retraining(session: Session, settings: Settings, alert: Alert, rule: AlertRule, runner) -> None:
    from core import pipelines  # the pipeline reads alerts too

    trigger = "drift_alert" if rule.metric in DRIFT_METRICS else "performance_alert"
    try:
        requested = pipelines.request_run(session=session, settings=settings, model_id=alert.model_id,
                                          trigger=trigger, trigger_ref=f"alert {alert.id}", runner=runner)
    except DomainError as error:
        alert.note = _append(alert.note, f"Retraining could not be requested: {error}")
    else:
        alert.pipeline_run_id = requested.id
        alert.note = _append(alert.note, f"Retraining requested (pipeline run {requested.id}).")
    session.add(alert)
    session.commit()


def _append(note: str, line: str) -> str:
    return (f"{note}\n{line}" if note else line)[-2000:]


# ── reading and acting on alerts ────────────────────────────────────────────────────────────────────


def _delivery_public(row: AlertDelivery) -> DeliveryPublic:
    return DeliveryPublic(id=row.id, alert_id=row.alert_id, channel=row.channel, target=row.target, status=row.status,
                          attempts=row.attempts, last_error=row.last_error, next_attempt_at=row.next_attempt_at,
                          sent_at=row.sent_at, created_at=row.created_at)


def _alert_public(session: Session, alert: Alert) -> AlertPublic:
    model = session.get(RegisteredModel, alert.model_id)
    version = session.get(ModelVersion, alert.version_id)
    rule = session.get(AlertRule, alert.rule_id)
    report = session.get(MonitoringReport, alert.report_id) if alert.report_id else None
    deliveries = session.exec(select(AlertDelivery).where(AlertDelivery.alert_id == alert.id)
                              .order_by(col(AlertDelivery.id))).all()
    return AlertPublic(
        id=alert.id, rule_id=alert.rule_id, model_id=alert.model_id, model_name=model.name,
        project_id=model.project_id, version_id=alert.version_id, version_number=version.number,
        report_id=alert.report_id, batch_id=report.batch_id if report else None, metric=alert.metric,
        rule_description=describe_rule(rule.metric, rule.column, rule.direction, rule.threshold),
        value=alert.value, threshold=alert.threshold, severity=alert.severity, message=alert.message,
        status=alert.status,
        acknowledged_by_name=_name(session, alert.acknowledged_by_id) if alert.acknowledged_at else None,
        acknowledged_at=alert.acknowledged_at,
        resolved_by_name=_name(session, alert.resolved_by_id) if alert.resolved_at else None,
        resolved_at=alert.resolved_at, note=alert.note, pipeline_run_id=alert.pipeline_run_id,
        triggers_retraining=rule.triggers_retraining, created_at=alert.created_at,
        deliveries=[_delivery_public(row) for row in deliveries])


def _get(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alert {alert_id} does not exist.")
    return alert


def get_alert(*, session: Session, alert_id: int) -> AlertPublic:
    return _alert_public(session, _get(session, alert_id))


def list_alerts(*, session: Session, project_id: int, statuses: Iterable[str] | None = None,
                model_id: int | None = None, limit: int = 200) -> list[AlertPublic]:
    """A project's alerts, newest first (only those in ``statuses`` when given)."""
    query = (select(Alert).join(RegisteredModel, RegisteredModel.id == Alert.model_id)
             .where(RegisteredModel.project_id == project_id).order_by(col(Alert.id).desc()).limit(limit))
    if statuses is not None:
        query = query.where(col(Alert.status).in_(list(statuses)))
    if model_id is not None:
        query = query.where(Alert.model_id == model_id)
    return [_alert_public(session, alert) for alert in session.exec(query)]


def open_alert_counts(*, session: Session, project_id: int) -> dict[int, dict[str, int]]:
    """Per model of a project: how many alerts are not resolved yet, by severity (for health overviews)."""
    counts: dict[int, dict[str, int]] = {}
    for alert in list_alerts(session=session, project_id=project_id, statuses=("open", "acknowledged"), limit=10_000):
        by_severity = counts.setdefault(alert.model_id, {})
        by_severity[alert.severity] = by_severity.get(alert.severity, 0) + 1
    return counts


def acknowledge(*, session: Session, actor: UserPublic, alert_id: int, note: str = "") -> AlertPublic:
    """Say that someone is looking at an open alert (builders, managers and administrators)."""
    require_role(actor, *ACTORS)
    alert = _get(session, alert_id)
    if alert.status != "open":
        raise Conflict(f"Alert {alert_id} is already {alert.status}.")
    note = (note or "").strip()
    alert.status, alert.acknowledged_by_id, alert.acknowledged_at = "acknowledged", actor.id or None, utcnow()
    if note:
        alert.note = _append(alert.note, f"Acknowledged by {actor.label}: {note}")
    session.add(alert)
    audit.record_event(session, actor=actor, action="alert.acknowledge", entity_type="alert", entity_id=alert.id,
                       details={"note": note})
    session.commit()
    return get_alert(session=session, alert_id=alert_id)


def resolve(*, session: Session, actor: UserPublic, alert_id: int, note: str) -> AlertPublic:
    """Close an alert with a note saying what was done (builders, managers and administrators)."""
    require_role(actor, *ACTORS)
    alert = _get(session, alert_id)
    if alert.status == "resolved":
        raise Conflict(f"Alert {alert_id} is already resolved.")
    note = (note or "").strip()
    if len(note) < 5:
        raise InvalidInput("Write what was done about the alert (a sentence): it stays with the alert.")
    now = utcnow()
    if alert.acknowledged_at is None:
        alert.acknowledged_by_id, alert.acknowledged_at = actor.id or None, now
    alert.status, alert.resolved_by_id, alert.resolved_at = "resolved", actor.id or None, now
    alert.note = _append(alert.note, f"Resolved by {actor.label}: {note}")
    session.add(alert)
    audit.record_event(session, actor=actor, action="alert.resolve", entity_type="alert", entity_id=alert.id,
                       details={"note": note})
    session.commit()
    return get_alert(session=session, alert_id=alert_id)


def link_pipeline_run(session: Session, *, alert_id: int, pipeline_run_id: int) -> None:
    """Remember which retraining run an alert started (the caller commits)."""
    alert = _get(session, alert_id)
    alert.pipeline_run_id = pipeline_run_id
    alert.note = _append(alert.note, f"Retraining started (pipeline run {pipeline_run_id}).")
    session.add(alert)


# ── delivery ────────────────────────────────────────────────────────────────────────────────────────


def _payload(session: Session, settings: Settings, alert: AlertPublic) -> dict[str, Any]:
    project = session.get(Project, alert.project_id)
    return {"alert_id": alert.id, "project": project.name, "model": alert.model_name,
            "version": alert.version_number, "severity": alert.severity, "status": alert.status,
            "metric": alert.metric, "rule": alert.rule_description, "value": alert.value,
            "threshold": alert.threshold, "message": alert.message, "report_id": alert.report_id,
            "batch_id": alert.batch_id, "created_at": alert.created_at.isoformat(),
            "url": f"{settings.app_url.rstrip('/')}/alerts"}


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "Steward alerts"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310 - http(s) only
            status = response.status
    except urllib.error.HTTPError as error:
        raise mail.DeliveryError(f"The webhook answered {error.code} {error.reason}.") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise mail.DeliveryError(f"The webhook could not be reached: {reason}.") from error
    if not 200 <= status < 300:
        raise mail.DeliveryError(f"The webhook answered {status}.")


def _send(session: Session, settings: Settings, delivery: AlertDelivery) -> None:
    alert = get_alert(session=session, alert_id=delivery.alert_id)
    if delivery.channel == "webhook":
        _post_webhook(delivery.target, _payload(session, settings, alert))
        return
    if "@" not in delivery.target:
        raise mail.DeliveryError("Nobody to e-mail: give the rule recipients, or the model's builders and the "
                                 "managers an e-mail address on the Users page.")
    body = "\n".join([
        alert.message, "",
        f"Rule: {alert.rule_description} ({SEVERITIES[alert.severity].lower()})",
        f"Value: {_format(alert.metric, alert.value)}",
        f"Model: {alert.model_name} version {alert.version_number}",
        f"Batch: {alert.batch_id or '—'}; raised {alert.created_at:%Y-%m-%d %H:%M} UTC",
        "", f"Acknowledge or resolve it in Steward: {settings.app_url.rstrip('/')}/alerts"])
    mail.send_email(session=session, settings=settings, to=[delivery.target],
                    subject=f"[Steward] {SEVERITIES[alert.severity]}: {alert.model_name} — {alert.rule_description}",
                    body=body)


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    """Take a due delivery for one attempt, so two processes never send it twice at once."""
    result = session.execute(update(AlertDelivery).where(
        col(AlertDelivery.id) == delivery_id, col(AlertDelivery.status).in_(("pending", "retrying")),
        col(AlertDelivery.next_attempt_at) <= now).values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS)))
    session.commit()
    return result.rowcount == 1


def _attempt(session: Session, settings: Settings, delivery_id: int, now: datetime) -> None:
    delivery = session.get(AlertDelivery, delivery_id, populate_existing=True)
    error: str | None = None
    try:
        _send(session, settings, delivery)
    except mail.DeliveryError as failed:
        error = str(failed)
    except Exception as failed:  # noqa: BLE001 - whatever happened, the attempt is recorded and retried
        error = f"Unexpected problem: {type(failed).__name__}: {failed}"
    delivery = session.get(AlertDelivery, delivery_id, populate_existing=True)
    delivery.attempts += 1
    if error is None:
        delivery.status, delivery.sent_at, delivery.next_attempt_at, delivery.last_error = "sent", utcnow(), None, None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.last_error, delivery.next_attempt_at = "failed", error[:2000], None
        alert = session.get(Alert, delivery.alert_id)
        notifications.notify(session, user_ids=_admins(session), page="alerts",
                             message=f"Alert {alert.id} could not be sent by {CHANNELS[delivery.channel].lower()} to "
                                     f"{delivery.target} after {delivery.attempts} attempts: {error}")
    else:
        delivery.status, delivery.last_error = "retrying", error[:2000]
        delivery.next_attempt_at = now + timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
    session.add(delivery)
    audit.record_event(session, actor=MONITOR, action=f"alert.delivery.{delivery.status}", entity_type="alert",
                       entity_id=delivery.alert_id, details={"delivery": delivery.id, "channel": delivery.channel,
                                                             "target": delivery.target, "attempt": delivery.attempts,
                                                             "error": error})
    session.commit()


def deliver_due(*, session: Session, settings: Settings, now: datetime | None = None,
                alert_ids: Iterable[int] | None = None) -> list[DeliveryPublic]:
    """Attempt every e-mail and webhook delivery that is due (of ``alert_ids`` only, when given)."""
    now = now or utcnow()
    query = select(AlertDelivery.id).where(col(AlertDelivery.status).in_(("pending", "retrying")),
                                           col(AlertDelivery.next_attempt_at) <= now).order_by(col(AlertDelivery.id))
    if alert_ids is not None:
        query = query.where(col(AlertDelivery.alert_id).in_(list(alert_ids)))
    attempted = []
    for delivery_id in session.exec(query).all():
        if _claim(session, delivery_id, now):
            _attempt(session, settings, delivery_id, now)
            attempted.append(delivery_id)
    return [_delivery_public(session.get(AlertDelivery, i)) for i in attempted]


def retry_delivery(*, session: Session, settings: Settings, actor: UserPublic, delivery_id: int) -> DeliveryPublic:
    """Try a failed or waiting delivery again now (administrators), e.g. after fixing the SMTP settings."""
    require_role(actor, Role.admin)
    delivery = session.get(AlertDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.")
    if delivery.status == "sent":
        raise Conflict(f"Delivery {delivery_id} was already sent.")
    now = utcnow()
    delivery.status, delivery.next_attempt_at = "retrying", now
    session.add(delivery)
    audit.record_event(session, actor=actor, action="alert.delivery.retry", entity_type="alert",
                       entity_id=delivery.alert_id, details={"delivery": delivery.id})
    session.commit()
    if _claim(session, delivery_id, now):
        _attempt(session, settings, delivery_id, now)
    return _delivery_public(session.get(AlertDelivery, delivery_id, populate_existing=True))


def list_deliveries(*, session: Session, project_id: int, limit: int = 200) -> list[DeliveryPublic]:
    """The project's e-mail and webhook deliveries, newest first: the delivery log."""
    query = (select(AlertDelivery).join(Alert, Alert.id == AlertDelivery.alert_id)
             .join(RegisteredModel, RegisteredModel.id == Alert.model_id)
             .where(RegisteredModel.project_id == project_id).order_by(col(AlertDelivery.id).desc()).limit(limit))
    return [_delivery_public(row) for row in session.exec(query)]

