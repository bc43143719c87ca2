"""What each export precision costs and buys: size, accuracy (mIoU), agreement, latency.

    python benchmarks/export_quality.py starter                 # VOC subset, starter model
    python benchmarks/export_quality.py runs/camvid/model.safetensors   # CamVid val

The model is converted once (litert-torch); fp16 and int8 are quantized from that float
model (ai-edge-quantizer), int8 calibrated on real images that are not evaluated; the
ONNX export is added for comparison. Every file is then

- scored on the dataset through seglite's Segmenter, exactly as deployed (whole image
  resized to the model input, scores upsampled to the image): mIoU with seglite.eval's
  confusion matrix;
- compared with the PyTorch model on the evaluated images at the model size (argmax
  agreement, max |logit diff|: seglite.export.parity);
- timed with seglite.bench (invoke stage, every file interleaved in one run, so the
  latency ratios to fp32 are fair on a shared machine).

Calibration images: ``--calibration DIR``; else the dataset's train split when it has one
(CamVid); else the last ``--num-calibration`` images of the split (at most a quarter of
it), which are then left out of the evaluation (the VOC subset has only val).

Targets (issue 6): fp32 agreement >= 99.5%; fp16 within 0.3 mIoU and int8 within 1.5 mIoU
of fp32; int8 about a quarter of the fp32 size.

Measured (``starter``, VOC subset: 105 val images evaluated, int8 calibrated on the other
34; 257x257, 2 threads, one interleaved timing run; litert-torch 0.10, ai-edge-quantizer
0.10, ai-edge-litert 2.3, onnxruntime 1.32, shared 2-core x86 machine):

| export | size MB | vs fp32 | mIoU | delta | agreement vs PyTorch | p50 ms | vs fp32 |
|---|---:|---:|---:|---:|---:|---:|---:|
| tflite fp32 | 2.776 | 1.00 | 55.01 | 0.00 | 100.0% | 23.8 | 1.00 |
| tflite fp16 | 1.423 | 0.51 | 55.01 | 0.00 | 99.96% | 23.6 | 0.99 |
| tflite int8 | 0.951 | 0.34 | 54.68 | -0.33 | 98.55% | 12.8 | 0.54 |
| tflite int8, uint8 input | 0.951 | 0.34 | 54.70 | -0.31 | 98.54% | 13.1 | 0.55 |
| onnx fp32 | 3.055 | 1.10 | 55.01 | 0.00 | 100.0% | 28.6 | 1.20 |

int8 is a third, not a quarter, of fp32 for this 0.7M-parameter model: its 715 kB of
int8 weights carry 209 kB of per-channel scales and int64 zero points (the depthwise
layers have 9 weights per channel); a larger model comes closer to a quarter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TARGETS = {"fp32_agreement": 99.5, "fp16_miou_drop": 0.3, "int8_miou_drop": 1.5}


def _default_dataset(num_classes: int) -> Path:
    if num_classes == 21:
        return SHARED_DATA / "voc2012"
    if num_classes == 11:
        return SHARED_DATA / "camvid"
    raise SystemExit(f"no default dataset for {num_classes} classes: pass --data DIR")


def _calibration(dataset, root: Path, n: int, args, tmp: Path) -> tuple[Path, list[int]]:
    """(calibration folder, indices of the dataset left to evaluate)."""
    every = list(range(len(dataset)))
    if args.calibration:
        return Path(args.calibration), every
    train = root / "train"
    if train.is_dir() and dataset.split != "train":
        return train, every
    n = min(n, len(dataset) // 4)  # keep three quarters for the evaluation
    if n < 8:
        raise SystemExit(f"{root}: {len(dataset)} images, too few to hold some out for calibration")
    held = every[-n:]
    folder = tmp / "calibration"
    folder.mkdir()
    for i in held:
        src = dataset.pairs[i][0]
        os.symlink(src.resolve(), folder / src.name)
    return folder, every[:-n]


def _miou(path: Path, dataset, indices: list[int], threads: int) -> tuple[float, float]:
    """(mIoU %, pixel accuracy %) of a model file through the Segmenter: seglite.eval's
    ``evaluate`` where this build has it, else the same loop over its confusion matrix."""
    assert indices == list(range(len(indices))), "evaluation takes a prefix of the split"
    try:
        from seglite.eval.evaluate import evaluate
    except ImportError:
        evaluate = None
    if evaluate is not None:
        s = evaluate(path, dataset, num_threads=threads, limit=len(indices)).as_dict()
        return s["miou"], s["pixel_acc"]
    from seglite import Segmenter
    from seglite.eval import ConfusionMatrix

    seg = Segmenter(path, num_threads=threads)
    cm = ConfusionMatrix(dataset.num_classes, dataset.ignore_index)
    for i in indices:
        mask = seg.segment(dataset.pairs[i][0]).category_mask
        cm.update(mask, dataset.read_mask(i, (mask.shape[1], mask.shape[0])))
    s = cm.summary()
    return s["miou"], s["pixel_acc"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="'starter', a .safetensors checkpoint or a DeepLab .tflite")
    ap.add_argument("--data", default=None, help="dataset folder (default: VOC subset / CamVid)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=None, help="evaluate at most N images")
    ap.add_argument("--calibration", default=None, help="calibration image folder")
    ap.add_argument("--num-calibration", type=int, default=64)
    ap.add_argument("--input-size", nargs=2, type=int, default=None, metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parity-images", type=int, default=40, help="images for agreement")
    ap.add_argument("--bench-secs", type=float, default=4.0, help="timed seconds per model")
    ap.add_argument("--output-stride", type=int, default=None, help="default: checkpoint's eval")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--no-uint8", action="store_true", help="skip the uint8-input int8 variant")
    ap.add_argument("--out-dir", default=None, help="keep the exported files here")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    from seglite.bench import make_configs, make_input, run_bench
    from seglite.data.datasets import open_dataset
    from seglite.export import export_model, load_pixels, load_source
    from seglite.export.parity import check_parity

    t_start = time.perf_counter()
    src = load_source(args.checkpoint, output_stride=args.output_stride)
    n_classes = len(src.labels)
    root = Path(args.data) if args.data else _default_dataset(n_classes)
    dataset = open_dataset(root, split=args.split)
    if dataset.num_classes != n_classes:
        raise SystemExit(f"{root}: {dataset.num_classes} classes, the model has {n_classes}")
    tmp = Path(tempfile.mkdtemp(prefix="seglite-export-quality-"))
    out_dir = Path(args.out_dir) if args.out_dir else tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    calib_dir, indices = _calibration(dataset, root, args.num_calibration, args, tmp)
    if args.limit:
        indices = indices[: args.limit]
    size = tuple(args.input_size) if args.input_size else None

    def log(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    rows: list[dict] = []
    float_model = None
    variants = [("fp32", "fp32", False), ("fp16", "fp16", False), ("int8", "int8", False)]
    if not args.no_uint8:
        variants.append(("int8 uint8-in", "int8", True))
    for label, precision, uint8_input in variants:
        print(f"exporting {label}", file=sys.stderr)
        r = export_model(
            src,
            precision=precision,
            out=out_dir / f"{src.name}.{label.replace(' ', '.')}.tflite",
            input_size=size,
            calibration=calib_dir if precision == "int8" else None,
            num_calibration=args.num_calibration,
            float_model=float_model,
            uint8_input=uint8_input,
            parity=False,
            log=log,
        )
        if precision == "fp32":
            float_model = r.path.read_bytes()
        rows.append(
            {"format": "tflite", "precision": label, "kind": precision, "path": r.path, "result": r}
        )
    if not args.no_onnx:
        print("exporting onnx", file=sys.stderr)
        r = export_model(
            src, format="onnx", out=out_dir / f"{src.name}.onnx", input_size=size, parity=False
        )
        rows.append(
            {"format": "onnx", "precision": "fp32", "kind": "fp32", "path": r.path, "result": r}
        )
    input_size = rows[0]["result"].input_size

    pick = np.linspace(0, len(indices) - 1, min(args.parity_images, len(indices)))
    parity_paths = [dataset.pairs[indices[int(round(i))]][0] for i in pick]
    pixels = load_pixels(parity_paths, input_size)
    for row in rows:
        name = f"{row['format']} {row['precision']}"
        print(f"evaluating {name} on {len(indices)} images", file=sys.stderr)
        row["miou"], row["pixel_acc"] = _miou(row["path"], dataset, indices, args.threads)
        rep = check_parity(
            src.model, row["path"], pixels, precision=row["kind"], num_threads=args.threads
        )
        row["agreement"], row["max_abs_diff"] = rep.agreement, rep.max_abs_diff

    print("timing (interleaved, one run)", file=sys.stderr)
    configs = make_configs([str(r["path"]) for r in rows], threads=(args.threads,))
    report = run_bench(
        configs, input=make_input("random"), min_secs=args.bench_secs, runs=20, isolate=True
    )
    ratios = report.ratios()
    for row, res, ratio in zip(rows, report.results, ratios):
        row["latency_ms"], row["latency_ratio"], row["noisy"] = res.stats.p50, ratio, res.noisy

    base = rows[0]
    fp32_size = base["result"].size_bytes
    table = []
    for row in rows:
        size_b = row["result"].size_bytes
        table.append(
            {
                "format": row["format"],
                "precision": row["precision"],
                "size_mb": round(size_b / 1e6, 3),
                "size_vs_fp32": round(size_b / fp32_size, 3),
                "miou": row["miou"],
                "miou_delta": round(row["miou"] - base["miou"], 2),
                "pixel_acc": row["pixel_acc"],
                "agreement_vs_pytorch": round(row["agreement"], 3),
                "max_abs_logit_diff": None
                if row["max_abs_diff"] is None
                else float(f"{row['max_abs_diff']:.3g}"),
                "latency_ms_p50": round(row["latency_ms"], 2),
                "latency_vs_fp32": round(row["latency_ratio"], 3),
                "noisy": row["noisy"],
            }
        )
    by = {(t["format"], t["precision"]): t for t in table}
    checks = {
        "fp32 agreement >= 99.5%": by[("tflite", "fp32")]["agreement_vs_pytorch"]
        >= TARGETS["fp32_agreement"],
        "fp16 within 0.3 mIoU": abs(by[("tflite", "fp16")]["miou_delta"])
        <= TARGETS["fp16_miou_drop"],
        "int8 within 1.5 mIoU": -by[("tflite", "int8")]["miou_delta"] <= TARGETS["int8_miou_drop"],
    }
    if ("tflite", "int8 uint8-in") in by:
        checks["int8 uint8-in within 1.5 mIoU"] = (
            -by[("tflite", "int8 uint8-in")]["miou_delta"] <= TARGETS["int8_miou_drop"]
        )
    if ("onnx", "fp32") in by:
        checks["onnx agreement >= 99.5%"] = (
            by[("onnx", "fp32")]["agreement_vs_pytorch"] >= TARGETS["fp32_agreement"]
        )

    from seglite.cli import format_table

    print(
        f"\n{args.checkpoint} at {input_size[0]}x{input_size[1]}: {dataset.name} {args.split}, "
        f"{len(indices)} images evaluated, int8 calibrated on {calib_dir} "
        f"({args.num_calibration} max), {args.threads} threads, "
        f"agreement on {len(parity_paths)} images"
    )
    print(format_table(table))
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"({time.perf_counter() - t_start:.0f}s)")
    if args.json:
        payload = {
            "checkpoint": args.checkpoint,
            "dataset": dataset.name,
            "split": args.split,
            "images": len(indices),
            "input_size": list(input_size),
            "calibration": str(calib_dir),
            "threads": args.threads,
            "rows": table,
            "checks": checks,
            "environment": report.environment,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
