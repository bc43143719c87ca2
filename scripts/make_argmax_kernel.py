"""Build src/seglite/assets/argmax.tflite: a one-op LiteRT graph (ARG_MAX over the last axis).

numpy's argmax over a short last axis (21 classes) costs about as much per element as a
Python-level loop step; LiteRT's ARG_MAX kernel does the same work in a fraction of the
time, and the graph's input can be resized to any (1, H, W, C). Needs litert-torch
(``pip install -e ".[export]"``); the 1 KB result is committed, so users never need it.
"""

from pathlib import Path

import litert_torch
import torch


class ArgmaxLastAxis(torch.nn.Module):
    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.argmax(scores, dim=-1).to(torch.int32)


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "src" / "seglite" / "assets" / "argmax.tflite"
    edge = litert_torch.convert(ArgmaxLastAxis().eval(), (torch.randn(1, 257, 257, 21),))
    edge.export(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes)")
