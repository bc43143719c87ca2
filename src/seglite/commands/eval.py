"""seglite eval: mIoU, per-class IoU, pixel accuracy and fwIoU of a model on a dataset."""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import add_model_options, format_table, segmenter_kwargs

# DeepLab's multi-scale evaluation (paper convention, multiples of the image size).
NATIVE_ACCURATE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def add_parser(sub) -> argparse.ArgumentParser:
    from ..data.kinds import DATASET_KINDS

    p = sub.add_parser(
        "eval",
        help="measure a model on a labelled dataset (mIoU, per-class IoU)",
        description="Evaluate MODEL (zoo name, .tflite, .onnx or seglite .safetensors) on "
        "DATASET_DIR (any layout seglite check recognises: VOC, CamVid, COCO JSON, Cityscapes, "
        "ADE20K, Oxford-IIIT Pet, images/ + masks/).",
    )
    p.add_argument("model_arg", nargs="?", metavar="MODEL",
                   help="zoo name or model file (required, here or as --model)")  # fmt: skip
    p.add_argument("dataset_dir", metavar="DATASET_DIR", help="dataset root folder")
    p.add_argument("--split", default="val", help="split to evaluate (default val)")
    p.add_argument(
        "--dataset", dest="dataset_kind", default="auto",
        choices=DATASET_KINDS, help="layout (default: detect)",
    )  # fmt: skip
    p.add_argument("--labels", default=None, help="folder datasets: label file or label-set key")
    p.add_argument("--output-stride", type=int, choices=(8, 16, 32), default=None,
                   help="PyTorch checkpoints: inference output stride (default 8)")  # fmt: skip
    p.add_argument("--native", action="store_true",
                   help="checkpoints: PyTorch whole-image path; --scales are multiples of the "
                   "image size, --accurate means 0.5..1.75 + flip (faster than tiling)")  # fmt: skip
    p.add_argument("--backend", default="auto", help="auto, litert, onnx or torch")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="also write the result as JSON ('-' for stdout)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..data import open_dataset
    from ..errors import OptionError
    from ..eval import evaluate, evaluate_checkpoint
    from ..zoo import resolve

    if args.model_arg and args.model and args.model_arg != args.model:
        raise OptionError("give the model once: as MODEL or as --model")
    model = args.model_arg or args.model
    if model is None:
        raise OptionError("which model? seglite eval MODEL DATASET_DIR")
    dataset = open_dataset(
        args.dataset_dir, kind=args.dataset_kind, split=args.split, labels=args.labels
    )
    kw = segmenter_kwargs(args)
    progress = not args.no_progress and sys.stderr.isatty()
    if args.native:
        path = resolve(model).path
        if path.suffix.lower() != ".safetensors":
            raise OptionError("--native evaluates seglite .safetensors checkpoints only")
        scales, flip = (args.scales or (1.0,)), args.flip
        if args.accurate:
            scales, flip = NATIVE_ACCURATE_SCALES, True
        result = evaluate_checkpoint(
            path, dataset, num_threads=kw["num_threads"], scales=scales, flip=flip,
            output_stride=args.output_stride or 8, limit=args.limit, progress=progress,
        )  # fmt: skip
    else:
        result = evaluate(
            model, dataset, num_threads=kw["num_threads"], scales=kw["scales"], flip=kw["flip"],
            accurate=kw["accurate"],
            output_stride=args.output_stride, max_pixels=kw["max_pixels"], backend=args.backend,
            limit=args.limit, progress=progress,
        )  # fmt: skip
    data = result.as_dict()
    if args.json == "-":
        print(json.dumps(data, indent=2))
        return 0
    rows = [
        {"class": name, "IoU %": "-" if v is None else f"{v:.2f}"}
        for name, v in data["per_class_iou"].items()
    ]
    print(format_table(rows))
    s = data["settings"]
    how = f"scales {','.join(f'{x:g}' for x in s['scales'])}" + (" + flip" if s["flip"] else "")
    if "output_stride" in s:
        how += f", OS {s['output_stride']}"
    print(
        f"\n{data['model']} on {data['dataset']} [{data['split']}], {data['images']} images, "
        f"{s['path']}/{s['backend']}, {how}\n"
        f"mIoU {data['miou']:.2f}  pixel acc {data['pixel_acc']:.2f}  "
        f"mean acc {data['mean_acc']:.2f}  fwIoU {data['fwiou']:.2f}  "
        f"({data['ms_per_image']:.0f} ms/image)"
    )
    if args.json:
        from pathlib import Path

        from ..train.state import atomic_write_json

        atomic_write_json(Path(args.json), data, sort_keys=False)
    return 0
