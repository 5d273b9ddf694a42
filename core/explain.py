"""Explanations of a trained model with SHAP, grouped back to the columns a domain expert knows.

The explainer is chosen from the model and recorded: TreeExplainer for tree ensembles, LinearExplainer for
linear models, a permutation explainer on a sampled background for anything else. An averaging ensemble of
several models (``core.training.ensemble``) averages its members' values, grouped to input columns first: the
members are averaged on the scale their values are on, so the average is exact and additive too. Values are computed on
the model's own scale (log-odds for classifiers) and checked for additivity; for sentences and waterfalls
they are rescaled to probabilities, which keeps them additive. Samples are seeded and recorded, so an
explanation can be computed again and give the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from core.training.ensemble import is_ensemble

GLOBAL_ROWS = 1000          # rows explained for the global picture (fewer for very large forests)
BACKGROUND_ROWS = 200       # background for linear and permutation explainers
BEESWARM_POINTS = 300       # points per feature in the stored beeswarm
TOP_FEATURES = 10
_TREE_WORK = 3e9            # rough budget of tree-SHAP work for the global sample, to keep it to seconds
_CHUNK_VALUES = 5e6         # SHAP values held at once before grouping (a text model has thousands of columns)


@dataclass
class Explainer:
    method: str
    explain: Any            # transformed rows -> (values (n, features, outputs), base (n, outputs))
    scale: str              # "log-odds", "probability" or "value"
    members: list[str] | None = None  # an ensemble's members' methods


def feature_groups(pipeline: Pipeline) -> np.ndarray:
    """For every column the preprocessing outputs, the input column it came from.

    An ensemble's explainer already gives one value per input column, so its groups are the input columns.
    """
    if is_ensemble(pipeline.named_steps["model"]):
        return np.asarray(pipeline.named_steps["prepare"].columns_, dtype=object)
    ct = pipeline.named_steps["preprocess"]
    groups: list[str] = []
    for name, transformer, columns in ct.transformers_:
        piece = ct.output_indices_.get(name)
        if piece is None or piece.stop == piece.start or transformer == "drop":
            continue
        if isinstance(columns, str):  # a text column: every word or n-gram belongs to it
            groups += [columns] * (piece.stop - piece.start)
            continue
        names = transformer.get_feature_names_out(columns)
        for output in names:
            output = str(output).removeprefix("missingindicator_")
            groups.append(max((c for c in columns if output == c or output.startswith(f"{c}_")), key=len))
    return np.asarray(groups, dtype=object)


def _dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def members(pipeline: Pipeline) -> list[Pipeline]:
    """An ensemble's members as whole pipelines (prepare → preprocess → model), sharing the fitted steps."""
    prepare, model = pipeline.named_steps["prepare"], pipeline.named_steps["model"]
    return [Pipeline([("prepare", prepare), *member.steps]) for _name, member in model.members_]


def _tree_work_per_row(model) -> float:
    """Exact tree SHAP costs about trees × leaves × depth² per explained row (0 when not a forest)."""
    if is_ensemble(model):  # members too big for exact values are approximated (see make_explainer)
        work = [_tree_work_per_row(member.steps[-1][1]) for _name, member in model.members_]
        return float(sum(w for w in work if w * 50 <= _TREE_WORK))
    estimators = getattr(model, "estimators_", None)
    if estimators is None:
        return 0.0
    return float(sum(t.tree_.n_leaves * max(t.tree_.max_depth, 1) ** 2 for t in estimators))


def _tree_rows(model, wanted: int) -> int:
    """Fewer rows for big forests: tree SHAP costs about trees × leaves × depth² per row."""
    work = _tree_work_per_row(model)
    if not work or work * 50 > _TREE_WORK:
        return wanted  # explained with the fast approximation (see make_explainer)
    return int(np.clip(_TREE_WORK / max(work, 1), 50, wanted))


