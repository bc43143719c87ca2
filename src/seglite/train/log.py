"""A run's records: JSONL lines and the PNG of its curves (rank 0 only)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class TrainLog:
    """JSONL records (one per line, flushed) and the PNG of the curves, rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path, self.enabled = out / "log.jsonl", enabled
        self.out = out

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self) -> None:
        if self.enabled:
            try:
                plot_curves(self.path, self.out / "curves.png")
            except ImportError:
                pass


def plot_curves(log_path: Path, png: Path) -> Path:
    """Loss (and learning rate) and validation mIoU against iterations, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(ln) for ln in Path(log_path).read_text().splitlines() if ln.strip()]
    tr = [r for r in recs if "loss" in r]
    va = [r for r in recs if "val_miou" in r]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if tr:
        a1.plot([r["iter"] for r in tr], [r["loss"] for r in tr], lw=0.8, label="train loss")
        a1.set_yscale("log")
    a1.set_xlabel("iteration")
    a1.set_ylabel("cross-entropy")
    a1.grid(alpha=0.3)
    a1.legend(loc="upper right")
    for os_ in sorted({r.get("output_stride", 16) for r in va}):
        pts = [r for r in va if r.get("output_stride", 16) == os_]
        a2.plot(
            [r["iter"] for r in pts], [r["val_miou"] for r in pts], "o-", label=f"val mIoU OS {os_}"
        )
    a2.set_xlabel("iteration")
    a2.set_ylabel("mIoU (%)")
    a2.grid(alpha=0.3)
    if va:
        a2.legend(loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png)
    return png
