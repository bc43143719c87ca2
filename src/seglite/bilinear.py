"""Moved to :mod:`seglite.postprocess.bilinear`; these names stay importable from here for
code not yet updated. New code imports ``seglite.postprocess.bilinear``."""

from .postprocess.bilinear import (  # noqa: F401
    align_corners_axis,
    axis,
    resize_hwc,
    squash,
    upsample_align_corners,
)
