"""seglite import: a zoo DeepLab (or any DeepLab .tflite) as a trainable PyTorch checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "import",
        help="import a DeepLab .tflite into a PyTorch checkpoint (for seglite train --init)",
        description="Read MODEL's architecture from its graph, load its weights into the "
        "PyTorch DeepLab, check it against LiteRT and write a .safetensors checkpoint. "
        "Needs seglite[torch].",
    )
    p.add_argument("model", metavar="MODEL", help="zoo name or .tflite file")
    p.add_argument("--out", required=True, metavar="FILE.safetensors", help="checkpoint to write")
    p.add_argument("--image", action="append", default=None, metavar="FILE",
                   help="photo for the parity check (repeatable; default: a synthetic scene)")  # fmt: skip
    p.add_argument("--no-check", action="store_true", help="skip the parity check")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    return p


def _synthetic_scene(size: int = 384):
    """A deterministic smooth image with blobs: enough structure for several classes."""
    import numpy as np

    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(6 * x + 2 * y), np.cos(5 * y - x), np.sin(4 * (x + y))], -1)
    return ((rgb * 0.5 + 0.5) * 255).astype(np.uint8)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import OptionError, require

    require("torch", "torch")
    import torch
    from PIL import Image

    from ..models import count_params, import_tflite, save_checkpoint
    from ..models.tflite_parity import parity
    from ..zoo import resolve

    out = Path(args.out)
    if out.suffix.lower() != ".safetensors":
        raise OptionError(f"--out must end in .safetensors, got {out.name}")
    resolved = resolve(args.model)
    if resolved.path.suffix.lower() != ".tflite":
        raise OptionError(f"{resolved.name}: only .tflite DeepLab models can be imported")
    if resolved.entry is not None and resolved.entry.imports != "yes":
        raise OptionError(f"{resolved.name} is not a DeepLab: its weights do not import")
    torch.set_num_threads(max(1, args.threads))
    labels = resolved.entry.labels if resolved.entry is not None else None
    model, info = import_tflite(resolved.path, labels=labels)
    cfg = info["config"]
    arch = (
        f"DeepLab {cfg['version']}, {cfg['backbone']} depth {cfg['depth_multiplier']:g}, "
        f"output stride {cfg['output_stride']}, ASPP rates {cfg['atrous_rates'] or 'none (lite)'}"
        f"{' + image pooling' if cfg.get('image_pooling') else ''}"
        f"{', decoder' if cfg['version'] == 'v3+' else ''}, {cfg['num_classes']} classes"
    )
    print(f"{resolved.name}: {arch}")
    print(f"  weights {info['weights']}, {info['tensors']} convolutions, "
          f"{count_params(model):,} parameters, input {info['input_size'][0]}x{info['input_size'][1]}")  # fmt: skip
    if not args.no_check:
        if args.image:
            images = [np.asarray(Image.open(f).convert("RGB")) for f in args.image]
            names = [Path(f).name for f in args.image]
        else:
            images, names = [_synthetic_scene()], ["synthetic scene"]
        quantized = info["input_quantization"] is not None or "int8" in info["weights"]
        plain = parity(model, resolved.path, images, threads=args.threads)
        simulated = (
            parity(model, resolved.path, images, threads=args.threads, simulate_quantization=True)
            if quantized else plain
        )  # fmt: skip
        for name, r, s in zip(names, plain, simulated, strict=True):
            print(f"  parity vs LiteRT on {name}: argmax agreement {r['agreement']:.2%}, "
                  f"max logit difference {r['max_diff']:.3g} (logit range {r['logit_range']:.3g})")  # fmt: skip
            if quantized:
                print(f"    with the graph's 8-bit activation rounding simulated: "
                      f"{s['agreement']:.2%} ({s['confident_agreement']:.2%} where its two best "
                      f"scores are more than two quanta apart)")  # fmt: skip
    save_checkpoint(model, out, {"seglite.imported_from": resolved.name})
    print(f"wrote {out} (seglite train --init {out})")
    return 0
