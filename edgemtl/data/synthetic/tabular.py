"""Synthetic health records: related tasks generated from shared latent factors, for the vector demo.

Why latent factors: multi-task learning pays when tasks share causes. Each record draws four hidden
factors (think metabolic load, fitness, inflammation, age-related decline); the twelve measured features
are noisy linear mixtures of them in their own raw units (years, kg/m², beats per minute...), and each
task is a different smooth, non-linear function of the same factors: a risk class, a blood-pressure value
and three condition flags. A net that recovers the factors once serves every task; a per-task model must
recover them from its own labels alone, and each task is labelled on only part of the rows (partial
labels), as real records are. Seeded: the same table on every machine. NumPy only.
"""

from __future__ import annotations

import numpy as np

from edgemtl.data.vectors import VectorDataset
from edgemtl.features import VECTOR
from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskKind, TaskSpec

LATENT_FACTORS = 4
#: (name, mean, scale) of each measured feature, in raw units: standardization must cope with their spread.
FEATURES = (
    ("age", 52.0, 14.0),
    ("bmi", 27.0, 4.5),
    ("heart_rate", 72.0, 9.0),
    ("glucose", 100.0, 18.0),
    ("cholesterol", 195.0, 32.0),
    ("hdl", 52.0, 11.0),
    ("triglycerides", 140.0, 45.0),
    ("crp", 2.5, 1.6),
    ("sleep_hours", 7.0, 1.1),
    ("daily_steps", 7500.0, 2800.0),
    ("vo2max", 38.0, 7.0),
    ("waist_cm", 94.0, 12.0),
)
FEATURE_NAMES = tuple(name for name, _, _ in FEATURES)
TABULAR_TASKS = (
    TaskSpec("risk", TaskKind.CLASSIFICATION, ("low", "medium", "high")),
    # Its loss is a squared error in mmHg² (~20 once trained) beside cross-entropies of ~0.6: weighted down so
    # that no task's gradient drowns the others' in the shared trunk.
    TaskSpec("pressure", TaskKind.REGRESSION, ("systolic",), weight=0.05),
    TaskSpec("conditions", TaskKind.MULTILABEL, ("diabetes", "hypertension", "sleep_apnea")),
)
FEATURE_NOISE = 0.35  # per-feature noise, in units of a factor's spread: features never pin the factors down
SPLIT_ROWS = {"train": 3000, "val": 600, "test": 1500}


def _tasks_of(z: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each task's targets from the factors (N, 4): smooth non-linear functions plus label noise."""
    count = len(z)
    score = z[:, 0] + 0.6 * z[:, 1] * z[:, 2] + 0.5 * np.sin(2.0 * z[:, 3]) + rng.normal(0, 0.3, count)
    risk = np.digitize(score, np.quantile(score, [0.45, 0.8])).astype(np.int64)
    pressure = 122 + 9 * z[:, 0] - 4 * z[:, 1] ** 2 + 7 * np.tanh(z[:, 2] + z[:, 3]) + rng.normal(0, 2.5, count)
    logits = np.stack(
        [
            1.6 * z[:, 0] + 0.8 * z[:, 0] * z[:, 3] - 1.0,
            1.2 * z[:, 0] - 1.2 * z[:, 1] + 0.6 * z[:, 2] ** 2 - 1.0,
            1.4 * z[:, 2] - 0.8 * z[:, 1] + 0.5 * z[:, 3] - 0.8,
        ],
        axis=1,
    )
    flags = (rng.random(logits.shape) < 1 / (1 + np.exp(-3 * logits))).astype(np.float32)
    return {"risk": risk, "pressure": pressure.astype(np.float32)[:, None], "conditions": flags}


def make_table(split_rows: dict[str, int] | None = None, seed: int = 0, labelled_share: float = 0.5) -> VectorDataset:
    """A table of records with a split column (train, val, test rows as `split_rows` says).

    Each task keeps its target on `labelled_share` of the training rows (drawn per task), and on every
    validation and test row, so the held-out scores are measured on full labels.
    """
    split_rows = dict(split_rows or SPLIT_ROWS)
    rng = np.random.default_rng(seed)
    count = sum(split_rows.values())
    mixing = rng.normal(0, 1, (LATENT_FACTORS, len(FEATURES))) / np.sqrt(LATENT_FACTORS)
    z = rng.normal(0, 1, (count, LATENT_FACTORS))
    unit = z @ mixing + rng.normal(0, FEATURE_NOISE, (count, len(FEATURES)))
    means, scales = (np.array([f[i] for f in FEATURES]) for i in (1, 2))
    features = (means + scales * unit).astype(np.float32)
    targets = _tasks_of(z, rng)
    splits = np.concatenate([np.full(n, name) for name, n in split_rows.items()])
    training = np.flatnonzero(splits == "train")
    for task in TABULAR_TASKS:  # partial labels: each task loses its own share of the training rows
        dropped = rng.choice(training, round(len(training) * (1 - labelled_share)), replace=False)
        targets[task.name][dropped] = kind_of(task).missing
    info = {"row": np.arange(2, count + 2), "split": splits.astype(str), "group": np.full(count, "", dtype=str)}
    return VectorDataset(features, targets, FEATURE_NAMES, info, {"data": "synthetic", "input": VECTOR})
