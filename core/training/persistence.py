"""Saving and loading models with skops: never pickle, and only types Steward knows.

A model file is loaded only after the artifact store has checked its SHA-256 and only when every type it
contains is on :data:`TRUSTED_TYPES` (skops' defaults cover scikit-learn's plain estimators and arrays).
"""

from __future__ import annotations

import zipfile

import skops.io as sio
from sklearn.pipeline import Pipeline

from core.artifacts import ArtifactStore, StoredArtifact
from core.errors import IntegrityFailed

TRUSTED_TYPES = frozenset({
    "core.training.ensemble.AveragingClassifier",
    "core.training.ensemble.AveragingRegressor",
    "core.training.features.ColumnTyper",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
})


def save_model(store: ArtifactStore, pipeline: Pipeline) -> StoredArtifact:
    """Store a fitted pipeline; returns its artifact (hash and size)."""
    return store.put_bytes(sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED))


def load_model(store: ArtifactStore, sha256: str) -> Pipeline:
    """Load a stored pipeline after verifying its hash and the types it contains."""
    data = store.read_bytes(sha256)
    untrusted = set(sio.get_untrusted_types(data=data))
    refused = sorted(untrusted - TRUSTED_TYPES)
    if refused:
        raise IntegrityFailed(
            f"The model file {sha256[:12]}… contains code Steward does not trust ({', '.join(refused)}), "
            "so it was not loaded."
        )
    return sio.loads(data, trusted=sorted(untrusted))
