"""A scikit-learn baseline for vector tasks: one gradient-boosted model per task (per label, per value),
trained on that task's labelled training rows and scored with edgemtl's own meters.

What the multi-task net must at least match: gradient boosting is the strong default on tables. The model
type follows from the task's definition, not its name: a categorical task with one class id per row gets a
classifier, one with a row of flags a classifier per flag, a value task a regressor per value.
scikit-learn is imported on first use (the `dev` extra): only the vector demo and benchmarks need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from edgemtl.data import VectorDataset
from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.metrics import make_meter
from edgemtl.tasks import TaskSpec

BASELINE = "scikit-learn HistGradientBoosting"


@contextmanager
def _one_thread() -> Iterator[None]:
    """Boosting's OpenMP threads fight the other processes of a shared 2-core machine; one is faster."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _fit_predict(task: TaskSpec, x: np.ndarray, target: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """The task's predictions for `x_test`, in the form its meter scores (ids, flags or values)."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError:
        raise ConfigError("the baseline needs scikit-learn: pip install 'edgemtl[dev]' (or scikit-learn)") from None
    categorical = kind_of(task).categorical
    missing = np.isnan(target) if np.issubdtype(target.dtype, np.floating) else target == kind_of(task).missing
    labelled = ~missing.reshape(len(target), -1).all(axis=1)  # the rows that carry the task's target
    x, target = x[labelled], target[labelled]

    def model(values: np.ndarray) -> np.ndarray:
        kind = HistGradientBoostingClassifier if categorical else HistGradientBoostingRegressor
        # Early stopping on a held-out tenth of the rows: as many rounds as help, the way it is used in practice.
        booster = kind(max_iter=300, learning_rate=0.1, early_stopping=True, random_state=seed)
        return booster.fit(x, values).predict(x_test)

    if target.ndim == 1:  # one class id per row
        return model(target).astype(target.dtype)
    return np.stack([model(target[:, j]) for j in range(target.shape[1])], axis=1).astype(np.float32)


def baseline_scores(train: VectorDataset, test: VectorDataset, tasks: tuple[TaskSpec, ...], seed: int = 0) -> dict:
    """Each task's metrics on `test` for the baseline trained on `train` (raw features: trees need no scaling)."""
    scores = {}
    with _one_thread():
        for task in tasks:
            predicted = _fit_predict(task, train.features, train.targets[task.name], test.features, seed)
            meter = make_meter(task)
            meter.update(predicted, test.targets[task.name])
            scores[task.name] = meter.compute()
    return scores