def make_explainer(pipeline: Pipeline, background: pd.DataFrame, seed: int) -> Explainer:
    """The explainer that suits the pipeline's model, built on ``background`` as given (callers sample it, with a
    recorded seed)."""
    import shap

    model = pipeline.named_steps["model"]
    if is_ensemble(model):
        return _ensemble_explainer(pipeline, background, seed)
    transform = _transformer(pipeline)
    family = type(model).__name__
    if family.startswith(("HistGradientBoosting", "RandomForest", "ExtraTrees")):
        explainer = shap.TreeExplainer(model)
        scale = "probability" if family.startswith(("RandomForest", "ExtraTrees")) and hasattr(
            model, "predict_proba") else ("log-odds" if hasattr(model, "predict_proba") else "value")
        # Forests too big for exact values within seconds get Saabas' approximation (also additive), and say so.
        approximate = _tree_work_per_row(model) * 50 > _TREE_WORK

        def explain(rows):
            result = explainer(_dense(rows), check_additivity=False, approximate=approximate)
            return _shape(result.values, result.base_values)

        return Explainer("TreeExplainer (approximate)" if approximate else "TreeExplainer", explain, scale)
    if family in ("LogisticRegression", "Ridge", "LinearRegression"):
        masker = shap.maskers.Independent(_dense(transform(background)), max_samples=len(background))
        explainer = shap.LinearExplainer(model, masker)

        def explain(rows):
            result = explainer(_dense(rows))
            values, base = result.values, result.base_values
            if values.ndim == 2 and hasattr(model, "classes_") and len(model.classes_) == 2:
                return _shape(values, base)  # one log-odds output for the second class
            return _shape(values, base)

        return Explainer("LinearExplainer", explain, "log-odds" if hasattr(model, "predict_proba") else "value")
    return _permutation_explainer(pipeline, background, seed)


def _ensemble_explainer(pipeline: Pipeline, background: pd.DataFrame, seed: int) -> Explainer:
    """The mean of the members' SHAP values per input column: exact, as the ensemble averages on their scale.

    It explains rows as the pipeline's ``prepare`` step gives them (see ``_transformer``) and returns one value per
    input column, so :func:`feature_groups` of an ensemble is the input columns.
    """
    views = members(pipeline)
    explainers = [make_explainer(view, background, seed) for view in views]
    scales = {e.scale for e in explainers}
    if scales != {pipeline.named_steps["model"].scale}:  # the ensemble's own guarantee; never expected to fail
        raise ValueError(f"ensemble members explained on {scales}, not on the ensemble's scale")
    columns = list(pipeline.named_steps["prepare"].columns_)
    groups = [feature_groups(view) for view in views]

    outputs = len(getattr(pipeline.named_steps["model"], "classes_", [None]))

    def explain(rows: pd.DataFrame):
        total = base = None
        for view, explainer, member_groups in zip(views, explainers, groups, strict=True):
            grouped, member_base = _explain_grouped(explainer, view.named_steps["preprocess"].transform(rows),
                                                    member_groups, columns, outputs)
            total = grouped if total is None else total + grouped
            base = member_base if base is None else base + member_base
        return total / len(views), base / len(views)

    return Explainer(f"Average of {len(views)} models' SHAP values", explain, scales.pop(),
                     members=[e.method for e in explainers])


def _permutation_explainer(pipeline: Pipeline, background: pd.DataFrame, seed: int) -> Explainer:
    import shap
    from threadpoolctl import threadpool_limits

    model = pipeline.named_steps["model"]
    dense_background = _dense(_transformer(pipeline)(background.sample(min(len(background), 50), random_state=seed)))
    predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    explainer = shap.PermutationExplainer(lambda rows: predict(rows), shap.maskers.Independent(dense_background),
                                          seed=seed)

    def explain(rows):
        with threadpool_limits(limits=1):  # BLAS threads fighting the permutations make it many times slower
            result = explainer(_dense(rows), max_evals=2 * _dense(rows).shape[1] + 1, silent=True)
        return _shape(result.values, result.base_values)

    return Explainer("PermutationExplainer", explain, "probability" if hasattr(model, "predict_proba") else "value")


