"""Moved to :mod:`seglite.postprocess`; these names stay importable from here for code not
yet updated. New code imports ``seglite.postprocess``."""

from .postprocess import (  # noqa: F401
    ArgmaxKernel,
    argmax_scores,
    softmax,
    upsample_bilinear,
    upsample_category,
    upsample_ids,
)
