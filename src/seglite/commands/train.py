"""seglite train: fine-tune or train a DeepLab model from a config, resumably."""

from __future__ import annotations

import argparse
import json


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 321,321, got {text!r}") from None


def _freeze_bn(text: str) -> bool | str:
    if text.lower() in ("encoder", "image_pooling"):
        return text.lower()
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(
        f"expected true, false, encoder or image_pooling, got {text!r}"
    )


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _weights(text: str) -> list[float] | str:
    return text if text.endswith("median_frequency") else _floats(text)


def _paths(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


# flag -> (config field, type, help); each overrides the config file.
_OVERRIDES = {
    "--dataset": ("dataset", str, "dataset root folder"),
    "--dataset-kind": (
        "dataset_kind",
        str,
        "auto (detect), voc, camvid, folder, coco, cityscapes, ade20k, oxford_pets",
    ),
    "--train-split": ("train_split", str, "split to train on"),
    "--val-split": ("val_split", str, "split to validate on ('' for none)"),
    "--init": ("init", str, "starter, scratch, or a .safetensors checkpoint"),
    "--iterations": ("iterations", int, "optimizer steps in total"),
    "--batch-size": ("batch_size", int, "images per process per micro-batch"),
    "--accum-steps": ("accum_steps", int, "micro-batches per optimizer step"),
    "--lr": ("lr", float, "base learning rate (poly decay)"),
    "--weight-decay": ("weight_decay", float, "L2 on conv weights"),
    "--crop-size": ("crop_size", _ints, "crop HEIGHT,WIDTH"),
    "--scale-range": ("scale_range", _floats, "random scale LOW,HIGH"),
    "--jitter": ("jitter", float, "photometric jitter strength (0 = off)"),
    "--class-weights": (
        "class_weights",
        _weights,
        "comma-separated weights, median_frequency or sqrt_median_frequency",
    ),
    "--teachers": (
        "teachers",
        _paths,
        "comma-separated checkpoints to distil from (their averaged probabilities)",
    ),
    "--distill-weight": ("distill_weight", float, "share of the distillation loss, 0-1"),
    "--distill-temperature": ("distill_temperature", float, "softening of both score sets"),
    "--loss": ("loss", str, "ce, or ohem (hard pixels only, for thin classes)"),
    "--precision": (
        "precision",
        str,
        "fp32, or bf16 (autocast; fast only where the CPU/GPU has bf16)",
    ),
    "--channels-last": ("channels_last", _bool, "true/false: NHWC memory format"),
    "--output-stride": ("output_stride", int, "training output stride (8/16/32)"),
    "--freeze-bn": (
        "freeze_bn",
        _freeze_bn,
        "true, false, encoder or image_pooling: keep batch norms fixed "
        "(all / backbone+head / the ASPP image-pooling branch)",
    ),
    "--seed": ("seed", int, "random seed"),
    "--threads": ("threads", int, "torch threads per process"),
    "--workers": ("workers", int, "data loader processes"),
    "--val-every": ("val_every", int, "validate every N iterations (0: at the end only)"),
    "--val-limit": ("val_limit", int, "validate periodically on the first N val images"),
    "--checkpoint-every-s": ("checkpoint_every_s", float, "seconds between checkpoints"),
    "--checkpoint-every": ("checkpoint_every", int, "also checkpoint every N iterations"),
    "--log-every": ("log_every", int, "iterations per log record"),
}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train / fine-tune a DeepLab model (needs seglite[torch])",
        description="Train a DeepLab model. Checkpoints, log.jsonl and curves.png go to --out; "
        "--resume continues a killed run exactly. Multi-process: torchrun --nproc-per-node N "
        "-m seglite train ...",
    )
    p.add_argument("--config", "-c", default=None, help="TOML config (see configs/)")
    p.add_argument("--out", "-o", default=None, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=int, default=None, help="stop (checkpointed) after N steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for flag, (dest, typ, help_) in _OVERRIDES.items():
        p.add_argument(flag, dest=dest, type=typ, default=None, help=help_)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import OptionError
    from ..train import load_config, train
    from ..train.config import TrainConfig

    overrides = {dest: getattr(args, dest) for _, (dest, _, _) in _OVERRIDES.items()}
    out = args.out
    if out is None:
        if args.config is None:
            raise OptionError("give --out DIR (or a --config, whose name names runs/<name>)")
        out = Path("runs") / Path(args.config).stem
    out = Path(out)
    if args.resume and (out / "config.json").is_file():
        cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    else:
        cfg = load_config(args.config, **overrides)
    result = train(
        cfg, out, resume=args.resume, overrides=overrides, progress=not args.no_progress,
        stop_after=args.stop_after,
    )  # fmt: skip
    print(json.dumps(result, indent=2, default=str))
    return 0
