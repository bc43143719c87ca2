"""seglite inspect: what a model takes and gives, and where it will load; --fix adds metadata."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "inspect",
        help="inputs, normalization, outputs, labels, ops, MACs, MediaPipe/Task Library verdict",
        description="Inspect MODEL (zoo name, .tflite, .onnx or seglite .safetensors): inputs "
        "and quantization, the normalization it expects and where that came from, outputs, "
        "labels, size, op counts, MACs, runtimes, whether MediaPipe's and the Task Library's "
        "ImageSegmenter load it as it is, and whether it imports into PyTorch. --fix OUT "
        "writes a .tflite copy with the metadata they need (labels and normalization).",
    )
    p.add_argument("model", metavar="MODEL", help="zoo name or model file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fix", metavar="OUT", default=None,
                   help="write a copy of the .tflite with metadata added to OUT")  # fmt: skip
    p.add_argument("--labels", default=None,
                   help="--fix: label file (one name a line) or label-set key (voc21...)")  # fmt: skip
    p.add_argument(
        "--mean", default=None, help="--fix: input mean, e.g. 127.5 or 123.7,116.3,103.5"
    )
    p.add_argument("--std", default=None, help="--fix: input std, e.g. 127.5")
    p.add_argument("--activation", default=None, choices=("none", "softmax", "sigmoid"),
                   help="--fix: what the output scores are (MediaPipe's confidence masks)")  # fmt: skip
    p.add_argument("--no-import", action="store_true", help="skip the PyTorch import try")
    return p


def _yes(v) -> str:
    return {True: "yes", False: "no", None: "?"}[v]


def format_report(r: dict) -> str:
    def tensor(t: dict) -> str:
        q = t.get("quantization")
        qt = f", scale {q['scale']:.6g} zero point {q['zero_point']}" if q else ""
        kind = f" -> {t['kind']}" if "kind" in t else ""
        return f"{t['name'] or '?'} {t['shape']} {t['dtype']}{qt}{kind}"

    n = r["normalization"]
    lines = [
        f"model       {r['model']}"
        + (f" ({r['path']})" if r["path"] != r["model"] else "")
        + (f", zoo {r['zoo']}" if r.get("zoo") else ""),
        f"format      {r['format']}, {r['size_bytes'] / 1e6:.2f} MB",
    ]
    lines += [f"input       {tensor(t)}" for t in r["inputs"]]
    lines.append(
        f"normalize   (x - {','.join(str(v) for v in n['mean']) if isinstance(n['mean'], list) else n['mean']})"
        f" / {','.join(str(v) for v in n['std']) if isinstance(n['std'], list) else n['std']}"
        f"  [{n['source']}, {n['confidence']}]" + (f"  {n['note']}" if n.get("note") else "")
    )
    lines += [f"output      {tensor(t)}" for t in r["outputs"]]
    labels = r["labels"] or []
    shown = ", ".join(lb[:24] for lb in labels[:6]) + (", ..." if len(labels) > 6 else "")
    count = (
        r["classes"]
        if r["classes"] is not None
        else "? (class ids out: the count is not in the file)"
    )
    lines.append(
        f"classes     {count}"
        + (f": {shown}  [{r['labels_source']}]" if labels else " (no labels)")
    )
    if r.get("accurate_scales"):  # the file's own --accurate (a model run on enlarged frames)
        scales = ", ".join(f"{s:g}x" for s in r["accurate_scales"])
        lines.append(f"accurate    tiles at {scales} the input, each mirrored  [metadata]")
    if r.get("op_count"):
        top = ", ".join(f"{k} {v}" for k, v in list(r["ops"].items())[:8])
        lines.append(f"ops         {r['op_count']} ({top}{', ...' if len(r['ops']) > 8 else ''})")
    if r.get("macs"):
        lines.append(f"MACs        {r['macs'] / 1e9:.2f} G")
    if r.get("params"):
        lines.append(f"params      {r['params'] / 1e6:.2f} M")
    for rt in r["runtimes"]:
        lines.append(f"runtime     {rt['runtime']}: {_yes(rt['ok'])} ({rt['note']})")
    mp = r["mediapipe"]
    verdict = (
        "loads and works"
        if mp["works"]
        else ("loads, but does not work" if mp["loads"] else "refuses it")
    )
    lines.append(
        f"MediaPipe   {verdict}"
        + (f"; missing: {'; '.join(mp['missing'])}" if mp["missing"] else "")
    )
    lines += [f"            - {note}" for note in mp["notes"]]
    tl = r["task_library"]
    lines.append(
        "Task Lib.   "
        + ("loads" if tl["loads"] else "refuses it; needs: " + "; ".join(tl["missing"]))
    )
    if "pytorch_import" in r:
        pi = r["pytorch_import"]
        lines.append(f"PyTorch     {'imports' if pi['ok'] else 'does not import'}: {pi['note']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from ..modelinfo import inspect_model

    fix_opts = (args.labels, args.mean, args.std, args.activation)
    if args.fix is None and any(v is not None for v in fix_opts):
        raise OptionError("--labels, --mean, --std and --activation go with --fix OUT")
    if args.fix is not None:
        from ..modelinfo.fix import fix_metadata

        out = fix_metadata(
            args.model, args.fix, labels=args.labels, mean=args.mean, std=args.std,
            activation=args.activation,
        )  # fmt: skip
        report = inspect_model(out, try_import=not args.no_import)
        report["fixed_from"] = args.model
    else:
        report = inspect_model(args.model, try_import=not args.no_import)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        if args.fix is not None:
            print(f"wrote {args.fix} (metadata added)\n")
        print(format_report(report))
    return 0
