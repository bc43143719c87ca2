"""seglite export: a checkpoint (or the starter model) to .tflite or .onnx, then a parity check."""

from __future__ import annotations

import argparse
import sys


def _size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="export a model to TFLite (fp32/fp16/int8, with metadata) or ONNX",
        description=(
            "Export a seglite checkpoint to .tflite (NHWC float input normalized as "
            "(x - 127.5) / 127.5, logits at the input size, labels and normalization in the "
            "TFLite metadata) or .onnx (same convention, dynamic batch). A parity check "
            "against the PyTorch model runs after every export."
        ),
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a seglite .safetensors checkpoint, a DeepLab .tflite to import, a zoo name (e.g. camvid), or 'starter'",
    )
    p.add_argument("--format", "-f", default="tflite", help="tflite (default) or onnx")
    p.add_argument(
        "--precision",
        "-p",
        default="fp32",
        help="fp32 (default), fp16 (float16 weights) or int8 (needs --calibration); TFLite only",
    )
    p.add_argument(
        "--calibration",
        metavar="DIR",
        default=None,
        help="folder of real images for int8 calibration (50-200 like the ones the model will see)",
    )
    p.add_argument(
        "--num-calibration",
        type=_size,
        default=100,
        metavar="N",
        help="use at most N calibration images, spread over the folder (default 100)",
    )
    p.add_argument(
        "--input-size",
        nargs=2,
        type=_size,
        metavar=("H", "W"),
        default=None,
        help="model input height and width (default: stored with the checkpoint, else 513 513)",
    )
    p.add_argument(
        "--output-stride",
        type=_size,
        default=None,
        metavar="N",
        help="8, 16 or 32 baked into the graph (default: the checkpoint's evaluation stride)",
    )
    p.add_argument(
        "--out", "-o", default=None, help="output file (default: <name>.<precision>.<format>)"
    )
    p.add_argument(
        "--argmax",
        action="store_true",
        help="output class ids (uint8 [1, H, W]) instead of logits: the smallest on-device post-processing",
    )
    p.add_argument(
        "--uint8-input",
        action="store_true",
        help="int8 only: take raw uint8 pixels (Coral/NPU style) instead of normalized floats",
    )
    p.add_argument(
        "--parity-images",
        metavar="DIR",
        default=None,
        help="images for the parity check (default: the calibration folder, else examples/)",
    )
    p.add_argument("--no-parity", action="store_true", help="skip the parity check")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the result lines")
    return p


def run(args: argparse.Namespace) -> int:
    from ..export import export_model

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    result = export_model(
        args.checkpoint,
        format=args.format,
        precision=args.precision,
        out=args.out,
        input_size=tuple(args.input_size) if args.input_size else None,
        calibration=args.calibration,
        num_calibration=args.num_calibration,
        argmax=args.argmax,
        parity=not args.no_parity,
        parity_images=args.parity_images,
        output_stride=args.output_stride,
        uint8_input=args.uint8_input,
        log=log,
    )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    h, w = result.input_size
    kind = "class ids" if result.argmax else "logits"
    print(
        f"wrote {result.path} ({result.format} {result.precision}, {h}x{w}, {kind}, "
        f"{result.size_bytes / 1e6:.2f} MB) in {result.seconds:.0f}s"
    )
    if result.parity is not None:
        print(result.parity.summary())
        for warning in result.parity.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0
