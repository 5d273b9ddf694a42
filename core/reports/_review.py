"""The review report: the responsible-ML self-assessment of a model version and its peer review."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from reportlab.platypus import Flowable, Paragraph

from core import charts, checklist, registry, review
from core.config import Settings
from core.errors import NotFound
from core.models import VersionStatus
from core.reports import _disclosure as disclosure
from core.reports import _template as t
from core.reports._common import DECIDED
from core.training import runs

EVIDENCE_WORDS = {"pass": "Pass", "warn": "Warning", "fail": "Fail", "not_applicable": "Not applicable",
                  "info": "Information"}
OPEN_SHOWN = 5  # open items listed on the summary page


class ReviewFacts:
    """Everything the report reads about one version's assessment, loaded once."""

    def __init__(self, *, session, settings: Settings, version_id: int) -> None:
        self.settings = settings
        self.version = registry.get_version(session=session, version_id=version_id)
        self.view = checklist.get_assessment(session=session, version_id=version_id)
        if self.view is None:
            raise NotFound(f"{self.version.label} has no self-assessment yet, so there is no review to report. "
                           "The builder starts it on the Checklist page.")
        self.run = runs.get_run(session=session, run_id=self.version.run_id)
        self.template = checklist.load_template()
        self.board = review.dashboard(session=session, settings=settings, version_id=version_id)
        self.rounds = review.round_views(session=session, version_id=version_id)
        self.decision = review.latest_decision(session=session, version_id=version_id)
        self.overrides = registry.list_overrides(session=session, version_id=version_id)
        self.transitions = registry.transitions(session=session, version_id=version_id)
        self.project = _project_name(session, self.version.project_id)
        last = self.rounds[-1] if self.rounds else None
        if last is not None:
            # What the reviewer judged: the answers and evidence frozen when the last round was submitted.
            self.items = last.snapshot["items"]
            self.verdicts = last.verdicts
            self.frozen = True
        else:
            evidence = checklist.evidence_for(session=session, settings=settings, version_id=version_id)
            self.items = {item.code: {"question": item.question, "dimension": item.dimension, "stage": item.stage,
                                      "answer": self.view.items[item.code].answer,
                                      "justification": self.view.items[item.code].justification,
                                      "answered_by": self.view.items[item.code].updated_by_name,
                                      "evidence": evidence[item.code].to_dict()}
                          for item in self.template.items}
            self.verdicts = {}
            self.frozen = False

    @property
    def snapshot_hash(self) -> str:
        if not self.rounds:
            return ""
        canonical = json.dumps(self.rounds[-1].snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def hashes(self) -> list[tuple[str, str]]:
        found = [("Model SHA-256", self.run.model_sha256 or ""), ("Data SHA-256", self.run.dataset_sha256 or "")]
        if self.rounds:
            found.append((f"Frozen evidence (round {self.rounds[-1].number}) SHA-256", self.snapshot_hash))
        return found


def _project_name(session, project_id: int) -> str:
    from core import projects

    return projects.get_project(session=session, project_id=project_id).name


def _item_status(entry: dict[str, Any]) -> str:
    return (entry.get("evidence") or {}).get("status", "info")


def dimension_rows(facts: ReviewFacts) -> list[dict[str, Any]]:
    """Per dimension: the light, the evidence statuses and the reviewer's verdicts, counted."""
    lights = {d["code"]: d for d in facts.board.dimensions}
    rows = []
    for code, name in facts.template.dimensions.items():
        codes = [c for c, entry in facts.items.items() if entry["dimension"] == code]
        statuses = Counter(_item_status(facts.items[c]) for c in codes)
        verdicts = Counter(facts.verdicts[c].verdict for c in codes if c in facts.verdicts)
        light = lights.get(code, {}).get("light", "grey")
        rows.append({"code": code, "name": name, "light": light, "items": len(codes),
                     "open": lights.get(code, {}).get("open", 0), "pass": statuses["pass"], "warn": statuses["warn"],
                     "fail": statuses["fail"], "agree": verdicts["agree"], "disagree": verdicts["disagree"],
                     "needs_work": verdicts["needs_work"], "no_verdict": len(codes) - sum(verdicts.values())})
    return rows


def light_table(facts: ReviewFacts) -> Flowable:
    rows = dimension_rows(facts)
    body, fills = [], {}
    for index, row in enumerate(rows):
        fills[(1, index)] = t.LIGHT_FILLS[row["light"]]
        open_words = f"{row['open']} of {row['items']} items open" if row["open"] else f"all {row['items']} in order"
        if not facts.verdicts:
            reviewer = "no verdicts yet"
        elif row["agree"] == row["items"]:
            reviewer = f"agrees on all {row['items']}"
        else:
            reviewer = (f"{row['agree']} agree, {row['disagree']} disagree, {row['needs_work']} needs work"
                        + (f", {row['no_verdict']} without verdict" if row["no_verdict"] else ""))
        body.append([f"{row['code']} · {row['name']}", t.light_cell(row["light"], open_words),
                     f"{row['pass']} pass, {row['warn']} warn, {row['fail']} fail", reviewer])
    return t.table(["Dimension", "Status", "Evidence", "Reviewer"], body, (1.55, 1.25, 1.05, 1.45), fills=fills,
                   zebra=False)


def _decision_sentences(facts: ReviewFacts) -> list[str]:
    sentences = []
    last = facts.rounds[-1] if facts.rounds else None
    decision = facts.decision
    if last is None:
        sentences.append("The self-assessment has not been submitted for peer review yet: no decision.")
    elif last.decision is None:
        sentences.append(f"Round {last.number}, submitted by {last.submitted_by_name} on "
                         f"{t.when(last.submitted_at, time=False)}, is waiting for the reviewer's decision.")
    if decision is not None:
        words = DECIDED.get(decision["decision"], decision["decision"])
        sentence = (f"Overall decision: {words.upper()} by {decision['decided_by_name']} on "
                    f"{t.when(decision['decided_at'], time=False)} (round {decision['round']} of "
                    f"{len(facts.rounds)}).")
        if decision.get("conditions"):
            sentence += f" Conditions: {t.shorten(decision['conditions'], 400)}"
        sentences.append(sentence)
        if decision.get("comment"):
            sentences.append(f"Reviewer's comment: {t.shorten(decision['comment'], 300)}")
    return sentences


def summary(facts: ReviewFacts, meta: t.Meta) -> list[Flowable]:
    s = t.styles()
    version = facts.version
    sentences = _decision_sentences(facts)
    statuses = Counter(_item_status(entry) for entry in facts.items.values())
    verdicts = Counter(v.verdict for v in facts.verdicts.values())
    which = "frozen at submission" if facts.frozen else "so far"
    evidence = (f"Of {len(facts.items)} checklist items, the evidence {which}"
                f" shows {statuses['pass']} passing, {statuses['warn']} with a warning and {statuses['fail']} "
                f"failing ({statuses['info'] + statuses['not_applicable']} for information or not applicable).")
    if facts.verdicts and verdicts["agree"] == len(facts.items):
        evidence += f" The reviewer agreed with the builder on all {len(facts.items)} items."
    elif facts.verdicts:
        evidence += (f" The reviewer agreed on {verdicts['agree']}, disagreed on {verdicts['disagree']} and asked for "
                     f"more work on {verdicts['needs_work']}.")
    sentences.append(evidence)
    sentences.append(f"Status of {version.label} in the registry: {registry.status_label(version)}.")
    if facts.board.reassess_by:
        sentences.append(f"The assessment is to be repeated by {t.when(facts.board.reassess_by, time=False)}.")
    if facts.overrides:
        gates = ", ".join(registry.GATES.get(o.gate, o.gate) for o in facts.overrides)
        sentences.append(f"An administrator overrode {t.plural(len(facts.overrides), 'promotion gate')}: {gates}.")
    if facts.view.reopened_reason and facts.view.status in checklist.EDITABLE:
        sentences.append(f"Note: {t.shorten(facts.view.reopened_reason, 300)}")
    flow: list[Flowable] = [*t.title_block(meta, f"{version.label} · responsible-ML assessment and peer review")]
    flow += [t.heading("In brief", 1), t.box(t.bullets(sentences, s.bullet))]
    flow += [t.heading("Status by dimension", 2), light_table(facts),
             Paragraph("Green: in order. Amber: open points (a warning, an unanswered item or “needs work”). "
                       "Red: problems (a failing check or a reviewer who disagrees).", s.small)]
    # Problems (a failing check, a reviewer who disagrees) before open points.
    open_items = sorted(facts.board.open_items,
                        key=lambda item: 0 if "fail" in item["Why open"] or "disagree" in item["Why open"] else 1)
    if open_items:
        flow.append(t.heading("Points for attention", 2))
        flow += t.bullets([f"{item['Item']} ({item['Why open']}): "
                           f"{t.shorten((facts.items.get(item['Item'], {}).get('evidence') or {}).get('summary'), 160)}"
                           for item in open_items[:OPEN_SHOWN]])
        if len(open_items) > OPEN_SHOWN:
            flow.append(t.para(f"… and {len(open_items) - OPEN_SHOWN} more, listed with the items.", s.small))
    flow.append(t.heading("What this report describes", 2))
    flow += t.identification(meta, extra=[
        ("Model version", f"{version.label} (run {version.run_id})"),
        ("Checklist", f"{facts.view.template_id} {facts.view.template_version}, "
                      f"{t.plural(facts.view.rounds, 'review round')}")])
    return flow


# ── details ─────────────────────────────────────────────────────────────────────────────────────────


def _evidence(entry: dict[str, Any], minimum: int) -> list[Flowable]:
    s = t.styles()
    found = entry.get("evidence") or {}
    status = EVIDENCE_WORDS.get(found.get("status"), found.get("status"))
    flow: list[Flowable] = [Paragraph(f"<b>Evidence: {t.esc(status)}</b> – {t.esc(found.get('summary', ''))}", s.body)]
    facts = found.get("facts") or {}
    if facts:
        flow.append(t.facts_table(list(facts.items()), widths=(1.4, 3)))
    table = found.get("table") or []
    if table:
        safe, suppressed = disclosure.table_rows(table, minimum)
        header = list(dict.fromkeys(key for row in safe for key in row))
        flow.append(t.table(header, [[row.get(key, "") for key in header] for row in safe]))
        if suppressed:
            flow.append(t.para(f"Disclosure control: {t.plural(suppressed, 'count')} below {minimum} (or revealing "
                               "one) suppressed.", s.small))
    chart = found.get("chart") or {}
    if chart.get("kind") == "subgroups" and chart.get("rows"):
        drawable = disclosure.chartable(chart["rows"], minimum)
        if drawable:
            flow.append(t.chart_image(charts.subgroup_chart(drawable), width=t.FRAME_WIDTH * 0.8))
    elif chart.get("kind") == "importance" and chart.get("overall"):
        flow.append(t.chart_image(charts.importance_chart(chart["overall"], chart.get("scale", "")),
                                  width=t.FRAME_WIDTH * 0.8))
    elif chart.get("kind") == "bars" and chart.get("rows"):
        if any(disclosure.below(row.get("value"), minimum) for row in chart["rows"]):
            flow.append(t.para(f"The chart of counts is left out: it would show counts below {minimum}.", s.small))
        elif not table:
            flow.append(t.chart_image(charts.counts_chart(chart["rows"], chart.get("title", "Rows")),
                                      width=t.FRAME_WIDTH * 0.8))
    return flow


def _items(facts: ReviewFacts) -> list[Flowable]:
    s = t.styles()
    minimum = facts.settings.min_cell_size
    flow: list[Flowable] = []
    source = (f"as frozen when round {facts.rounds[-1].number} was submitted" if facts.frozen
              else "as it stands now (not yet submitted, so not frozen)")
    flow += t.section("2. Items: self-assessment, evidence and the reviewer's verdict", t.para(
        f"Answers and evidence {source}. The reviewer's verdicts are those of round {facts.rounds[-1].number}."
        if facts.rounds else f"Answers and evidence {source}.", s.body))
    for code, name in facts.template.dimensions.items():
        flow.append(t.heading(f"{code} · {name}", 2))
        for item_code, entry in facts.items.items():
            if entry["dimension"] != code:
                continue
            stage = facts.template.stages.get(entry.get("stage"), entry.get("stage"))
            flow.append(t.heading(f"{item_code} · {entry['question']}", 3))
            flow.append(t.para(f"Stage: {stage}", s.small))
            answer = checklist.ANSWERS.get(entry.get("answer") or "", "not answered")
            by = f" (answered by {entry['answered_by']})" if entry.get("answered_by") else ""
            flow.append(Paragraph(f"<b>Self-assessment: {t.esc(answer)}</b>{t.esc(by)}", s.body))
            if entry.get("justification"):
                flow.append(t.para(entry["justification"], s.body))
            flow += _evidence(entry, minimum)
            verdict = facts.verdicts.get(item_code)
            if verdict is not None:
                text = f"<b>Reviewer ({t.esc(verdict.reviewer_name)}): {t.esc(review.VERDICTS[verdict.verdict])}</b>"
                if verdict.comment:
                    text += f" – {t.esc(verdict.comment)}"
                flow.append(Paragraph(text, s.verdict))
            elif facts.rounds:
                flow.append(Paragraph("<b>Reviewer:</b> no verdict", s.verdict))
            flow.append(t.spacer())
    return flow


def _rounds(facts: ReviewFacts) -> list[Flowable]:
    s = t.styles()
    flow: list[Flowable] = t.section("3. Review rounds")
    if not facts.rounds:
        return [*flow, t.para("No round yet: the self-assessment has not been submitted.", s.body)]
    body = [[str(r.number), f"{r.submitted_by_name}, {t.stamp(r.submitted_at)}",
             DECIDED.get(r.decision, "waiting for a decision") if r.decision else "waiting for a decision",
             f"{r.decided_by_name}, {t.stamp(r.decided_at)}" if r.decided_by_name else "–",
             r.conditions or "–", r.comment or "–"] for r in facts.rounds]
    flow.append(t.table(["No.", "Submitted (UTC)", "Decision", "Decided (UTC)", "Conditions", "Comment"], body,
                        (0.45, 1.3, 1.05, 1.3, 1.5, 1.5)))
    for earlier in facts.rounds[:-1]:
        objections = [v for v in earlier.verdicts.values() if v.verdict != "agree"]
        agreed = len(earlier.verdicts) - len(objections)
        flow.append(t.heading(f"Round {earlier.number}: the reviewer's verdicts", 3))
        flow.append(t.para(f"The reviewer agreed on {agreed} of {t.plural(len(earlier.verdicts), 'item')} judged"
                           + ("; the others:" if objections else "."), s.body))
        if objections:
            flow.append(t.table(["Item", "Verdict", "Comment"],
                                [[v.code, review.VERDICTS[v.verdict], v.comment or "–"] for v in objections],
                                (0.7, 0.9, 4.5)))
    return flow


def _signoff(facts: ReviewFacts) -> list[Flowable]:
    s = t.styles()
    run = facts.run
    decided = [r for r in facts.rounds if r.decision]
    promotions = [tr for tr in facts.transitions if tr.to_status == VersionStatus.production]
    last_round = facts.rounds[-1] if facts.rounds else None
    builder = (f"trained the model (run {run.id})" + (f"; submitted round {last_round.number} on "
                                                      f"{t.when(last_round.submitted_at, time=False)}"
                                                      if last_round else "; not submitted for review yet"))
    signed = [["Builder", last_round.submitted_by_name if last_round else run.created_by_name,
               t.stamp(last_round.submitted_at if last_round else run.created_at), builder]]
    if decided:
        last = decided[-1]
        signed.append(["Reviewer", last.decided_by_name or "–", t.stamp(last.decided_at),
                       f"{DECIDED.get(last.decision, last.decision)} (round {last.number})"])
    else:
        signed.append(["Reviewer", "–", "–", "no decision yet"])
    if promotions:
        signed.append(["Approver", promotions[-1].actor_name, t.stamp(promotions[-1].created_at),
                       f"promoted to production: {promotions[-1].reason}"])
    else:
        signed.append(["Approver", "–", "–", "not promoted to production"])
    flow: list[Flowable] = t.section("4. Sign-off", t.para(
        "As recorded in Steward's audit trail. The four-eyes rule is enforced: nobody reviews or promotes their own "
        "work.", s.small), t.table(["Role", "Name", "When (UTC)", "Signed off"], signed, (0.8, 1.1, 1.3, 3.4)))
    steps = [["Builder", run.created_by_name, t.stamp(run.created_at), f"trained the model (run {run.id})"]]
    steps += [["Builder", r.submitted_by_name, t.stamp(r.submitted_at), f"submitted round {r.number} for review"]
              for r in facts.rounds]
    steps += [["Reviewer", r.decided_by_name or "–", t.stamp(r.decided_at),
               f"{DECIDED.get(r.decision, r.decision)} (round {r.number})"] for r in decided]
    steps += [["Approver", tr.actor_name, t.stamp(tr.created_at), f"promoted to production: {tr.reason}"]
              for tr in promotions]
    steps.sort(key=lambda row: row[2])
    if len(steps) > len(signed):
        flow += [t.heading("Every step", 3),
                 t.table(["Role", "Name", "When (UTC)", "What"], steps, (0.8, 1.1, 1.3, 3.4))]
    flow += t.section("5. Gate overrides")
    if not facts.overrides:
        flow.append(t.para("No promotion gate of this version was overridden.", s.body))
    else:
        flow.append(t.table(["Gate", "Reason given", "By", "When (UTC)"],
                            [[registry.GATES.get(o.gate, o.gate), o.reason, o.actor_name, t.stamp(o.created_at)]
                             for o in facts.overrides], (1.4, 3.2, 0.9, 1.2)))
    return flow


def details(facts: ReviewFacts) -> list[Flowable]:
    s = t.styles()
    flow: list[Flowable] = t.section("1. Decision")
    sentences = _decision_sentences(facts)
    flow += [t.para(sentence, s.body) for sentence in sentences]
    flow.append(light_table(facts))
    flow += _items(facts)
    flow += _rounds(facts)
    flow += _signoff(facts)
    return flow


def build(*, session, settings: Settings, version_id: int, meta_for) -> tuple[ReviewFacts, t.Meta, bytes, int]:
    facts = ReviewFacts(session=session, settings=settings, version_id=version_id)
    meta = meta_for(facts.project, facts.version.label, facts.hashes)
    data, pages = t.render(meta, summary(facts, meta), details(facts))
    return facts, meta, data, pages
