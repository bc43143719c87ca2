"""Wall time of a one-image ``seglite segment`` from the shell, against floors, in one run.

A one-image run is bound by start-up: the interpreter, imports, opening the model. The
commands run interleaved (one of each per repeat, order rotated) so that other load on a
shared machine hits them alike; the table shows the median and ratios to the floor:

- ``python``: the interpreter alone (``python -c pass``);
- ``imports``: numpy, Pillow and LiteRT imported, nothing run;
- ``floor``: the least a mask costs by hand: those imports, the model read and its
  interpreter made, the JPEG decoded and squashed, one invoke, an argmax, the small mask
  resized to the photo and written as a PNG;
- ``seglite --mask``: ``seglite segment IMG --mask`` (the same output, full size);
- ``seglite``: ``seglite segment IMG`` (overlay, mask and JSON).

    python benchmarks/cli_start.py [--image IMG] [--repeats 15] [--json out.json]
    git worktree add /tmp/before <rev> && python benchmarks/cli_start.py --before /tmp/before/src

``--before SRC`` adds ``seglite (before)``: the same full command run from another
checkout's ``src`` (an older revision), interleaved with the rest.

Bytecode is written once first (``PYTHONDONTWRITEBYTECODE`` is dropped for the runs), as
it is on a user's machine after the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO / "examples" / "astronaut.jpg"

FLOOR = """
import sys
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
model, image, out = sys.argv[1:4]
it = Interpreter(model_path=model, num_threads=2)
it.allocate_tensors()
inp, outp = it.get_input_details()[0], it.get_output_details()[0]
h, w = inp["shape"][1:3]
photo = Image.open(image).convert("RGB")
x = np.asarray(photo.resize((w, h), Image.BILINEAR), np.float32) / 127.5 - 1
it.set_tensor(inp["index"], x[None])
it.invoke()
small = it.get_tensor(outp["index"])[0].argmax(-1).astype(np.uint8)
Image.fromarray(small).resize(photo.size, Image.NEAREST).save(out, compress_level=1)
"""


def commands(image: Path, model: Path, tmp: Path, before: Path | None) -> dict[str, list[str]]:
    py = sys.executable
    seglite = [py, "-m", "seglite", "segment", str(image), "--quiet", "--overwrite"]
    cmds = {
        "python": [py, "-c", "pass"],
        "imports": [py, "-c", "import numpy, PIL.Image, ai_edge_litert.interpreter"],
        "floor": [py, "-c", FLOOR, str(model), str(image), str(tmp / "floor.png")],
        "seglite --mask": [*seglite, "--mask", "--out", str(tmp / "mask")],
        "seglite": [*seglite, "--out", str(tmp / "all")],
    }
    if before is not None:  # its src first on the path, ahead of the installed seglite
        boot = f"import sys; sys.path.insert(0, {str(before)!r}); import runpy; "
        boot += "runpy.run_module('seglite', run_name='__main__')"
        cmds["seglite (before)"] = [py, "-c", boot, *seglite[3:], "--out", str(tmp / "before")]
    return cmds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--before", type=Path, default=None, help="another checkout's src folder")
    args = p.parse_args(argv)

    from seglite.cli import format_table
    from seglite.zoo import resolve

    model = resolve("deeplabv3", progress=False).path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    tmp = Path(tempfile.mkdtemp(prefix="seglite-cli-start-"))
    try:
        cmds = commands(args.image, model, tmp, args.before)
        for cmd in cmds.values():  # bytecode written, caches warm
            subprocess.run(cmd, env=env, check=True, capture_output=True)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        names = list(cmds)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t = time.perf_counter()
                subprocess.run(cmds[name], env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        {"command": k, "median ms": f"{med[k] * 1e3:.0f}", "min ms": f"{min(times[k]) * 1e3:.0f}",
         "/ floor": f"{med[k] / med['floor']:.2f}x"}
        for k in names
    ]  # fmt: skip
    print(f"one-image start-up, {args.image.name}, {args.repeats} interleaved repeats")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"image": str(args.image), "times_s": times}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
