"""The DeepLab model and its builders.

``deeplab(...)`` composes a backbone, a head (v1 LargeFOV, v2 ASPP-sum, v3 ASPP), an
optional v3+ decoder and a 1x1 classifier. The model takes NCHW float32 images
normalized like the TFLite models, ``(pixel - 127.5) / 127.5``, and returns logits NCHW
at the input's size (bilinear, ``align_corners=True`` as in TF1 DeepLab).

Every model carries ``model.config``: the builder's keyword arguments, resolved, so that
``deeplab(**model.config)`` rebuilds the same architecture (checkpoints store it).

Under 500 lines: the model class and its one validated builder, whose option
checks are most of the file.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError, OptionError
from ..labels import LABEL_SETS
from .heads import ASPP, ASPPSum, Decoder, LargeFOV, LogitRefiner
from .layers import UPSAMPLING, init_classifier, init_weights, resize_bilinear, use_tf_same_padding
from .registry import BACKBONES, backbone_entry

VERSIONS = ("v1", "v2", "v3", "v3+")
OUTPUT_STRIDES = (8, 16, 32)
# The normalization every seglite DeepLab expects (same as the TFLite starter model).
INPUT_MEAN = 127.5
INPUT_STD = 127.5

_VERSION_ALIASES = {"v3plus": "v3+", "v3p": "v3+"}
PADDINGS = ("symmetric", "tf_same")
# Paper defaults: (rates, the output stride they are given at).
_DEFAULT_RATES = {"v1": ((12,), 8), "v2": ((6, 12, 18, 24), 8), "v3": ((6, 12, 18), 16)}


def aligned_up(n: int, stride: int) -> int:
    """The smallest size >= ``n`` of the form k * ``stride`` + 1 (see DeepLab.aligned_size)."""
    return -(-(n - 1) // stride) * stride + 1 if n > 1 else n


class DeepLab(nn.Module):
    """backbone -> head [-> decoder] -> classifier [-> refiner] -> bilinear upsample to
    the input size."""

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        classifier: nn.Module,
        decoder: nn.Module | None = None,
        *,
        refiner: nn.Module | None = None,
        config: dict[str, Any],
        align_corners: bool = True,
        upsampling: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.decoder = decoder
        self.classifier = classifier
        self.refiner = refiner
        self.align_corners = align_corners
        self.upsampling = upsampling or ("align_corners" if align_corners else "half_pixel")
        self.config = config

    def forward(self, x: Tensor) -> Tensor:
        h, w = (int(n) for n in x.shape[-2:])
        ph, pw = self.aligned_size(h), self.aligned_size(w)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h))  # zeros: the mean pixel once normalized
        y = resize_bilinear(self.scores(x), (ph, pw), self.upsampling)
        return y if (ph, pw) == (h, w) else y[..., :h, :w]

    def scores(self, x: Tensor) -> Tensor:
        """The class scores before the final upsampling, for an aligned input."""
        feats = self.backbone(x)
        y = self.head(feats["out"])
        if self.decoder is not None:
            y = self.decoder(y, feats["low_level"])
        y = self.classifier(y)
        if self.refiner is not None:
            y = self.refiner(y, feats["low_level"])
        return y

    def aligned_size(self, n: int) -> int:
        """The smallest size >= ``n`` of the form k * output_stride + 1, where the models'
        align-corners upsamplings are exact; ``n`` itself for models of other conventions.

        With symmetric padding, cell m of a stride-S feature map is centred on pixel S * m.
        Align-corners resizing from ``ceil(n / S)`` cells puts the last one on pixel
        ``n - 1``: right only when ``n = k * S + 1`` (DeepLab's 513, 321, 257). At other
        sizes the scores drift by up to S / 2 pixels across the image (3 pixels at 540x720).
        So such inputs are padded (bottom and right) to the next aligned size and the scores
        cropped back, as DeepLab's evaluation pads to its crop size. The measured cost of not
        doing so: 1.1-1.4 mIoU on an unseen CamVid drive (configs/README.md).
        """
        if self.upsampling != "align_corners" or self.config.get("padding") == "tf_same":
            return n
        return aligned_up(n, self.output_stride)

    @property
    def output_stride(self) -> int:
        return self.backbone.output_stride

    @property
    def num_classes(self) -> int:
        return int(self.config["num_classes"])

    def set_output_stride(self, output_stride: int) -> DeepLab:
        """Switch between 8, 16 and 32 in place: strides become atrous rates (and back),
        the head's rates scale with it. Parameters are untouched. Returns ``self``.

        Rates are recomputed from the ones the model was built with, so round trips are
        exact; a rate that does not divide evenly (6 at OS 16 -> 3 at 32 is fine, 3 -> 1.5
        is not) is rounded, and ``config["atrous_rates"]`` records what is used.
        """
        _check_output_stride(output_stride)
        self.backbone.set_output_stride(output_stride)
        self.head.set_output_stride(output_stride)
        self.config["output_stride"] = output_stride
        if "atrous_rates" in self.config:
            self.config["atrous_rates"] = list(self.head.rates)
        return self

    def reset_classifier(self, num_classes: int, *, labels=None) -> DeepLab:
        """A new, randomly initialized classifier for ``num_classes``; everything else kept."""
        _check_int("num_classes", num_classes)
        labels = _check_labels(labels, num_classes)
        if isinstance(self.head, ASPPSum):
            old = self.head
            head = ASPPSum(
                old.branches[0].in_channels,
                num_classes,
                rates=old._base_rates,
                output_stride=old._base_stride,
            )
            head.set_output_stride(old.output_stride)
            init_weights(head)
            for conv in head.branches:
                init_classifier(conv)
            w = old.branches[0].weight
            self.head = head.to(w.device, w.dtype)
        else:
            old = self.classifier
            classifier = nn.Conv2d(old.in_channels, num_classes, 1)
            init_classifier(classifier)
            self.classifier = classifier.to(old.weight.device, old.weight.dtype)
        self.config["num_classes"] = num_classes
        self.config["labels"] = labels
        if self.refiner is not None:  # its input is the scores: a new one, at zero
            self.add_refiner(self.refiner.channels)
        return self

    def add_refiner(self, channels: int = 64) -> DeepLab:
        """Give the model a stride-4 ``LogitRefiner`` that starts as the identity, so what
        the model computes is unchanged until training moves it. Returns ``self``."""
        _check_int("refiner_channels", channels)
        refiner = LogitRefiner(
            self.num_classes,
            self.backbone.low_level_channels,
            channels=channels,
            upsampling=self.upsampling,
        )
        init_weights(refiner)
        refiner.zero_correction()
        w = next(self.backbone.parameters())
        self.refiner = refiner.to(w.device, w.dtype)
        self.config["refiner_channels"] = channels
        return self

    def parts(self) -> dict[str, nn.Module]:
        """Named top-level parts, for parameter and multiply-add breakdowns."""
        parts = {"backbone": self.backbone, "head": self.head}
        if self.decoder is not None:
            parts["decoder"] = self.decoder
        if not isinstance(self.classifier, nn.Identity):
            parts["classifier"] = self.classifier
        if self.refiner is not None:
            parts["refiner"] = self.refiner
        return parts


def set_output_stride(model: DeepLab, output_stride: int) -> DeepLab:
    """Function form of ``DeepLab.set_output_stride``."""
    return model.set_output_stride(output_stride)


# ---------------------------------------------------------------------------- validation


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_output_stride(value) -> int:
    if value not in OUTPUT_STRIDES or isinstance(value, bool):
        raise OptionError(f"output_stride must be 8, 16 or 32, got {value!r}")
    return int(value)


def _canonical(value, aliases: dict[str, str], known: Sequence[str], what: str) -> str:
    if not isinstance(value, str):
        raise OptionError(f"{what} must be a string, one of {', '.join(known)}; got {value!r}")
    key = value.strip().lower()
    key = key.removeprefix("deeplab").strip("-_ ")
    if key in known:
        return key
    squashed = key.replace("-", "").replace("_", "").replace(" ", "")
    if squashed in aliases:
        return aliases[squashed]
    if key in aliases:
        return aliases[key]
    raise OptionError(f"unknown {what} {value!r}; choose one of {', '.join(known)}")


def _check_rates(name: str, value, *, min_len: int, max_len: int | None = None) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise OptionError(f"{name} must be a list of positive integers, got {value!r}")
    rates = tuple(value)
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rates):
        raise OptionError(f"{name} must be a list of positive integers, got {value!r}")
    if len(rates) < min_len or (max_len is not None and len(rates) > max_len):
        want = f"exactly {min_len}" if min_len == max_len else f"at least {min_len}"
        raise OptionError(f"{name} needs {want} value(s), got {len(rates)}")
    return rates


def _check_labels(labels, num_classes: int):
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels in LABEL_SETS and len(LABEL_SETS[labels]) != num_classes:
            raise OptionError(
                f"label set {labels!r} has {len(LABEL_SETS[labels])} classes "
                f"but num_classes is {num_classes}"
            )
        return labels
    if isinstance(labels, Sequence) and all(isinstance(n, str) for n in labels):
        if len(labels) != num_classes:
            raise OptionError(f"{len(labels)} label names given for {num_classes} classes")
        return list(labels)
    raise OptionError("labels must be a label-set key such as 'voc21' or a list of names")


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise OptionError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- builders


def deeplab(
    *,
    version: str = "v3+",
    backbone: str = "mobilenet_v2",
    num_classes: int = 21,
    output_stride: int = 16,
    depth_multiplier: float = 1.0,
    multi_grid: Sequence[int] | None = None,
    atrous_rates: Sequence[int] | None = None,
    image_pooling: bool | None = None,
    aspp_channels: int | None = None,
    aspp_separable: bool | None = None,
    dropout: float | None = None,
    decoder_channels: int | None = None,
    decoder_low_level_channels: int | None = None,
    decoder_separable: bool | None = None,
    refiner_channels: int | None = None,
    labels: str | Sequence[str] | None = None,
    align_corners: bool = True,
    upsampling: str | None = None,
    padding: str | None = None,
    backbone_weights: str | None = None,
) -> DeepLab:
    """Build a DeepLab model with freshly initialized weights.

    Args:
        version: "v1" (atrous backbone + LargeFOV), "v2" (ASPP, summed), "v3" (ASPP with
            image pooling and batch norm), "v3+" (v3 + decoder).
        backbone: "mobilenet_v2", "mobilenet_edgetpu", "resnet50", "resnet101" or
            "xception65" (or an alias; see ``seglite.models.registry``).
        num_classes: number of output channels (21 for PASCAL VOC).
        output_stride: 8, 16 or 32; switch later with ``model.set_output_stride``.
        depth_multiplier: MobileNet width (0.5 for the TFLite starter model, 0.75 for
            the Cityscapes MobileNet-EdgeTPU).
        multi_grid: ResNet / Xception unit rates of the last block; default (1, 2, 4) for
            ResNet v3/v3+, (1, 1, 1) otherwise.
        atrous_rates: rates at ``output_stride``. Defaults: v1 (12,) and v2 (6, 12, 18, 24)
            at stride 8, v3/v3+ (6, 12, 18) at stride 16, scaled to ``output_stride``.
            For v3/v3+, ``()`` gives ASPP-lite (1x1 + image pooling).
        image_pooling: v3/v3+: add the image-level branch (default True).
        aspp_channels: v3/v3+: width of the ASPP branches and projection (default 256).
        aspp_separable: v3/v3+: depthwise-separable atrous branches (default: Xception).
        dropout: v1 after fc6/fc7 (default 0.5); v3/v3+ after the ASPP projection (0.1).
        decoder_channels: v3+: width of the decoder's 3x3 convs (default 256).
        decoder_low_level_channels: v3+: projection of the low-level feature (default 48).
        decoder_separable: v3+: separable decoder convs (default: Xception).
        refiner_channels: add a ``LogitRefiner`` of this width: class scores corrected at
            stride 4 from the low-level feature, starting as the identity (any version).
        labels: label-set key ("voc21", "camvid11", ...) or class names, kept in ``config``.
        align_corners: bilinear upsampling convention (True matches TF1 DeepLab).
        upsampling: the convention by name, overriding ``align_corners``: "align_corners",
            "half_pixel" (``align_corners=False``) or "asymmetric" (TF1's resize with
            align_corners=False, as in MLPerf's ADE20K graph). Stored only when asymmetric.
        padding: "symmetric" (default) or "tf_same": strided convs pad an even-sized input
            like TensorFlow (extra pixel bottom/right), for graphs exported at 512x512.
        backbone_weights: start the backbone from pretrained weights instead of random
            ones: "imagenet" (MobileNetV2 1.0; see ``seglite.models.weights``). The head,
            decoder and classifier stay freshly initialized.
    """
    version = _canonical(version, _VERSION_ALIASES, VERSIONS, "DeepLab version")
    if isinstance(backbone, str):
        backbone = backbone.strip().lower().removeprefix("deeplab").strip("-_ ")
    entry = backbone_entry(backbone)
    backbone = entry.name
    _check_int("num_classes", num_classes)
    output_stride = _check_output_stride(output_stride)
    is_v3 = version in ("v3", "v3+")

    def only(name: str, value, allowed: bool, where: str):
        if value is not None and not allowed:
            raise OptionError(f"{name} only applies to {where}, not {version} / {backbone}")
        return value

    if (
        isinstance(depth_multiplier, bool)
        or not isinstance(depth_multiplier, (int, float))
        or not 0 < depth_multiplier <= 4
        or not math.isfinite(depth_multiplier)
    ):
        raise OptionError(f"depth_multiplier must be in (0, 4], got {depth_multiplier!r}")

    def takers(option: str) -> str:
        return ", ".join(n for n, e in BACKBONES.items() if option in e.options) + " backbones"

    if "depth_multiplier" not in entry.options and depth_multiplier != 1.0:
        raise OptionError(f"depth_multiplier only applies to the {takers('depth_multiplier')}")
    only("multi_grid", multi_grid, "multi_grid" in entry.options, takers("multi_grid"))
    only("image_pooling", image_pooling, is_v3, "v3 and v3+")
    only("aspp_channels", aspp_channels, is_v3, "v3 and v3+")
    only("aspp_separable", aspp_separable, is_v3, "v3 and v3+")
    only("dropout", dropout, version != "v2", "v1, v3 and v3+")
    for name, value in (
        ("decoder_channels", decoder_channels),
        ("decoder_low_level_channels", decoder_low_level_channels),
        ("decoder_separable", decoder_separable),
    ):
        only(name, value, version == "v3+", "v3+")
    labels = _check_labels(labels, num_classes)

    if multi_grid is None:
        grid_defaults = entry.v3_options if is_v3 else {}
        multi_grid = grid_defaults.get("multi_grid", entry.options.get("multi_grid", (1, 1, 1)))
    multi_grid = _check_rates("multi_grid", multi_grid, min_len=3, max_len=3)
    if atrous_rates is None:
        rates, at = _DEFAULT_RATES["v3" if is_v3 else version]
        atrous_rates = tuple(max(1, round(r * at / output_stride)) for r in rates)
    if version == "v1":
        atrous_rates = _check_rates("atrous_rates", atrous_rates, min_len=1, max_len=1)
    else:
        atrous_rates = _check_rates("atrous_rates", atrous_rates, min_len=0 if is_v3 else 1)
    separable = entry.separable_head
    config: dict[str, Any] = {
        "version": version,
        "backbone": backbone,
        "num_classes": num_classes,
        "output_stride": output_stride,
        "depth_multiplier": float(depth_multiplier),
    }
    if "multi_grid" in entry.options:
        config["multi_grid"] = list(multi_grid)
    config["atrous_rates"] = list(atrous_rates)
    if version != "v2":
        config["dropout"] = _check_fraction(
            "dropout", (0.5 if version == "v1" else 0.1) if dropout is None else dropout
        )
    if is_v3:
        config["image_pooling"] = True if image_pooling is None else bool(image_pooling)
        config["aspp_channels"] = _check_int(
            "aspp_channels", 256 if aspp_channels is None else aspp_channels
        )
        config["aspp_separable"] = separable if aspp_separable is None else bool(aspp_separable)
    if version == "v3+":
        config["decoder_channels"] = _check_int(
            "decoder_channels", 256 if decoder_channels is None else decoder_channels
        )
        config["decoder_low_level_channels"] = _check_int(
            "decoder_low_level_channels", decoder_low_level_channels or 48
        )
        config["decoder_separable"] = (
            separable if decoder_separable is None else bool(decoder_separable)
        )
    if refiner_channels is not None:
        config["refiner_channels"] = _check_int("refiner_channels", refiner_channels)
    config["labels"] = labels
    config["align_corners"] = bool(align_corners)
    if upsampling is not None:
        if upsampling not in UPSAMPLING:
            raise OptionError(
                f"upsampling must be one of {', '.join(UPSAMPLING)}, got {upsampling!r}"
            )
        config["align_corners"] = upsampling == "align_corners"
        if upsampling == "asymmetric":
            config["upsampling"] = upsampling
    if padding is not None and padding not in PADDINGS:
        raise OptionError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    if padding == "tf_same":
        config["padding"] = padding
    model = _build(config)
    if backbone_weights is not None:
        from .weights import load_backbone_weights

        options = {"depth_multiplier": config["depth_multiplier"]}
        note = load_backbone_weights(model.backbone, backbone_weights, backbone, options)
        model.pretrained_from = note
    return model


def _build(config: dict[str, Any]) -> DeepLab:
    version, os_ = config["version"], config["output_stride"]
    backbone = backbone_entry(config["backbone"]).build(
        output_stride=os_,
        depth_multiplier=config["depth_multiplier"],
        multi_grid=tuple(config.get("multi_grid", (1, 1, 1))),
    )
    upsampling = config.get("upsampling") or (
        "align_corners" if config["align_corners"] else "half_pixel"
    )
    rates = config["atrous_rates"]
    decoder = None
    if version == "v1":
        head = LargeFOV(
            backbone.out_channels, rate=rates[0], output_stride=os_, dropout=config["dropout"]
        )
        classifier = nn.Conv2d(head.out_channels, config["num_classes"], 1)
    elif version == "v2":
        head = ASPPSum(backbone.out_channels, config["num_classes"], rates=rates, output_stride=os_)
        classifier = nn.Identity()
    else:
        head = ASPP(
            backbone.out_channels,
            rates=rates,
            output_stride=os_,
            channels=config["aspp_channels"],
            image_pooling=config["image_pooling"],
            separable=config["aspp_separable"],
            dropout=config["dropout"],
        )
        width = head.out_channels
        if version == "v3+":
            decoder = Decoder(
                head.out_channels,
                backbone.low_level_channels,
                low_level_channels=config["decoder_low_level_channels"],
                channels=config["decoder_channels"],
                separable=config["decoder_separable"],
                upsampling=upsampling,
            )
            width = decoder.out_channels
        classifier = nn.Conv2d(width, config["num_classes"], 1)
    model = DeepLab(
        backbone,
        head,
        classifier,
        decoder,
        config=dict(config),
        align_corners=config["align_corners"],
        upsampling=upsampling,
    )
    if config.get("padding") == "tf_same":
        use_tf_same_padding(model)
    init_weights(model)
    if isinstance(head, ASPPSum):
        for conv in head.branches:
            init_classifier(conv)
    else:
        init_classifier(classifier)
    if config.get("refiner_channels"):
        model.add_refiner(config["refiner_channels"])
    return model


def from_config(config: dict[str, Any]) -> DeepLab:
    """Rebuild an architecture from ``model.config`` (as stored in checkpoints)."""
    if not isinstance(config, dict):
        raise ModelError("model config must be a JSON object of deeplab() arguments")
    if "ensemble" in config:  # several models of this architecture (models/ensemble.py)
        from .ensemble import DeepLabEnsemble

        n = config["ensemble"]
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 16:
            raise ModelError(f"model config: ensemble must be 2-16 members, got {n!r}")
        member = {k: v for k, v in config.items() if k != "ensemble"}
        return DeepLabEnsemble([from_config(member) for _ in range(n)])
    try:
        return deeplab(**copy.deepcopy(config))
    except TypeError as exc:
        raise ModelError(f"model config does not fit this seglite version: {exc}") from None
    except OptionError as exc:
        raise ModelError(f"model config is invalid: {exc}") from None
