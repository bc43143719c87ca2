"""Pretrained starting points: the starter model with its VOC weights, and the rest.

Sits above ``deeplab``, ``checkpoint`` and ``tflite_import`` (it uses all three), so that
none of them needs to import another lazily: the import cycles of ``models/`` end here.
Where the weights come from is described once, in ``weights.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ModelError, OptionError
from .checkpoint import load_checkpoint
from .deeplab import DeepLab, deeplab
from .tflite_import import import_tflite
from .weights import STARTER_WEIGHTS

STARTER_ASSET = STARTER_WEIGHTS.filename


def starter_config(**overrides: Any) -> dict[str, Any]:
    """``deeplab()`` arguments of ``deeplabv3_257_mv_gpu.tflite``: DeepLabv3, MobileNetV2
    depth 0.5 at output stride 8, ASPP-lite (1x1 + image pooling), 21 VOC classes."""
    cfg: dict[str, Any] = dict(STARTER_WEIGHTS.config)
    cfg.update(overrides)
    return cfg


def starter_model(
    *,
    num_classes: int = 21,
    pretrained: bool | str | Path | None = None,
    decoder: bool = False,
    decoder_separable: bool = False,
    output_stride: int = 8,
    labels: str | Sequence[str] | None = None,
) -> DeepLab:
    """The architecture of the TFLite starter model, optionally with its VOC weights.

    Args:
        num_classes: 21 keeps the VOC classifier; anything else gets a new, randomly
            initialized 1x1 classifier on top of the imported backbone and ASPP-lite.
        pretrained: None/False for random weights; True for the starter model shipped
            with seglite; or a path to a ``.tflite`` (imported) or ``.safetensors`` file.
        decoder: add a randomly initialized DeepLabv3+ decoder (48-channel projection of
            the stride-4 depthwise feature, two 3x3 convs of 256) between the imported
            encoder and a new classifier.
        decoder_separable: depthwise-separable decoder convs (TF DeepLab's default). At
            480x360 the plain decoder costs 14.0 GMACs against 0.55 for the whole
            encoder; the separable one 1.6.
        output_stride: 8 as in the TFLite file; 16 trains about 3x faster.
        labels: label-set key or names; default "voc21" for 21 classes.

    Example (CamVid fine-tuning)::

        model = starter_model(num_classes=11, pretrained=True, labels="camvid11")
    """
    if labels is None and num_classes == 21:
        labels = "voc21"
    overrides: dict[str, Any] = dict(
        num_classes=num_classes, output_stride=output_stride, labels=labels
    )
    if decoder:
        overrides["version"] = "v3+"
        overrides["decoder_separable"] = bool(decoder_separable)
    elif decoder_separable:
        raise OptionError("decoder_separable needs decoder=True")
    model = deeplab(**starter_config(**overrides))
    if pretrained is None or pretrained is False:
        return model
    source = _load_pretrained_source(pretrained).state_dict()
    state = model.state_dict()
    new_parts = ("classifier.", "decoder.") if decoder or num_classes != 21 else ()
    wanted = [k for k in state if not k.startswith(new_parts)]
    unfit = [k for k in wanted if k not in source or source[k].shape != state[k].shape]
    if unfit:
        raise ModelError(
            f"{pretrained}: not the starter architecture ({len(unfit)} tensors missing or "
            f"of another shape, e.g. {unfit[0]})"
        )
    for k in wanted:
        state[k] = source[k]
    model.load_state_dict(state)
    model.pretrained_from = str(pretrained)
    return model


def _load_pretrained_source(pretrained: bool | str | Path) -> nn.Module:
    if pretrained is True:
        return import_tflite(STARTER_WEIGHTS.path())[0]
    path = Path(pretrained)
    if path.suffix.lower() == ".tflite":
        model, _ = import_tflite(path)
        return model
    if path.suffix.lower() == ".safetensors":
        return load_checkpoint(path)
    raise ModelError(f"{path}: pretrained weights must be a .tflite or .safetensors file")