def _transformer(pipeline: Pipeline):
    """The rows the explainer takes: transformed by the preprocessing (an ensemble's members each do their own)."""
    prepare = pipeline.named_steps["prepare"]
    if is_ensemble(pipeline.named_steps["model"]):
        return prepare.transform
    preprocess = pipeline.named_steps["preprocess"]
    return lambda frame: preprocess.transform(prepare.transform(frame))


def _shape(values, base) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    base = np.asarray(base, dtype=float)
    if values.ndim == 2:
        values = values[:, :, None]
    if base.ndim == 0:
        base = np.full((values.shape[0], 1), float(base))
    elif base.ndim == 1:
        base = base[:, None] if base.shape[0] == values.shape[0] else np.tile(base, (values.shape[0], 1))
    return values, base


def _grouped(values: np.ndarray, groups: np.ndarray, columns: list[str]) -> np.ndarray:
    """Sum the transformed columns' SHAP values per input column: (n, outputs) per column, exact."""
    return np.stack([values[:, groups == column, :].sum(axis=1) for column in columns], axis=1)


def _explain_grouped(explainer: Explainer, transformed, groups: np.ndarray, columns: list[str],
                     outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values grouped to input columns, (n, columns, outputs), and base values, (n, outputs).

    Chunk by chunk: rows × transformed columns × classes of a text model would not fit in memory at once.
    """
    step = max(1, int(_CHUNK_VALUES // (transformed.shape[1] * max(outputs, 1))))
    pieces = []
    for start in range(0, transformed.shape[0], step):
        values, chunk_base = explainer.explain(transformed[start:start + step])
        pieces.append((_grouped(values, groups, columns), chunk_base))
    return np.concatenate([g for g, _ in pieces]), np.concatenate([b for _, b in pieces])


def _output_index(scale_outputs: int, classes: list[str] | None, task: str) -> list[int]:
    """Which explainer outputs belong to which class (binary log-odds models have a single output)."""
    if task == "regression" or scale_outputs == 1:
        return [0]
    return list(range(scale_outputs))


def _model_output(pipeline: Pipeline, frame: pd.DataFrame, explainer: Explainer, outputs: int) -> np.ndarray:
    model = pipeline.named_steps["model"]
    rows = _transformer(pipeline)(frame)
    rows = rows if is_ensemble(model) else _dense(rows)  # an ensemble's members take the prepared frame
    if explainer.scale == "value":
        return np.asarray(model.predict(rows), dtype=float)[:, None]
    if explainer.scale == "probability":
        return model.predict_proba(rows)
    margin = model.decision_function(rows)
    margin = np.asarray(margin, dtype=float)
    return margin[:, None] if margin.ndim == 1 else margin


def explain_global(pipeline: Pipeline, frame: pd.DataFrame, *, task: str, classes: list[str] | None,
                   seed: int, rows: int = GLOBAL_ROWS, background_rows: int = BACKGROUND_ROWS) -> dict[str, Any]:
    """Mean |SHAP| per input column (per class for multiclass), beeswarm and dependence data, additivity."""
    columns = list(pipeline.named_steps["prepare"].columns_)
    model = pipeline.named_steps["model"]
    wanted = _tree_rows(model, rows)
    sample = frame.sample(min(len(frame), wanted), random_state=seed)
    background = frame.sample(min(len(frame), background_rows), random_state=seed + 1)
    explainer = make_explainer(pipeline, background, seed)
    grouped, base = _explain_grouped(explainer, _transformer(pipeline)(sample), feature_groups(pipeline), columns,
                                     len(classes or []))
    outputs = grouped.shape[2]
    output = _model_output(pipeline, sample, explainer, outputs)
    reference = output if output.shape[1] == outputs else output[:, -outputs:]
    additivity = float(np.abs(grouped.sum(axis=1) + base - reference).max())
    labels = _output_labels(outputs, classes, task)
    importance = {label: dict(sorted(((c, float(np.abs(grouped[:, i, k]).mean())) for i, c in enumerate(columns)),
                                     key=lambda item: -item[1]))
                  for k, label in enumerate(labels)}
    # Binary: the positive class; regression: the one output. Only multiclass sums |SHAP| over the classes.
    focus = len(labels) - 1 if task == "binary" or len(labels) == 1 else None
    overall = (np.abs(grouped).mean(axis=(0, 2)) if focus is None else np.abs(grouped[:, :, focus]).mean(axis=0))
    order = [columns[i] for i in np.argsort(-overall)]
    types = pipeline.named_steps["prepare"].types
    charted = [c for c in order if types.get(c) != "text"][:TOP_FEATURES]  # free text has no "value" to plot
    found = {
        "method": explainer.method, "scale": explainer.scale, "rows_explained": len(sample),
        "background_rows": len(background), "seed": seed, "outputs": labels,
        "importance": importance,
        "overall": {c: float(overall[columns.index(c)]) for c in order},
        "base_value": [float(b) for b in base.mean(axis=0)],
        "beeswarm": _beeswarm(sample, grouped, columns, charted, focus, seed),
        "additivity_max_error": additivity, "additive": additivity < 1e-6 * max(1.0, float(np.abs(reference).max())),
    }
    if explainer.members:
        found["member_methods"] = explainer.members
    return found


def _output_labels(outputs: int, classes: list[str] | None, task: str) -> list[str]:
    if task == "regression" or classes is None:
        return ["prediction"]
    if outputs == 1:
        return [str(classes[1])]
    return [str(c) for c in classes]


def _beeswarm(sample: pd.DataFrame, grouped: np.ndarray, columns: list[str], top: list[str], focus: int | None,
              seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(sample), size=min(len(sample), BEESWARM_POINTS), replace=False)
    points = []
    for column in top:
        index = columns.index(column)
        raw = sample[column].iloc[chosen]
        numeric = pd.api.types.is_numeric_dtype(raw)
        # Categories are ranked in sorted order, so every dot gets a colour and a size.
        ranks = (raw if numeric else raw.astype("string")).rank(pct=True, method="dense")
        for position, row in enumerate(chosen):
            value = grouped[row, index, focus] if focus is not None else np.abs(grouped[row, index, :]).sum()
            shown = raw.iloc[position]
            points.append({"feature": column, "shap": float(value),
                           "value": None if pd.isna(shown) else (float(shown) if numeric else str(shown)),
                           "relative": None if pd.isna(ranks.iloc[position]) else float(ranks.iloc[position])})
    return points


# ── one record ──────────────────────────────────────────────────────────────────────────────────────


def explain_record(pipeline: Pipeline, record: pd.DataFrame, background: pd.DataFrame, *, task: str,
                   classes: list[str] | None, seed: int, top: int = 6) -> dict[str, Any]:
    """A waterfall from the base value to this record's prediction, and a sentence in plain words."""
    columns = list(pipeline.named_steps["prepare"].columns_)
    explainer = make_explainer(pipeline, background.sample(min(len(background), BACKGROUND_ROWS),
                                                           random_state=seed), seed)
    values, base = explainer.explain(_transformer(pipeline)(record))
    grouped = _grouped(values, feature_groups(pipeline), columns)[0]     # (columns, outputs)
    model = pipeline.named_steps["model"]
    if task == "regression":
        k, predicted, label = 0, float(pipeline.predict(record)[0]), None
        contributions, start, end = grouped[:, 0], float(base[0, 0]), float(pipeline.predict(record)[0])
    else:
        proba = pipeline.predict_proba(record)[0]
        k_class = int(np.argmax(proba))
        label, predicted = str(model.classes_[k_class]), float(proba[k_class])
        k = 0 if grouped.shape[1] == 1 else k_class
        contributions, start, end = _to_probability(grouped, base[0], k, explainer.scale, proba, k_class)
    items = sorted(zip(columns, contributions, strict=True), key=lambda item: -abs(item[1]))
    steps = [{"feature": c, "value": _shown(record[c].iloc[0]), "contribution": float(v)} for c, v in items]
    return {"method": explainer.method, "task": task, "predicted": label if label is not None else predicted,
            "probability": predicted if label is not None else None, "base": start, "output": end,
            "steps": steps, "sentence": sentence(task, label, predicted, steps[:top]),
            "terms": record_terms(pipeline, record, label) if label is not None else {}}


def _to_probability(grouped: np.ndarray, base: np.ndarray, k: int, scale: str, proba: np.ndarray,
                    k_class: int) -> tuple[np.ndarray, float, float]:
    """Rescale log-odds contributions so they add up from the base probability to the predicted one.

    ``grouped`` is (columns, outputs). The rescaling factor is always positive, so a column that raises the
    predicted class's log-odds also raises its probability.
    """
    target = float(proba[k_class])
    if scale == "probability":
        return grouped[:, k], float(base[k]), target
    if len(base) == 1:  # one log-odds output, for the second class
        values, base_probability = grouped[:, 0], float(1 / (1 + np.exp(-base[0])))
        if k_class == 0:
            values, base_probability = -values, 1 - base_probability
    else:  # one output per class (softmax): the base probability is the softmax of the base margins
        values, base_probability = _log_probability_shares(grouped, base, k), float(_softmax(base)[k])
    total = values.sum()
    factor = (target - base_probability) / total if abs(total) > 1e-12 else 0.0
    return values * factor, float(base_probability), target


def _softmax(margins: np.ndarray) -> np.ndarray:
    shifted = np.exp(margins - margins.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _log_probability_shares(grouped: np.ndarray, base: np.ndarray, k: int, steps: int = 256) -> np.ndarray:
    """Each column's share of the change in log p_k between the base margins and the record's margins.

    log p_k = m_k - logsumexp(m). Along the straight path m(t) = base + t * total, the change of logsumexp is
    the integral of softmax(m(t)) · total, so column j's share is its class-k value minus the path-averaged
    probabilities · its values. The shares add up to the change in log p_k, whose sign is that of the change
    in p_k. (The class-k margin alone can rise while p_k falls, when another class's margin rises more.)
    """
    total = grouped.sum(axis=0)
    along = (np.arange(steps) + 0.5) / steps
    mean_probability = _softmax(base[None, :] + along[:, None] * total[None, :]).mean(axis=0)
    return grouped[:, k] - grouped @ mean_probability


def _shown(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def _words(name: str) -> str:
    return re.sub(r"[_\s]+", " ", name).strip()


def _format(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)


def sentence(task: str, label: str | None, predicted: float, steps: list[dict[str, Any]]) -> str:
    """E.g. "Predicted 'yes' with probability 0.82. The main reasons: hours usual 40 (raises it by 0.21)…"."""
    head = (f"Predicted {predicted:,.2f}." if task == "regression"
            else f"Predicted {label!r} with probability {predicted:.2f}.")
    raising = [s for s in steps if s["contribution"] > 0]
    lowering = [s for s in steps if s["contribution"] < 0]
    parts = []
    def amount(value: float) -> str:
        return f"{abs(value):,.0f}" if task == "regression" and abs(value) >= 100 else f"{abs(value):.2f}"

    if raising:
        parts.append("The main reasons: " + ", ".join(
            f"{_words(s['feature'])} {_format(s['value'])} (raises it by {amount(s['contribution'])})"
            for s in raising))
    if lowering:  # the lead-in also when every main reason lowers it (the prediction is below the average)
        parts.append(("" if parts else "The main reasons: ") + ", ".join(
            f"{_words(s['feature'])} {_format(s['value'])} lowers it by {amount(s['contribution'])}"
            for s in lowering))
    return " ".join([head, "; ".join(parts) + "."]) if parts else head


# ── text models and stability ───────────────────────────────────────────────────────────────────────


def _average_terms(found: list[dict[str, Any]], key: str, top: int) -> dict[str, Any]:
    """An ensemble's terms: each term's weight or effect averaged over the members (0 where a member lacks it).

    A linear text ensemble averages its members' log-odds, so a term's average is its weight in the ensemble.
    """
    merged: dict[str, dict[str, float]] = {}
    for member in found:
        for label, sides in member.items():
            for side in ("up", "down"):
                for item in sides[side]:
                    merged.setdefault(label, {}).setdefault(item["term"], 0.0)
                    merged[label][item["term"]] += item[key] / len(found)
    return {label: {"up": [{"term": t, key: w} for t, w in sorted(terms.items(), key=lambda i: -i[1])[:top] if w > 0],
                    "down": [{"term": t, key: w} for t, w in sorted(terms.items(), key=lambda i: i[1])[:top] if w < 0]}
            for label, terms in merged.items()}


def text_terms(pipeline: Pipeline, classes: list[str] | None, top: int = 10) -> dict[str, Any]:
    """For linear text models: the words and n-grams that push each class up or down most."""
    model = pipeline.named_steps["model"]
    if is_ensemble(model):
        found = [text_terms(view, classes, top=10 * top) for view in members(pipeline)]
        found = [f for f in found if f]
        return _average_terms(found, "weight", top) if len(found) == len(model.members_) else {}
    ct = pipeline.named_steps["preprocess"]
    coef = getattr(model, "coef_", None)
    if coef is None:
        return {}
    names = np.asarray(ct.get_feature_names_out(), dtype=object)
    text_mask = np.array([n.startswith("text_") for n in names])
    if not text_mask.any():
        return {}
    terms = np.array([str(n).split("__")[-1] for n in names], dtype=object)
    coef = np.atleast_2d(coef)
    labels = [str(classes[1])] if coef.shape[0] == 1 and classes else [str(c) for c in (classes or [])]
    found = {}
    for row, label in zip(coef, labels, strict=False):
        weights = np.where(text_mask, row, 0.0)
        up = np.argsort(-weights)[:top]
        down = np.argsort(weights)[:top]
        found[label] = {"up": [{"term": str(terms[i]), "weight": float(weights[i])} for i in up if weights[i] > 0],
                        "down": [{"term": str(terms[i]), "weight": float(weights[i])} for i in down if weights[i] < 0]}
    return found


def record_terms(pipeline: Pipeline, record: pd.DataFrame, label: str, top: int = 6) -> dict[str, Any]:
    """For linear text models: the words of this record that push its predicted class up or down most."""
    model = pipeline.named_steps["model"]
    if is_ensemble(model):
        found = [record_terms(view, record, label, top=10 * top) for view in members(pipeline)]
        if not found or not all(found):
            return {}
        effects: dict[str, float] = {}
        for member in found:
            for item in member["terms"]:
                effects[item["term"]] = effects.get(item["term"], 0.0) + item["effect"] / len(found)
        ranked = sorted(effects.items(), key=lambda item: -abs(item[1]))[:top]
        return {"class": label, "terms": [{"term": t, "effect": e} for t, e in ranked if e]}
    coef = getattr(model, "coef_", None)
    if coef is None:
        return {}
    names = np.asarray(pipeline.named_steps["preprocess"].get_feature_names_out(), dtype=object)
    text_mask = np.array([str(n).startswith("text_") for n in names])
    if not text_mask.any():
        return {}
    coef = np.atleast_2d(coef)
    classes = [str(c) for c in model.classes_]
    row = coef[0] * (1 if label == classes[-1] else -1) if coef.shape[0] == 1 else coef[classes.index(label)]
    weights = _dense(_transformer(pipeline)(record))[0] * row * text_mask
    present = np.flatnonzero(weights)
    ranked = present[np.argsort(-np.abs(weights[present]))][:top]
    return {"class": label, "terms": [{"term": str(names[i]).split("__")[-1], "effect": float(weights[i])}
                                      for i in ranked]}


def top_overlap(rankings: list[list[str]], top: int = TOP_FEATURES) -> dict[str, Any]:
    """How much the top features agree across folds: mean pairwise share of shared top-k features."""
    tops = [set(r[:top]) for r in rankings]
    pairs = [len(a & b) / max(len(a | b), 1) for i, a in enumerate(tops) for b in tops[i + 1:]]
    return {"folds": len(rankings), "top": top, "mean_overlap": float(np.mean(pairs)) if pairs else None,
            "rankings": [r[:top] for r in rankings]}
