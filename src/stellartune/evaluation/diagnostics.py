"""What a report says about predictions beyond the metrics: calibration and likely label errors."""

from __future__ import annotations

import numpy as np

CALIBRATION_BINS = 10


def calibration(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The reliability diagram (mean confidence and accuracy of each non-empty bin, scikit-learn's
    uniform bins) and the expected calibration error: their gap, weighted by how many examples fall in
    each bin (scikit-learn has the curve but not the error)."""
    from sklearn.calibration import calibration_curve

    accuracy, mean_confidence = calibration_curve(correct.astype(int), confidence, n_bins=CALIBRATION_BINS)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.clip(np.searchsorted(edges[1:-1], confidence, side="right"), 0, CALIBRATION_BINS - 1)
    error = sum(abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
                for b in range(CALIBRATION_BINS) if (bins == b).any())
    return mean_confidence, accuracy, float(error)


def label_suspects(probabilities: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Examples whose gold label is probably wrong, most suspect first, and which of them confident
    learning flags (Northcutt et al. 2021): the model gives its gold label less than that label's
    average self-confidence while giving another label at least that one's. Ranked by the probability
    of the gold label ("self-confidence"), lowest first."""
    classes = probabilities.shape[1]
    thresholds = np.array([probabilities[gold == k, k].mean() if (gold == k).any() else 1.0 for k in range(classes)])
    self_confidence = probabilities[np.arange(len(gold)), gold]
    confident_other = probabilities >= thresholds
    confident_other[np.arange(len(gold)), gold] = False
    flagged = (self_confidence < thresholds[gold]) & confident_other.any(1)
    order = np.argsort(self_confidence, kind="stable")
    return order, flagged[order]
