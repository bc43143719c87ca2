"""The model a run starts from: imported starter weights, a checkpoint (its classifier
replaced, optionally from mapped classes) or random weights."""

from __future__ import annotations

from typing import Any

from ..errors import OptionError
from .config import TrainConfig


def build_model(cfg: TrainConfig, num_classes: int, labels):
    """The model to train, at ``cfg.output_stride``: imported starter weights, a
    checkpoint (classifier replaced if the classes differ) or random weights; with a
    fresh refiner where ``cfg.refiner_channels`` asks for one and the model has none."""
    model = _initial_model(cfg, num_classes, labels)
    if cfg.refiner_channels and model.refiner is None:
        model.add_refiner(cfg.refiner_channels)
    return model


def _initial_model(cfg: TrainConfig, num_classes: int, labels):
    from ..models.deeplab import deeplab
    from ..models.pretrained import starter_model
    from ..models.registry import backbone_entry

    init = cfg.init
    if init == "starter" and not cfg.model_options:
        return starter_model(
            num_classes=num_classes, pretrained=True, decoder=cfg.decoder,
            output_stride=cfg.output_stride, labels=labels,
        )  # fmt: skip
    if init == "starter":  # e.g. a lighter decoder: build it, then import what fits
        return _starter_variant(cfg, num_classes, labels)
    if init == "scratch":
        kw: dict[str, Any] = dict(
            version=cfg.version, backbone=cfg.backbone, num_classes=num_classes,
            output_stride=cfg.output_stride, labels=labels,
        )  # fmt: skip
        if "depth_multiplier" in backbone_entry(kw["backbone"]).options:
            kw["depth_multiplier"] = cfg.depth_multiplier
        kw.update(cfg.model_options or {})
        try:
            return deeplab(**kw)
        except TypeError as exc:
            raise OptionError(f"model_options: {exc}") from None
    from ..models.checkpoint import load_checkpoint

    model = load_checkpoint(init)
    if "ensemble" in model.config:  # an averaging model (models/ensemble.py): its first member
        model = model.members[0]
        model.pretrained_from = f"{init} (member 0 of its ensemble)"
    if model.num_classes != num_classes or model.config.get("labels") != labels:
        source_names = class_names(model.config.get("labels"), model.num_classes)
        old = classifier_rows(model)
        model.reset_classifier(num_classes, labels=labels)
        if cfg.class_map:
            target_names = class_names(labels, num_classes)
            n = map_classifier_rows(model, old, source_names, target_names, cfg.class_map)
            model.pretrained_from = f"{init} (classifier: {n} of {num_classes} classes mapped)"
    return model.set_output_stride(cfg.output_stride)


def class_names(labels, num_classes: int) -> list[str]:
    """The class names a model's ``labels`` config stands for (a label-set key or a list)."""
    from ..labels import LABEL_SETS

    if isinstance(labels, str) and labels in LABEL_SETS:
        return list(LABEL_SETS[labels].names)
    if isinstance(labels, list | tuple):
        return [str(n) for n in labels]
    return [str(i) for i in range(num_classes)]


def _classifier_convs(model) -> list:
    """The 1x1 convolutions whose output channels are the classes (one, or ASPPSum's four)."""
    from ..models.heads import ASPPSum

    if isinstance(model.head, ASPPSum):
        return list(model.head.branches)
    return [model.classifier]


def classifier_rows(model) -> list[tuple]:
    return [(c.weight.detach().clone(), None if c.bias is None else c.bias.detach().clone())
            for c in _classifier_convs(model)]  # fmt: skip


def map_classifier_rows(model, old_rows, source_names, target_names, class_map) -> int:
    """Initialize the new classifier's rows of mapped classes from the old classifier.

    A class mapped to several source classes (CamVid's "tree" from Cityscapes'
    vegetation and terrain) gets their average row: its logit starts as the mean of
    theirs. Names match case-insensitively. Returns how many classes were mapped."""
    import torch

    src = {n.lower(): i for i, n in enumerate(source_names)}
    dst = {n.lower(): i for i, n in enumerate(target_names)}
    unknown_dst = sorted(k for k in class_map if k.lower() not in dst)
    unknown_src = sorted({s for v in class_map.values() for s in v if s.lower() not in src})
    if unknown_dst or unknown_src:
        parts = []
        if unknown_dst:
            parts.append(f"not classes of the dataset: {', '.join(unknown_dst)}")
        if unknown_src:
            parts.append(f"not classes of the init checkpoint: {', '.join(unknown_src)}")
        raise OptionError(f"class_map: {'; '.join(parts)}")
    convs = _classifier_convs(model)
    if len(convs) != len(old_rows) or any(
        c.weight.shape[1:] != w.shape[1:] for c, (w, _) in zip(convs, old_rows, strict=True)
    ):
        raise OptionError("class_map: the new classifier's inputs differ from the checkpoint's")
    with torch.no_grad():
        for conv, (w, b) in zip(convs, old_rows, strict=True):
            for name, sources in class_map.items():
                rows = [src[s.lower()] for s in sources]
                conv.weight[dst[name.lower()]] = w[rows].mean(0)
                if b is not None and conv.bias is not None:
                    conv.bias[dst[name.lower()]] = b[rows].mean(0)
    return len(class_map)


def _starter_variant(cfg: TrainConfig, num_classes: int, labels):
    """The starter architecture with ``cfg.model_options`` (e.g. ``decoder_separable``,
    ``decoder_channels``), its encoder initialized from the imported VOC weights."""
    from ..models.deeplab import deeplab
    from ..models.pretrained import starter_config, starter_model

    try:
        model = deeplab(
            **starter_config(
                version="v3+" if cfg.decoder else "v3", num_classes=num_classes,
                output_stride=cfg.output_stride, labels=labels, **cfg.model_options,
            )
        )  # fmt: skip
    except TypeError as exc:
        raise OptionError(f"model_options: {exc}") from None
    source = starter_model(pretrained=True).state_dict()
    own = model.state_dict()
    moved = {
        k: v for k, v in source.items()
        if not k.startswith("classifier.") and k in own and own[k].shape == v.shape
    }  # fmt: skip
    own.update(moved)
    model.load_state_dict(own)
    model.pretrained_from = f"starter ({len(moved)} tensors)"
    return model


def label_arg(dataset):
    key = dataset.labels.key
    from ..labels import LABEL_SETS

    return key if key in LABEL_SETS else list(dataset.labels.names)
