"""Training configuration: one flat dataclass, read from TOML and overridden by flags.

TOML files may group keys in tables (``[data]``, ``[model]``, ``[optim]``...) for
readability; the tables are merged, so every key name is unique across them. A
variant is a short file with ``base = "other.toml"`` and the keys it changes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError
from .step import check_numerics

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


# median_frequency: SegNet's median(freq) / freq(c); sqrt_median_frequency: its square root,
# a milder balance that costs the frequent classes less precision.
CLASS_WEIGHTINGS = ("median_frequency", "sqrt_median_frequency")


@dataclass
class TrainConfig:
    """Everything that determines a training run (the run dir stores it as config.json)."""

    # data
    dataset: str = ""  # dataset root folder
    dataset_kind: str = "auto"  # auto | voc | camvid | folder
    train_split: str = "train"
    val_split: str = "val"
    labels: str | None = None  # folder datasets: label file or label-set key
    crop_size: list[int] = field(default_factory=lambda: [321, 321])  # [height, width]
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    flip: bool = True
    jitter: float = 0.0  # photometric jitter strength, 0 = off
    # probability that a crop is placed over a pixel of a class drawn by its median-frequency
    # weight (poles, signs, cyclists: classes a random crop often misses); 0 = uniform crops
    rare_class_crops: float = 0.0
    workers: int = 0  # DataLoader worker processes
    # model
    init: str = "starter"  # starter | scratch | path/to/checkpoint.safetensors
    version: str = "v3+"  # scratch only; "starter" uses v3+ if decoder else v3
    backbone: str = "mobilenet_v2"
    depth_multiplier: float = 0.5
    decoder: bool = True
    output_stride: int = 16
    model_options: dict[str, Any] | None = None  # scratch: more deeplab() keyword arguments
    # init from a checkpoint with other classes: {new class: [source classes]} initializes
    # those rows of the new classifier from the source rows (averaged) instead of at random
    class_map: dict[str, list[str]] | None = None
    # [h, w] stored for the runtime; default: the val image size up to the next k x 8 + 1
    input_size: list[int] | None = None
    # > 0: give the model a stride-4 LogitRefiner this wide if it has none (models/heads.py):
    # it starts as the identity, so a checkpoint's or mapped classifier keeps what it knew
    refiner_channels: int = 0
    refiner_lr_mult: float = 1.0  # the refiner's learning rate, as a multiple of lr
    # optimization
    iterations: int = 1000  # optimizer steps
    batch_size: int = 8  # images per process per micro-batch
    accum_steps: int = 1  # micro-batches per optimizer step
    lr: float = 0.01
    lr_power: float = 0.9  # poly schedule: lr * (1 - it / iterations) ** power
    warmup_iterations: int = 0
    momentum: float = 0.9
    weight_decay: float = 4e-5
    class_weights: list[float] | str | None = None  # list, a CLASS_WEIGHTINGS name, or None
    loss: str = "ce"  # ce | ohem (hard pixels only: see train/step.py)
    ohem_threshold: float = 0.7  # ohem: keep pixels whose true-class probability is below
    ohem_min_kept: int = 100_000  # ohem: and at least this many of the hardest per batch
    # ensemble distillation (train/distill.py): checkpoints whose averaged probabilities the
    # model also learns from; loss = (1 - w) * cross-entropy + w * T^2 * KL(teachers || model)
    teachers: list[str] | None = None
    distill_weight: float = 0.5  # w
    distill_temperature: float = 1.0  # T
    precision: str = "fp32"  # fp32 | bf16 (autocast: bf16 convolutions, fp32 weights)
    channels_last: bool = False  # NHWC memory format for model and batches
    # true: every batch norm keeps its statistics and affine parameters; "encoder": only the
    # backbone's and head's (imported models whose BN is folded into identity stay exact)
    # "image_pooling": only the ASPP image-pooling branch's (it normalizes one pooled
    # vector per image: batch statistics of a few images do not match running averages)
    freeze_bn: bool | str = False
    # before training, give folded (identity) batch norms of the imported encoder the
    # statistics of their inputs on training crops, rescaled so the function is unchanged:
    # batch norm can then train as in the original model instead of starting from identity
    unfold_bn: bool = False
    seed: int = 0
    threads: int = 2  # torch intra-op threads per process
    # bookkeeping
    checkpoint_every_s: float = 300.0
    checkpoint_every: int = 0  # also every N iterations (0 = only by time)
    keep_checkpoints: int = 2
    val_every: int = 250  # iterations; 0 = only at the end
    val_limit: int | None = None  # images of val used for periodic evaluation
    val_output_stride: int = 16  # periodic val; the final evaluation adds OS 8
    # every validation sees each val image at this multiple of its size: the model's
    # input_size / the frames' size for a model meant to run on enlarged frames
    val_scale: float = 1.0
    log_every: int = 10

    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = cls.fields()
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise OptionError(f"unknown training option(s): {', '.join(unknown)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def positive(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise OptionError(f"{name} must be a positive integer, got {v!r}")

        for name in ("iterations", "batch_size", "accum_steps", "threads", "log_every"):
            positive(name)
        if (
            isinstance(self.refiner_channels, bool)
            or not isinstance(self.refiner_channels, int)
            or self.refiner_channels < 0
        ):
            raise OptionError(
                f"refiner_channels must be an integer >= 0, got {self.refiner_channels!r}"
            )
        if self.output_stride not in (8, 16, 32) or self.val_output_stride not in (8, 16, 32):
            raise OptionError("output_stride and val_output_stride must be 8, 16 or 32")
        if len(self.crop_size) != 2 or min(self.crop_size) < 16:
            raise OptionError(f"crop_size must be [height, width] >= 16, got {self.crop_size}")
        if isinstance(self.val_scale, bool) or not 0 < self.val_scale <= 4:
            raise OptionError(f"val_scale must be in (0, 4], got {self.val_scale!r}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise OptionError(
                f"scale_range must be [low, high] with 0 < low <= high, got {self.scale_range}"
            )
        if isinstance(self.rare_class_crops, bool) or not 0 <= self.rare_class_crops <= 1:
            raise OptionError(f"rare_class_crops must be in [0, 1], got {self.rare_class_crops!r}")
        if isinstance(self.refiner_lr_mult, bool) or not 0 < self.refiner_lr_mult <= 100:
            raise OptionError(f"refiner_lr_mult must be in (0, 100], got {self.refiner_lr_mult!r}")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise OptionError("lr must be > 0, momentum in [0, 1), weight_decay >= 0")
        if self.freeze_bn not in (True, False, "encoder", "image_pooling"):
            raise OptionError(
                f"freeze_bn must be true, false, 'encoder' or 'image_pooling', got {self.freeze_bn!r}"
            )
        if self.batch_size == 1 and self.freeze_bn is not True:
            raise OptionError(
                "batch_size 1 cannot train batch norm (the image-pooling branch sees one value "
                "per channel): set freeze_bn = true, or batch_size >= 2 with accum_steps"
            )
        if self.teachers is not None and not (
            isinstance(self.teachers, list) and all(isinstance(t, str) and t for t in self.teachers)
        ):
            raise OptionError("teachers must be a list of checkpoint paths")
        if isinstance(self.distill_weight, bool) or not 0 <= self.distill_weight <= 1:
            raise OptionError(f"distill_weight must be in [0, 1], got {self.distill_weight!r}")
        if isinstance(self.distill_temperature, bool) or not 0 < self.distill_temperature <= 20:
            raise OptionError(
                f"distill_temperature must be in (0, 20], got {self.distill_temperature!r}"
            )
        check_numerics(self.precision, self.loss, self.ohem_threshold, self.ohem_min_kept)
        if self.class_map is not None and not (
            isinstance(self.class_map, dict)
            and all(isinstance(v, list) and v for v in self.class_map.values())
        ):
            raise OptionError(
                "class_map must map class names to non-empty lists of source class names"
            )
        if isinstance(self.class_weights, str) and self.class_weights not in CLASS_WEIGHTINGS:
            raise OptionError(
                f"class_weights must be a list of numbers, one of {', '.join(CLASS_WEIGHTINGS)}, or unset"
            )


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise OptionError(f"{path}: config 'base' chain loops")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: invalid TOML ({exc})") from None
    flat: dict[str, Any] = {}
    base = raw.pop("base", None)
    if base is not None:
        flat.update(_read_toml(path.parent / base, (*seen, path)))
    for key, value in raw.items():
        if isinstance(value, dict) and key not in TrainConfig.fields():
            flat.update(value)  # a table only groups keys (model_options is a value)
        else:
            flat[key] = value
    if "dataset" in flat and flat["dataset"] and not Path(flat["dataset"]).is_absolute():
        # relative dataset paths are relative to the config file
        flat["dataset"] = str((path.parent / flat["dataset"]).resolve())
    if isinstance(flat.get("teachers"), list):  # relative to the config file, as the dataset
        flat["teachers"] = [
            str((path.parent / t).resolve())
            if isinstance(t, str) and t and not Path(t).is_absolute()
            else t
            for t in flat["teachers"]
        ]
    return flat


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A config from a TOML (or JSON, e.g. a run's config.json) file plus overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise OptionError(f"cannot read config {path}: {exc}") from None
        else:
            data = _read_toml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(data)
