"""PyTorch backend: a seglite ``.safetensors`` checkpoint behind the same Backend protocol.

So trained models go through the very Segmenter (and ``seglite eval``) that the TFLite
and ONNX files go through. What the model needs is read from the checkpoint: the
architecture from ``seglite.config``, the input size from ``seglite.input_size``
(default 513x513, DeepLab's evaluation crop), the labels from the config, and the
output stride used for inference from ``seglite.eval_output_stride`` (default 8: DeepLab
evaluates at 8 the weights it trained at 16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, require
from . import fit_pixels
from .info import DEFAULT_MEAN, DEFAULT_STD, Described, ModelInfo

DEFAULT_INPUT_SIZE = (513, 513)


def _labels_from_config(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        from ..labels import LABEL_SETS

        return list(LABEL_SETS[labels].names) if labels in LABEL_SETS else None
    return [str(n) for n in labels]


class TorchBackend(Described):
    """Runs a checkpoint with torch on the CPU (or ``device``); NHWC float scores out.

    ``num_threads`` sets torch's intra-op threads for the whole process (torch has one
    global pool), as the other backends set their interpreter's.
    """

    name = "torch"
    reduced = None  # no fused argmax: the Segmenter takes the general path

    def __init__(
        self,
        path: str | Path,
        *,
        num_threads: int = 2,
        output_stride: int | None = None,
        device: str = "cpu",
    ) -> None:
        torch = require("torch", "torch")
        from ..models.checkpoint import load_checkpoint

        self.path = Path(path)
        if self.path.suffix.lower() != ".safetensors":
            raise ModelError(
                f"{self.path}: the torch backend reads seglite .safetensors checkpoints only "
                "(never pickles); convert other files with seglite.models.save_checkpoint"
            )
        self.num_threads = num_threads
        torch.set_num_threads(num_threads)
        self._torch = torch
        self.device = torch.device(device)
        self.model = load_checkpoint(self.path).to(self.device).eval()
        meta = getattr(self.model, "checkpoint_metadata", {}) or {}
        size = meta.get("seglite.input_size") or DEFAULT_INPUT_SIZE
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and min(size) > 0):
            raise ModelError(
                f"{self.path}: seglite.input_size must be [height, width], got {size!r}"
            )
        labels = _labels_from_config(self.model.config.get("labels"))
        scales = meta.get("seglite.accurate_scales")
        # Checkpoints carry no normalization (training normalizes as the starter model does)
        # and no localized names.
        self.info = ModelInfo(
            input_size=(int(size[0]), int(size[1])),
            input_dtype=np.dtype(np.float32),
            output_kind="logits",
            num_classes=self.model.num_classes,
            labels=labels,
            mean=DEFAULT_MEAN,
            std=DEFAULT_STD,
            sources={
                "input": "checkpoint seglite.input_size"
                if meta.get("seglite.input_size")
                else "default (513x513, DeepLab's evaluation crop)",
                "output": "checkpoint config",
                "labels": "checkpoint config labels",
            },
            accurate_scales=None if scales is None else tuple(scales),  # checked by the loader
        )
        stride = output_stride or meta.get("seglite.eval_output_stride") or 8
        self.set_output_stride(int(stride))

    @property
    def output_stride(self) -> int:
        return self.model.output_stride

    def set_output_stride(self, output_stride: int) -> None:
        """8 (finer, slower) or 16 (what the model trained at): same weights either way."""
        self.model.set_output_stride(output_stride)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB (N, H, W, 3), any H and W -> float32 logits (N, h, w, C) at the model's
        input size (the model is fully convolutional, but trained and evaluated there)."""
        torch = self._torch
        if pixels.ndim == 3:
            pixels = pixels[None]
        pixels = fit_pixels(pixels, self.input_size, raw=False)
        x = torch.from_numpy(np.require(pixels, None, ["C", "W"])).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        mean, std = self.info.mean, self.info.std
        if len(mean) == len(std) == 1:
            x = x.sub_(mean[0]).div_(std[0])
        else:
            shape = (1, -1, 1, 1)
            x = x.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))
        with torch.inference_mode():
            y = self.model(x)
        return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()

    def close(self) -> None:
        self.model = None
