"""Pretrained weights, each described once (torchvision's ``Weights`` style).

A ``Weights`` entry says what architecture the weights fit (``config``: ``deeplab()``
arguments for a whole model, or the backbone options for a backbone start), which file
holds them and where that file comes from (a zoo entry, or a file record resolved with
the zoo's own machinery: packaged copy, ``$SEGLITE_MODEL_DIR``, cache, download with
sha256), the metrics they reach and the recipe that made them.

- ``STARTER_WEIGHTS``: the VOC weights of ``deeplabv3_257_mv_gpu.tflite`` (the zoo's
  packaged ``deeplabv3``), used by ``starter_model(pretrained=True)``;
- ``BACKBONE_WEIGHTS[("mobilenet_v2", "imagenet")]``: MobileNetV2 1.0 trained on ImageNet,
  dequantized from Coral's quantization-aware classifier, used by
  ``deeplab(backbone="mobilenet_v2", backbone_weights="imagenet")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ModelError, ModelNotFoundError, OptionError


@dataclass(frozen=True)
class Weights:
    name: str
    config: dict[str, Any]
    filename: str
    sha256: str
    size: int
    url: str = ""
    zoo_model: str | None = None  # the zoo entry for this file, when it is a zoo model
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: str = ""
    license: str = ""

    def path(self) -> Path:
        """The verified local file (packaged, model dir, cache) or a download of it."""
        from .. import zoo

        if self.zoo_model is not None:
            return zoo.resolve(self.zoo_model, progress=False).path
        entry = zoo.ModelEntry(
            name=self.name, filename=self.filename, url=self.url, sha256=self.sha256,
            size=self.size, labels="", input_size=(0, 0), quantized=True, output="logits",
            description=self.recipe, source=self.url, license=self.license,
        )  # fmt: skip  # a file record only: not registered, so not listed as a model
        found = zoo.find_local(entry)
        if found is not None:
            return found[0]
        if zoo._offline() or not self.url:
            raise ModelNotFoundError(
                f"weights {self.name!r} need {self.filename}: place it in $SEGLITE_MODEL_DIR"
            )
        from ..download import download

        dest = zoo.cache_dir() / self.filename
        download(self.url, dest, self.sha256, size=self.size, progress=False)
        return dest


STARTER_WEIGHTS = Weights(
    name="voc-starter",
    config=dict(
        version="v3",
        backbone="mobilenet_v2",
        num_classes=21,
        output_stride=8,
        depth_multiplier=0.5,
        atrous_rates=(),
        image_pooling=True,
        labels="voc21",
    ),  # fmt: skip
    filename="deeplabv3_257_mv_gpu.tflite",
    sha256="68a539782c2c6a72f8aac3724600124a85ed977162b44e84cbae5db717c933c6",
    size=2779264,
    zoo_model="deeplabv3",
    metrics={"voc2012 val subset (139 images) mIoU": 55.5},
    recipe="TF DeepLab MobileNetV2 0.5, trained on PASCAL VOC, exported by Google at 257x257",
    license="Apache-2.0",
)

BACKBONE_WEIGHTS: dict[tuple[str, str], Weights] = {
    ("mobilenet_v2", "imagenet"): Weights(
        name="imagenet",
        config={"backbone": "mobilenet_v2", "depth_multiplier": 1.0},
        filename="mobilenet_v2_1.0_224_quant.tflite",
        sha256="7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776",
        size=3610798,
        url="https://github.com/google-coral/test_data/raw/master/mobilenet_v2_1.0_224_quant.tflite",
        metrics={"ImageNet top-1 % (TF hosted-models table)": 70.8},
        recipe="TF-slim MobileNetV2 1.0 224, ImageNet, quantization-aware; batch norm "
        "folded, dequantized here to float32",
        license="Apache-2.0",
    ),
}


def backbone_weights(backbone: str, name: str) -> Weights:
    try:
        return BACKBONE_WEIGHTS[(backbone, name)]
    except KeyError:
        known = ", ".join(f"{b}/{n}" for b, n in BACKBONE_WEIGHTS) or "none"
        raise OptionError(f"no {name!r} weights for backbone {backbone}; known: {known}") from None


def load_backbone_weights(backbone: nn.Module, name: str, backbone_name: str, options) -> str:
    """Load ``name`` weights into ``backbone`` (built with ``options``); returns a note."""
    from .layers import ConvBNAct
    from .tflite_copy import check_and_copy
    from .tflite_graph import read_graph
    from .tflite_structure import classifier_backbone
    from .tflite_units import build_units

    weights = backbone_weights(backbone_name, name)
    for key, value in weights.config.items():
        if key != "backbone" and options.get(key) != value:
            raise OptionError(f"{name} weights need {key}={value}, got {options.get(key)}")
    path = weights.path()
    assign = classifier_backbone(build_units(read_graph(path)))
    modules = dict(backbone.named_modules())
    for where, node in assign.items():
        if where not in modules:
            raise ModelError(f"{path.name}: the backbone has no {where}")
        # The classifier runs at output stride 32; the backbone's later convs trade that
        # stride for dilation, which leaves the weights as they are.
        check_and_copy(modules[where], node, f"{path.name}: {where}", geometry=False)
    wanted = {n for n, m in modules.items() if isinstance(m, ConvBNAct)}
    missing = sorted(wanted - set(assign))
    if missing:
        raise ModelError(f"{path.name}: no weights for backbone {missing[:3]}")
    return f"{name} ({path.name}, {len(assign)} convolutions)"
