"""Per-class precision, recall and F1 from a confusion matrix equal scikit-learn's report."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report as sklearn_report
from sklearn.metrics import confusion_matrix

from convscope.report.classification import classification_report


def test_equals_scikit_learn_on_random_predictions() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 400)
    predicted = np.where(rng.random(400) < 0.6, truth, rng.integers(0, 5, 400))
    predicted[predicted == 4] = 3  # class 4 is never predicted: precision 0 by convention
    names = ("a", "b", "c", "d", "e")
    ours = classification_report(confusion_matrix(truth, predicted, labels=range(5)), names)
    theirs = sklearn_report(
        truth, predicted, labels=range(5), target_names=names, output_dict=True, zero_division=0
    )
    for entry in ours["classes"]:
        expected = theirs[entry["class"]]
        assert entry["precision"] == pytest.approx(expected["precision"], abs=1e-4)
        assert entry["recall"] == pytest.approx(expected["recall"], abs=1e-4)
        assert entry["f1"] == pytest.approx(expected["f1-score"], abs=1e-4)
        assert entry["support"] == expected["support"]
    assert ours["classes"][4]["precision"] == 0.0
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-4)
    for ours_key, theirs_key in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        for metric, name in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours[ours_key][metric] == pytest.approx(theirs[theirs_key][name], abs=1e-4)
