"""seglite: semantic image segmentation with the DeepLab family, from research to deployment."""

from .errors import SegliteError
from .result import SegmentationResult, Timings
from .segmenter import Segmenter

__version__ = "0.1.0"
__all__ = ["Segmenter", "SegmentationResult", "SegliteError", "Timings", "__version__"]
