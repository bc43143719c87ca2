"""Shared locations of the real models, golden outputs and datasets used by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL_DIR = Path(os.environ.get("SEGLITE_MODEL_DIR") or SHARED / "models").resolve()
GOLDEN = SHARED / "golden"
DATA = SHARED / "data"
EXAMPLES = REPO / "examples"

# The zoo reads this; set it once so every test sees the shared models.
os.environ.setdefault("SEGLITE_MODEL_DIR", str(MODEL_DIR))
os.environ.setdefault("SEGLITE_OFFLINE", "1")


@pytest.fixture(scope="session")
def starter():
    from seglite import Segmenter

    return Segmenter("deeplabv3", num_threads=2)
