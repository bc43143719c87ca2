"""The model-input squash inside the graph: same convention as the numpy twin, any size."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import EXAMPLES, model_file
from PIL import Image

from seglite.image import model_pixels
from seglite.postprocess.bilinear import squash
from seglite.runtime import fit_pixels, normalize_into, open_backend

SIZES = [(301, 187), (257, 257), (40, 700), (1, 1), (900, 640)]


def _chelsea(h: int, w: int) -> np.ndarray:
    img = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB")
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR))[None]


def _reference(name: str, pixels: np.ndarray, mean, std) -> np.ndarray:
    """The unmodified model fed by the numpy squash (and numpy normalization)."""
    interp = Interpreter(model_path=str(model_file(name)), num_threads=2)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    raw = inp["dtype"] != np.float32
    fitted = fit_pixels(pixels, tuple(int(v) for v in inp["shape"][1:3]), raw=raw)
    if raw:
        interp.set_tensor(inp["index"], fitted)
    else:
        buf = np.empty(inp["shape"], np.float32)
        normalize_into(buf, fitted, mean, std)
        interp.set_tensor(inp["index"], buf)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


# the second: a float model with a non-square input (360x480), the zoo's camvid-lite of
# before it became int8 (tests/data/SOURCES.md)
@pytest.mark.parametrize(
    "name", ["deeplabv3_257_mv_gpu.tflite", "camvid_edgetpu_cityscapes_fp16.tflite"]
)
def test_graph_squash_matches_the_numpy_twin_at_every_size(name):
    backend = open_backend(model_file(name), num_threads=2)
    assert backend.squashes_in_graph
    for h, w in SIZES:  # one backend: its input is resized from call to call
        pixels = _chelsea(h, w)
        got = np.array(backend.run(pixels))
        ref = _reference(name, pixels, backend.mean, backend.std)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 2e-3, (h, w)  # float rounding only (scores ~ +-40)


def test_quantized_models_squash_in_their_own_quantization():
    name = "deeplabv3_mnv2_pascal_quant.tflite"
    backend = open_backend(model_file(name), num_threads=2)
    assert backend.squashes_in_graph and backend.input_dtype == np.uint8
    same = _chelsea(513, 513)  # at the model's size the squash is the identity
    assert np.array_equal(backend.run(same), _reference(name, same, None, None))
    other = _chelsea(301, 187)  # elsewhere uint8 rounding differs by a level here and there
    agree = (backend.run(other) == _reference(name, other, None, None)).mean()
    assert agree > 0.98


def test_a_batch_of_tiles_runs_in_one_call(starter):
    tiles = np.concatenate([_chelsea(257, 257), _chelsea(257, 257)[:, ::-1]])
    both = np.array(starter.backend.run(tiles))
    one = np.array(starter.backend.run(tiles[1:]))
    assert both.shape[0] == 2
    assert np.abs(both[1] - one[0]).max() < 1e-4


def test_numpy_squash_is_bilinear_with_half_pixel_centres():
    x = np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1).repeat(3, axis=3) * 10
    out = squash(x, (1, 8))[0, 0, :, 0]  # 4 -> 8 columns: centres at 0.25 steps, edges held
    assert np.allclose(out, [0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30])
    assert np.array_equal(squash(x, (1, 4))[0], x[0].astype(np.float32))


@pytest.mark.parametrize(
    "size", [(4000, 100), (640, 480), (514, 514), (513, 513), (100, 3000), (256, 256), (7, 5)]
)
def test_model_pixels_box_reduce_to_within_twice_the_input(size):
    model = (257, 257)
    px = model_pixels(Image.new("RGB", size, (10, 200, 30)), model)
    h, w = px.shape[:2]
    for got, orig, want in ((w, size[0], model[0]), (h, size[1], model[1])):
        assert got < 2 * want or got == orig  # within 2x, or left alone
        assert got >= min(orig, want)  # never below the model's size
    assert (px == (10, 200, 30)).all()
