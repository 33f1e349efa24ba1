"""Evaluation of potentials: errors against labels, parity plots and learning curves, predictions
written as extended XYZ, rotation-equivariance measurement, and the `mlip-eval` command."""

from mlip.evaluate.errors import evaluate_potential
from mlip.evaluate.metrics import ErrorAccumulator
from mlip.evaluate.predictions import PredictionWriter

__all__ = ["ErrorAccumulator", "PredictionWriter", "evaluate_potential"]
