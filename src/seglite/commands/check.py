"""seglite check: what a dataset folder holds and what is wrong with it, before training."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    from ..data.kinds import DATASET_KINDS

    p = sub.add_parser(
        "check",
        help="check a dataset: layout, mask encoding, classes, problems",
        description="Read every image/mask pair of DATASET and report the layout, pairs, mask "
        "encoding, the values that occur and what they mean, per-class pixel and image "
        "counts, suggested class weights and every problem with its files. Exits 1 when "
        "an error would make training wrong (seglite train refuses those too).",
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset root folder")
    p.add_argument("--split", action="append", default=None,
                   help="check only this split (repeatable; default: every split)")  # fmt: skip
    p.add_argument("--dataset", dest="kind", default="auto", choices=DATASET_KINDS,
                   help="layout (default: detect)")  # fmt: skip
    p.add_argument("--labels", default=None, help="folder datasets: label file or label-set key")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the report as JSON ('-' for stdout only)")  # fmt: skip
    p.add_argument("--all-files", action="store_true", help="list every file of each problem")
    return p


def format_report(report, all_files: bool = False) -> str:
    from ..cli import format_table

    d = report.as_dict()
    splits = ", ".join(f"{k or 'all'} {v}" for k, v in d["splits"].items())
    total = sum(c["pixels"] for c in d["classes"]) or 1
    lines = [
        f"dataset   {d['root']}",
        f"layout    {d['layout']}",
        f"pairs     {d['pairs']} ({splits})",
        f"masks     {d['mask_encoding']}, ignore {d['ignore_index']}, {d['num_classes']} classes",
    ]
    lines += [f"          {n}" for n in d["notes"]]
    lines.append("values    " + _values_line(d))
    rows = [
        {"id": c["id"], "class": c["name"], "pixels %": f"{100 * c['pixels'] / total:.2f}",
         "images": c["images"]}
        for c in d["classes"]
    ]  # fmt: skip
    lines += ["", format_table(rows), ""]
    for name, w in d["class_weights"].items():
        lines.append(f"--class-weights {name}: {','.join(f'{x:g}' for x in w)}")
    lines.append("")
    for p in report.problems:
        lines.append(p.line(len(p.files) if all_files else 4))
    n_err, n_warn = len(report.errors), len(report.problems) - len(report.errors)
    lines.append(
        f"{n_err} error(s), {n_warn} warning(s): training on this data would be wrong"
        if n_err
        else f"ok: no errors, {n_warn} warning(s)"
    )
    return "\n".join(lines)


def _values_line(d: dict) -> str:
    """Values equal to their class id as one range; every other value with its meaning."""
    names = {str(c["id"]): c["name"] for c in d["classes"]}
    same = [v for v in d["values"] if names.get(v["value"]) == v["meaning"]]
    other = [v for v in d["values"] if v not in same]
    total = sum(v["pixels"] for v in d["values"]) or 1
    parts = []
    if same:
        parts.append(f"{same[0]['value']}..{same[-1]['value']} = class ids ({len(same)} used)")
    for v in other[:24]:
        parts.append(
            f"{v['value']} = {v['meaning']}: {100 * v['pixels'] / total:.1f}% of pixels, "
            f"{v['images']} images"
        )
    return "; ".join(parts) + (f"; ... {len(other) - 24} more" if len(other) > 24 else "")


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset

    report = check_dataset(
        args.dataset, kind=args.kind, splits=args.split, labels=args.labels,
        progress=sys.stderr.isatty(),
    )  # fmt: skip
    if args.json == "-":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report, args.all_files))
        if args.json:
            from pathlib import Path

            from ..train.state import atomic_write_json

            atomic_write_json(Path(args.json), report.as_dict(), sort_keys=False)
    return 0 if report.ok else 1
