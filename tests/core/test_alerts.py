"""Alerts: default and edited rules, alerts from monitoring reports, e-mail through a local SMTP server, webhook
posts to a local HTTP server, retries while a server is down, acknowledging and resolving, persistent drift."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core import alerts, auth, checklist, mail, notifications, pipelines, registry
from core.db import create_store_engine, session_scope
from core.errors import Conflict, InvalidInput, NotAllowed
from core.models import AlertDelivery, AlertRule, AppSetting, MonitoringReport, PredictionBatch, User, utcnow
from core.training import runs
from tests import production
from tests.servers import SmtpServer, WebhookServer, self_signed_certificate


@pytest.fixture
def settings(tmp_path_factory, tmp_path, monkeypatch):
    return production.use(production.template(tmp_path_factory), tmp_path, monkeypatch)


@pytest.fixture
def engine(settings):
    engine = create_store_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def team(session):
    for name in ("bea", "mo", "admin"):  # e-mail addresses for the default recipients
        user = session.exec(select(User).where(User.username == name)).one()
        user.email = f"{name}@stats.example.org"
        session.add(user)
    session.commit()
    return production.team(session)


@pytest.fixture
def model(session):
    return registry.find_model(session=session, name="employment")


@pytest.fixture
def version_id(session, model):
    return registry.get_model(session=session, model_id=model.id).production.id


@pytest.fixture
def webhook():
    server = WebhookServer()
    yield server
    server.stop()


@pytest.fixture
def smtp():
    server = SmtpServer(username="steward", password="mail password 123")
    yield server
    server.stop()


def report(session, version_id: int, *, judged: bool = True, status: str = "finished", rows: int = 500,
           **figures) -> int:
    """A finished monitoring report of a new batch of the version, with the figures given."""
    batch = PredictionBatch(project_id=1, version_id=version_id, channel="file", input_sha256="0" * 64, rows=rows)
    session.add(batch)
    session.flush()
    row = MonitoringReport(batch_id=batch.id, version_id=version_id, status=status, judged=judged, rows=rows,
                           **figures)
    session.add(row)
    session.commit()
    return row.id


def alert_notes(session, person):
    return [n for n in notifications.list_notifications(session=session, actor=person) if n.page == "alerts"]


def use_smtp(session, settings, team, server: SmtpServer, **extra):
    return mail.save_smtp(session=session, settings=settings, actor=team.admin, host="127.0.0.1", port=server.port,
                          sender="steward@stats.example.org", username=server.username or "",
                          password=server.password, starttls=extra.pop("starttls", False), **extra)


def drift_rule(session, team, model, **changes) -> AlertRule:
    [rule] = [r for r in alerts.list_rules(session=session, model_id=model.id) if r.metric == "drift_share"]
    values = {"metric": rule.metric, "direction": rule.direction, "threshold": rule.threshold,
              "severity": rule.severity, "channels": rule.channels, **changes}
    return alerts.save_rule(session=session, actor=team.bea, model_id=model.id, rule_id=rule.id, **values)


# ── rules ───────────────────────────────────────────────────────────────────────────────────────────


def test_promotion_gave_the_model_default_rules_fitted_to_its_test_results(session, model, version_id):
    rules = {r.metric: r for r in alerts.list_rules(session=session, model_id=model.id)}
    run = runs.get_run(session=session, run_id=registry.get_version(session=session, version_id=version_id).run_id)
    measured = run.evaluation["metrics"]["roc_auc"]

    assert set(rules) == {"drift_share", "performance"}
    assert (rules["drift_share"].threshold, rules["drift_share"].severity) == (0.3, "warning")
    performance = rules["performance"]
    assert (performance.column, performance.direction, performance.severity) == ("roc_auc", "below", "critical")
    assert performance.threshold == pytest.approx(measured["low"], abs=1e-4) and performance.triggers_retraining
    assert performance.description == f"ROC AUC (performance) below {performance.threshold:.3g}"
    assert all(r.channels == ["app"] and r.created_by_name == "mo" for r in rules.values())  # no SMTP set up yet


def test_rules_are_checked_and_only_builders_managers_and_admins_change_them(session, team, model):
    saved = alerts.save_rule(session=session, actor=team.mo, model_id=model.id, metric="column_drift",
                             column="hours_usual", threshold=0.2, severity="critical",
                             channels=["webhook", "app"], webhook_url="https://hooks.example.org/x")
    assert saved.channels == ["app", "webhook"] and saved.description == "Drift score of column hours_usual above 0.2"

    for bad, message in [({"metric": "mood", "threshold": 1}, "Choose what the rule watches"),
                         ({"metric": "drift_share", "threshold": 1.5}, "between 0 and 1"),
                         ({"metric": "column_drift", "threshold": 0.1}, "which input column"),
                         ({"metric": "performance", "column": "rmse", "threshold": 0.1}, "roc_auc"),
                         ({"metric": "volume", "threshold": 10, "channels": []}, "at least one channel"),
                         ({"metric": "volume", "threshold": 10, "channels": ["webhook"]}, "webhook address"),
                         ({"metric": "volume", "threshold": 10, "channels": ["email"], "recipients": ["nobody"]},
                          "not an e-mail address")]:
        with pytest.raises(InvalidInput, match=message):
            alerts.save_rule(session=session, actor=team.bea, model_id=model.id, **bad)
    with pytest.raises(NotAllowed):
        alerts.save_rule(session=session, actor=team.rita, model_id=model.id, metric="volume", threshold=1)

    alerts.set_rule_active(session=session, actor=team.bea, rule_id=saved.id, active=False)
    assert saved.id not in [r.id for r in alerts.list_rules(session=session, model_id=model.id, active_only=True)]


# ── evaluating reports ──────────────────────────────────────────────────────────────────────────────


def test_a_report_over_a_threshold_raises_one_alert_seen_by_builders_and_managers(session, settings, team,
                                                                                  version_id):
    quiet = alerts.evaluate_report(session=session, settings=settings,
                                   report_id=report(session, version_id, drift_share=0.1))
    assert quiet == []

    drifted = report(session, version_id, drift_share=0.45, performance={"metrics": {"roc_auc": {"value": 0.99}}})
    [alert] = alerts.evaluate_report(session=session, settings=settings, report_id=drifted)

    assert (alert.metric, alert.value, alert.severity, alert.status) == ("drift_share", 0.45, "warning", "open")
    assert alert.message == (f"employment v1, batch {alert.batch_id}: Share of drifted input columns above 0.3 "
                             "(value 0.45).")
    assert alerts.evaluate_report(session=session, settings=settings, report_id=drifted) == []  # once per report
    for person in (team.bea, team.mo):
        [note] = alert_notes(session, person)
        assert note.message.startswith("Warning alert: employment v1, batch")
    assert alert_notes(session, team.rita) == [] and alert_notes(session, team.admin) == []
    assert [a.id for a in alerts.list_alerts(session=session, project_id=alert.project_id)] == [alert.id]
    assert alerts.open_alert_counts(session=session, project_id=alert.project_id) == {alert.model_id: {"warning": 1}}


def test_small_unjudged_or_unfinished_reports_never_alert(session, settings, version_id):
    for made in (report(session, version_id, judged=False, drift_share=0.9, rows=40),
                 report(session, version_id, status="running", drift_share=0.9)):
        assert alerts.evaluate_report(session=session, settings=settings, report_id=made) == []


def test_each_kind_of_rule_reads_its_figure_from_the_report(session, settings, team, model, version_id):
    for values in ({"metric": "column_drift", "column": "age", "threshold": 0.2},
                   {"metric": "volume", "direction": "below", "threshold": 1000},
                   {"metric": "automation_rate", "direction": "below", "threshold": 0.6}):
        alerts.save_rule(session=session, actor=team.bea, model_id=model.id, severity="info", **values)
    made = report(session, version_id, drift_share=0.1, rows=500,
                  columns=[{"column": "age", "score": 0.35, "drifted": True},
                           {"column": "sex", "score": 0.01, "drifted": False}],
                  performance={"primary_metric": "roc_auc", "metrics": {"roc_auc": {"value": 0.5, "low": 0.4}},
                               "coding": {"automation_rate": 0.55}})

    raised = alerts.evaluate_report(session=session, settings=settings, report_id=made)

    assert sorted((a.metric, a.value) for a in raised) == [
        ("automation_rate", 0.55), ("column_drift", 0.35), ("performance", 0.5), ("volume", 500.0)]


# ── delivery ────────────────────────────────────────────────────────────────────────────────────────


def test_alerts_are_emailed_through_the_smtp_server_with_starttls_and_login(session, settings, team, model,
                                                                            version_id, smtp, tmp_path, monkeypatch):
    certificate = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the client trusts the test server's certificate
    smtp.certificate = certificate
    smtp.start()
    use_smtp(session, settings, team, smtp, starttls=True)
    drift_rule(session, team, model, channels=["app", "email"], recipients=["lfs-team@stats.example.org"])

    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.5))

    [delivery] = alert.deliveries
    assert delivery.last_error is None, delivery.last_error
    assert (delivery.channel, delivery.target, delivery.status, delivery.attempts) == (
        "email", "lfs-team@stats.example.org", "sent", 1)
    [received] = smtp.received
    assert (received.sender, received.recipients, received.authenticated_as, received.tls) == (
        "steward@stats.example.org", ["lfs-team@stats.example.org"], "steward", True)
    assert received.message["Subject"] == ("[Steward] Warning: employment — Share of drifted input columns above "
                                           "0.3")
    assert alert.message in received.message.get_content() and "/alerts" in received.message.get_content()


def test_without_recipients_the_models_people_are_emailed(session, settings, team, model, version_id, smtp):
    smtp.start()
    use_smtp(session, settings, team, smtp)
    drift_rule(session, team, model, channels=["email"])

    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.5))

    # bea built the model and owns the project, mo manages; the administrator is not among the model's people
    assert sorted(d.target for d in alert.deliveries) == ["bea@stats.example.org", "mo@stats.example.org"]
    assert all(d.status == "sent" for d in alert.deliveries)
    assert sorted(r.recipients[0] for r in smtp.received) == sorted(d.target for d in alert.deliveries)
    assert alert_notes(session, team.bea) == []  # no in-app channel chosen


def test_a_webhook_that_is_down_is_retried_with_pauses_until_it_answers(session, settings, team, model,
                                                                        version_id, webhook):
    drift_rule(session, team, model, channels=["app", "webhook"], webhook_url=webhook.url)

    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.5))

    [first] = alert.deliveries
    assert (first.status, first.attempts) == ("retrying", 1)
    assert "could not be reached" in first.last_error
    wait = first.next_attempt_at.replace(tzinfo=None) - first.created_at.replace(tzinfo=None)
    assert timedelta(seconds=50) < wait < timedelta(seconds=80)
    assert alerts.deliver_due(session=session, settings=settings) == []  # not due yet

    webhook.status = 503
    webhook.start()
    [second] = alerts.deliver_due(session=session, settings=settings, now=utcnow() + timedelta(seconds=61))
    assert (second.status, second.attempts, second.last_error) == ("retrying", 2, "The webhook answered 503 "
                                                                                  "Service Unavailable.")
    webhook.status = 200
    done = pipelines.scheduler_pass(engine=session.get_bind(), settings=settings,
                                    now=utcnow() + timedelta(seconds=61 + 301))
    [third] = done.deliveries
    assert (third.status, third.attempts, third.last_error) == ("sent", 3, None)
    posted = webhook.posts[-1]
    assert posted["content_type"] == "application/json" and posted["path"] == "/hooks/steward"
    assert {k: posted["json"][k] for k in ("alert_id", "model", "version", "severity", "metric", "value")} == {
        "alert_id": alert.id, "model": "employment", "version": 1, "severity": "warning", "metric": "drift_share",
        "value": 0.5}
    assert posted["json"]["project"] == "Labour force" and posted["json"]["url"].endswith("/alerts")


def test_a_delivery_that_keeps_failing_is_marked_failed_admins_are_told_and_it_can_be_retried(
        session, settings, team, model, version_id, smtp):
    drift_rule(session, team, model, channels=["email"], recipients=["lfs@stats.example.org"])
    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.5))
    assert "No SMTP server is set up" in alert.deliveries[0].last_error

    later = utcnow()
    for _ in range(alerts.MAX_ATTEMPTS - 1):
        later += timedelta(hours=5)
        alerts.deliver_due(session=session, settings=settings, now=later)
    delivery = session.get(AlertDelivery, alert.deliveries[0].id, populate_existing=True)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", alerts.MAX_ATTEMPTS, None)
    [told] = alert_notes(session, team.admin)
    assert f"Alert {alert.id} could not be sent by e-mail to lfs@stats.example.org" in told.message
    assert alerts.deliver_due(session=session, settings=settings, now=later + timedelta(days=9)) == []

    smtp.start()
    use_smtp(session, settings, team, smtp)
    with pytest.raises(NotAllowed):
        alerts.retry_delivery(session=session, settings=settings, actor=team.bea, delivery_id=delivery.id)
    retried = alerts.retry_delivery(session=session, settings=settings, actor=team.admin, delivery_id=delivery.id)
    assert (retried.status, retried.attempts) == ("sent", alerts.MAX_ATTEMPTS + 1)
    assert [r.recipients for r in smtp.received] == [["lfs@stats.example.org"]]
    assert [d.id for d in alerts.list_deliveries(session=session, project_id=alert.project_id)] == [delivery.id]


# ── SMTP settings ───────────────────────────────────────────────────────────────────────────────────


def test_smtp_settings_keep_the_password_encrypted_and_never_show_it(session, settings, team, smtp):
    smtp.start()
    shown = use_smtp(session, settings, team, smtp)

    assert shown.password_set and not hasattr(shown, "password") and shown.configured
    stored = session.get(AppSetting, "smtp", populate_existing=True).value
    assert stored["password"] and "mail password 123" not in str(stored)
    kept = mail.save_smtp(session=session, settings=settings, actor=team.admin, host="127.0.0.1", port=smtp.port,
                          sender="steward@stats.example.org", username="steward", password="", starttls=False)
    assert kept.password_set
    assert "127.0.0.1" in mail.send_test_email(session=session, settings=settings, actor=team.admin,
                                               to="ada@stats.example.org")
    assert smtp.received[-1].authenticated_as == "steward"  # the kept password still logs in

    with pytest.raises(NotAllowed):
        mail.save_smtp(session=session, settings=settings, actor=team.mo, host="x", port=25, sender="a@b.org")
    with pytest.raises(InvalidInput, match="not both"):
        mail.save_smtp(session=session, settings=settings, actor=team.admin, host="x", port=465,
                       sender="a@b.org", starttls=True, use_ssl=True)
    wrong = mail.save_smtp(session=session, settings=settings, actor=team.admin, host="127.0.0.1", port=smtp.port,
                           sender="steward@stats.example.org", username="steward", password="wrong password",
                           starttls=False)
    assert wrong.password_set
    with pytest.raises(mail.DeliveryError, match="refused the user name or password"):
        mail.send_test_email(session=session, settings=settings, actor=team.admin, to="ada@stats.example.org")
    cleared = mail.save_smtp(session=session, settings=settings, actor=team.admin, host="127.0.0.1", port=smtp.port,
                             sender="steward@stats.example.org", clear_password=True, starttls=False)
    assert not cleared.password_set


def test_starttls_asked_of_a_server_without_it_fails_with_a_clear_reason(session, settings, team, smtp):
    smtp.start()
    use_smtp(session, settings, team, smtp, starttls=True)

    with pytest.raises(mail.DeliveryError, match="does not offer STARTTLS"):
        mail.send_test_email(session=session, settings=settings, actor=team.admin, to="ada@stats.example.org")
    assert smtp.received == []


# ── acknowledging and resolving ─────────────────────────────────────────────────────────────────────


def test_alerts_are_acknowledged_and_resolved_with_who_when_and_a_note(session, settings, team, version_id):
    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.5))
    with pytest.raises(NotAllowed):
        alerts.acknowledge(session=session, actor=team.rita, alert_id=alert.id)

    seen = alerts.acknowledge(session=session, actor=team.bea, alert_id=alert.id, note="Looking at region codes.")
    assert (seen.status, seen.acknowledged_by_name) == ("acknowledged", "bea") and seen.acknowledged_at
    assert seen.note == "Acknowledged by bea: Looking at region codes."
    with pytest.raises(Conflict, match="already acknowledged"):
        alerts.acknowledge(session=session, actor=team.mo, alert_id=alert.id)
    with pytest.raises(InvalidInput, match="Write what was done"):
        alerts.resolve(session=session, actor=team.mo, alert_id=alert.id, note="")

    closed = alerts.resolve(session=session, actor=team.mo, alert_id=alert.id,
                            note="New region coding in the feed; fixed upstream.")
    assert (closed.status, closed.resolved_by_name, closed.acknowledged_by_name) == ("resolved", "mo", "bea")
    assert closed.resolved_at >= closed.acknowledged_at
    assert closed.note.endswith("Resolved by mo: New region coding in the feed; fixed upstream.")
    assert alerts.list_alerts(session=session, project_id=alert.project_id, statuses=("open", "acknowledged")) == []
    with pytest.raises(Conflict):
        alerts.resolve(session=session, actor=team.mo, alert_id=alert.id, note="Again, to be sure.")


# ── persistent drift ────────────────────────────────────────────────────────────────────────────────


def test_drift_on_three_batches_in_a_row_reopens_the_production_assessment(session, settings, team, version_id):
    def assessment_status() -> str:
        session.expire_all()
        return checklist.get_assessment(session=session, version_id=version_id).status

    alerts.evaluate_report(session=session, settings=settings, report_id=report(session, version_id, drift_share=0.5))
    alerts.evaluate_report(session=session, settings=settings, report_id=report(session, version_id, drift_share=0.1))
    alerts.evaluate_report(session=session, settings=settings, report_id=report(session, version_id, drift_share=0.6))
    alerts.evaluate_report(session=session, settings=settings, report_id=report(session, version_id, drift_share=0.7))
    assert assessment_status() == "approved"  # the quiet batch broke the streak

    [third] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report(session, version_id, drift_share=0.8))

    assert assessment_status() == "draft"
    reopened = checklist.get_assessment(session=session, version_id=version_id)
    assert reopened.reopened_reason.startswith("Drift persisted: “Share of drifted input columns above 0.3” fired "
                                               "on 3 batches in a row")
    assert "the self-assessment of v1 was re-opened" in alerts.get_alert(session=session, alert_id=third.id).note
    gate = {g.gate: g for g in registry.evaluate_gates(session=session, settings=settings,
                                                       version_id=version_id).gates}["review"]
    assert not gate.passed and "re-opened" in gate.reason
    assert any("was re-opened" in n.message for n in notifications.list_notifications(session=session,
                                                                                       actor=team.bea))


def test_the_monitoring_pseudo_user_is_recorded_in_the_audit_trail(session, settings, version_id):
    from core.models import AuditEvent

    alerts.evaluate_report(session=session, settings=settings, report_id=report(session, version_id, drift_share=0.5))

    event = session.exec(select(AuditEvent).where(AuditEvent.action == "alert.raise")).one()
    assert (event.actor_id, event.actor_name) == (None, "monitoring")
    assert auth.OPERATOR.username == "operator"  # the CLI operator is untouched
