"""PNG plots of a run or an evaluation: curves, confusion matrices, per-class scores, predictions.

Matplotlib and NumPy only, no PyTorch, so `edgemtl eval` of an exported file draws the same plots as
training does without loading torch. Matplotlib is imported on first use: commands that never plot
(export, predict) do not pay for it.
"""

from edgemtl.plots.history import plot_history
from edgemtl.plots.predictions import PREDICTION_SAMPLES, engine_predictions, plot_predictions
from edgemtl.plots.scores import plot_scores

__all__ = ["PREDICTION_SAMPLES", "engine_predictions", "plot_history", "plot_predictions", "plot_scores"]
