"""The low-resolution argmax of class scores, where a model's graph did not compute it.

numpy's argmax over a short last axis costs about 15 ns per pixel in per-row overhead;
LiteRT's ARG_MAX kernel (a one-op graph shipped in assets) is several times faster on
(257, 257, 21) scores, so the Segmenter keeps one :class:`ArgmaxKernel`.
"""

from __future__ import annotations

import numpy as np

from ..files import ASSETS
from .ids import as_ids, id_dtype


class ArgmaxKernel:
    """Argmax over the last axis on LiteRT's ARG_MAX kernel. One interpreter, so one kernel
    per thread (each Segmenter owns one)."""

    def __init__(self):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        data = (ASSETS / "argmax.tflite").read_bytes()
        # XNNPACK has no ARG_MAX, so the default delegate would only announce itself on
        # stderr (a stray "INFO: Created ... XNNPACK delegate" line on ONNX and torch runs).
        self._interp = Interpreter(
            model_content=data,
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self._shape: tuple[int, ...] | None = None
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        shape = (1, *scores.shape)
        if shape != self._shape:
            self._interp.resize_tensor_input(self._in, list(shape))
            self._interp.allocate_tensors()
            self._shape = shape
        view = self._interp.tensor(self._in)()
        view[0] = scores
        del view
        self._interp.invoke()
        ids = self._interp.tensor(self._out)()[0]
        return ids.astype(id_dtype(scores.shape[-1]))  # a copy: ids is the kernel's memory


def argmax_scores(scores: np.ndarray, kernel: ArgmaxKernel | None = None) -> np.ndarray:
    """Argmax over the last axis of (h, w, C) scores, as ids (ids.id_dtype)."""
    if kernel is not None and scores.dtype == np.float32:
        return kernel(scores)
    return as_ids(scores.argmax(axis=-1), scores.shape[-1])
