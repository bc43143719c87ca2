"""seglite ensemble: several checkpoints of one architecture as one model, scores averaged."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ensemble",
        help="combine checkpoints (e.g. seeds of one recipe) into one averaging model",
        description="Write one .safetensors checkpoint that runs every CHECKPOINT and averages "
        "their class scores: better than a typical member on data none of them saw, at one "
        "forward pass per member. The members must share architecture, classes and input "
        "size. The result works wherever a checkpoint does (segment, eval, export, serve). "
        "Needs seglite[torch].",
    )
    p.add_argument(
        "checkpoints", nargs="+", metavar="CHECKPOINT", help="seglite .safetensors files"
    )
    p.add_argument("--out", required=True, metavar="FILE.safetensors", help="checkpoint to write")
    p.add_argument("--member", type=int, default=None, metavar="I",
                   help="instead: write member I of one ensemble CHECKPOINT on its own")  # fmt: skip
    p.add_argument("--half", action="store_true",
                   help="store the weights as float16: half the file (CamVid: 99.99%% of pixels unchanged)")  # fmt: skip
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError, require

    require("torch", "torch")
    from ..models.ensemble import combine_checkpoints
    from ..zoo import resolve

    out = Path(args.out)
    if out.suffix.lower() != ".safetensors":
        raise OptionError(f"--out must end in .safetensors, got {out.name}")
    args.checkpoints = [str(resolve(p).path) for p in args.checkpoints]  # files or zoo names
    if args.member is not None:
        from ..models.ensemble import save_member

        if len(args.checkpoints) != 1:
            raise OptionError("--member takes one ensemble checkpoint")
        path = save_member(args.checkpoints[0], args.member, out)
        print(f"wrote {path} (member {args.member} of {args.checkpoints[0]})")
        return 0
    path = combine_checkpoints(args.checkpoints, out, half=args.half)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({len(args.checkpoints)} members, {size:.1f} MB)")
    return 0
