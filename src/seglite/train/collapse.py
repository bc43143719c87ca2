"""The collapse guard: say so when validation shows a model that learned nothing useful.

"The model predicts only background" after hours of training is a known trap
(tensorflow/models#3906, mmsegmentation#1714, segmentation_models.pytorch#176). Two
signs, checked on each validation's confusion matrix:
- one class is predicted for (nearly) every pixel while the ground truth is more varied;
- a class that is common in the ground truth has IoU 0 at two validations in a row.
The message names the likely causes in the order they usually are: the labels, the class
weights, the learning rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CAUSES = (
    "likely causes: labels (run seglite check on the dataset: 0/255 masks, colour masks, "
    "ids off by one), class weights (try --class-weights sqrt_median_frequency), learning "
    "rate (too high diverges to one class, too low never leaves it)"
)


class CollapseGuard:
    """Feed it each validation's confusion matrix (rows truth, columns prediction)."""

    def __init__(self, names: Sequence[str], *, one_class_share: float = 0.95,
                 common_share: float = 0.02) -> None:  # fmt: skip
        self.names = list(names)
        self.one_class_share, self.common_share = one_class_share, common_share
        self._zero_before: set[int] = set()

    def update(self, cm: np.ndarray) -> str | None:
        """A one-line warning, or None when the predictions look alive."""
        cm = np.asarray(cm)
        total = cm.sum()
        if total == 0:
            return None
        pred, truth = cm.sum(0), cm.sum(1)
        found = []
        top = int(np.argmax(pred))
        if pred[top] / total >= self.one_class_share and truth[top] / total < self.one_class_share:
            found.append(
                f"predicts {self._name(top)} for {100 * pred[top] / total:.1f}% of pixels "
                f"(it is {100 * truth[top] / total:.1f}% of the ground truth)"
            )
        tp = np.diag(cm)
        zero = {int(c) for c in np.flatnonzero((tp == 0) & (truth / total >= self.common_share))}
        stuck = sorted(zero & self._zero_before)
        self._zero_before = zero
        if stuck:
            names = ", ".join(
                f"{self._name(c)} ({100 * truth[c] / total:.0f}% of pixels)" for c in stuck
            )
            found.append(f"IoU stays 0 for common classes: {names}")
        return f"collapse: {'; '.join(found)}; {CAUSES}" if found else None

    def _name(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else f"class {i}"
