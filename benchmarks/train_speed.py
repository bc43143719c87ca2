"""Training steps per second in float32, bf16 autocast, channels_last and both.

Times exactly the step a run executes (``seglite.train.step``: forward under the run's
autocast, loss, backward, SGD) on real augmented crops of a dataset, with the modes
interleaved round by round so that a busy machine slows all of them alike. The first
steps of every round are warm-up (oneDNN builds its kernels per shape and format) and
are not counted. Ratios are against float32 measured in the same run.

    python benchmarks/train_speed.py --dataset ../shared/data/camvid \\
        --init /path/to/start.safetensors --crop 321 321 --batch 8
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

MODES = {
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "channels_last": ("fp32", True),
    "bf16+channels_last": ("bf16", True),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="dataset root (any layout seglite opens)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--init", default="starter", help="starter | scratch | a checkpoint")
    ap.add_argument("--crop", type=int, nargs=2, default=[321, 321], metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per mode per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per mode per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    import torch

    from seglite.data import open_dataset
    from seglite.train.config import TrainConfig
    from seglite.train.model_init import build_model, label_arg
    from seglite.train.optim import make_optimizer
    from seglite.train.sampling import BatchSchedule, TrainSet, make_transform
    from seglite.train.step import autocast, segmentation_loss, to_layout

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"train_speed: unknown mode(s) {', '.join(bad)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    data = open_dataset(args.dataset, split=args.split)
    cfg = TrainConfig(dataset=args.dataset, init=args.init, crop_size=list(args.crop),
                      batch_size=args.batch, freeze_bn="encoder", lr=0.001)  # fmt: skip
    base = build_model(cfg, data.num_classes, label_arg(data))
    ignore = data.ignore_index if data.ignore_index is not None else -100
    samples = TrainSet(data, make_transform(cfg, data), cfg.seed)
    schedule = iter(BatchSchedule(len(data), args.batch, seed=0, rank=0, world=1, start=0))
    per_round = args.steps + args.warmup
    batches = []
    for _ in range(per_round):
        keys = next(schedule)
        xs, ys = zip(*(samples[k] for k in keys), strict=True)
        batches.append((torch.stack(xs), torch.stack(ys)))
    device = torch.device("cpu")

    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes:
            precision, channels_last = MODES[mode]
            model = to_layout(copy.deepcopy(base), channels_last)
            model.train()
            opt = make_optimizer(model, cfg)
            for i, (x, y) in enumerate(batches):
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                with autocast(precision, device):
                    logits = model(to_layout(x, channels_last))
                loss = segmentation_loss(logits, y, ignore_index=ignore)
                loss.backward()
                opt.step()
                if i >= args.warmup:
                    times[mode].append(time.perf_counter() - t0)
            print(f"round {r + 1}/{args.rounds} {mode}: "
                  f"{statistics.median(times[mode][-args.steps:]):.2f} s/step", flush=True)  # fmt: skip

    ref = statistics.median(times[modes[0]])
    rows = {}
    print(f"\n{'mode':<20} {'s/step':>7} {'images/s':>9} {'speed-up':>9}")
    for mode in modes:
        med = statistics.median(times[mode])
        rows[mode] = {"s_per_step": round(med, 3), "images_per_s": round(args.batch / med, 2),
                      "speedup_vs_" + modes[0]: round(ref / med, 2)}  # fmt: skip
        print(f"{mode:<20} {med:>7.2f} {args.batch / med:>9.2f} {ref / med:>8.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "modes": rows}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
