"""Alpha mattes on real models and photos: range, soft edges, agreement with the masks, and the
guided filter against a direct (per-pixel 3x3 solve) implementation of He et al."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, PETS_VOC, model_file
from PIL import Image

from seglite import Segmenter
from seglite.errors import OptionError
from seglite.matte import box_mean, guided_filter

ASTRONAUT = EXAMPLES / "astronaut.jpg"


@pytest.fixture(scope="module")
def selfie_result():
    seg = Segmenter("selfie", num_threads=2, output_confidence_masks=True)
    return seg.segment(ASTRONAUT)


def _direct_box(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape[:2]
    out = np.empty(x.shape, np.float64)
    for y in range(h):
        for xx in range(w):
            out[y, xx] = x[max(0, y - r) : y + r + 1, max(0, xx - r) : xx + r + 1].mean(axis=(0, 1))
    return out


def _direct_guided(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    m = lambda z: _direct_box(z, r)  # noqa: E731
    mi, mp = m(guide), m(p)
    cov = m(guide * p[..., None]) - mi * mp[..., None]
    sigma = np.empty((*p.shape, 3, 3))
    for i in range(3):
        for j in range(3):
            sigma[..., i, j] = m(guide[..., i] * guide[..., j]) - mi[..., i] * mi[..., j]
    a = np.linalg.solve(sigma + eps * np.eye(3), cov[..., None])[..., 0]
    b = mp - (a * mi).sum(-1)
    return (m(a) * guide).sum(-1) + m(b)


def test_box_mean_and_guided_filter_match_the_direct_formulas():
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((48, 40)), np.float32) / 255
    for r in (1, 3, 30):  # 30: the window is wider than the image
        np.testing.assert_allclose(box_mean(photo, r), _direct_box(photo, r), atol=2e-5)
    p = (photo.mean(-1) > 0.5).astype(np.float32)
    for eps in (1e-3, 1e-2):
        ours = guided_filter(photo, p, 3, eps)
        np.testing.assert_allclose(ours, _direct_guided(photo, p, 3, eps), atol=5e-4)


def test_person_matte_on_the_astronaut(selfie_result):
    r = selfie_result
    alpha = r.alpha(["person"], image=ASTRONAUT)
    h, w = r.category_mask.shape
    assert alpha.shape == (h, w) and alpha.dtype == np.float32
    assert alpha.min() == 0.0 and alpha.max() == 1.0
    person = r.category_mask == 1
    assert ((alpha >= 0.5) == person).mean() >= 0.95
    assert (alpha[person] > 0.5).mean() > 0.97 and (alpha[~person] < 0.5).mean() > 0.97
    band = (alpha > 0) & (alpha < 1)
    assert 0.005 < band.mean() < 0.15  # a soft edge, not a soft picture
    # The soft band lies along the outline of the mask, not inside the person or the wall.
    edge = np.zeros_like(person)
    edge[1:] |= person[1:] != person[:-1]
    edge[:, 1:] |= person[:, 1:] != person[:, :-1]
    near = box_mean(edge.astype(np.float32), 12) > 0
    assert near[band].mean() > 0.9
    assert (alpha[: h // 6, : w // 6] == 0).all()  # the wall top left: fully transparent


def test_threshold_and_feather_do_what_they_say(selfie_result):
    r = selfie_result
    base = r.alpha(image=ASTRONAUT)  # default classes: all but background = person
    np.testing.assert_array_equal(base, r.alpha(["person"], image=ASTRONAUT))
    tight, loose = r.alpha(threshold=0.8), r.alpha(threshold=0.2)
    assert tight.sum() < r.alpha().sum() < loose.sum()
    soft = lambda a: ((a > 0) & (a < 1)).mean()  # noqa: E731
    assert soft(r.alpha(image=ASTRONAUT, feather=12)) > 1.5 * soft(base)
    for bad in ({"threshold": 0}, {"threshold": 1.5}, {"feather": -1}, {"grid": 4}):
        with pytest.raises(OptionError):
            r.alpha(**bad)
    with pytest.raises(OptionError, match="no class 'cat'"):
        r.alpha(["cat"])
    with pytest.raises(OptionError):
        r.alpha([7])


def test_argmax_model_gets_a_feathered_matte():
    seg = Segmenter(model_file("deeplabv3_mnv2_pascal_quant.tflite"), num_threads=2)
    r = seg.segment(ASTRONAUT)
    assert r.confidence_masks is None
    alpha = r.alpha(["person"], image=ASTRONAUT)
    person = r.category_mask == r.label_set.index("person")
    assert ((alpha >= 0.5) == person).mean() >= 0.95
    band = (alpha > 0) & (alpha < 1)
    assert band.mean() > 0.005  # the hard ArgMax edge became soft
    hard = r.alpha(["person"], feather=0, refine=False)
    assert ((hard > 0) & (hard < 1)).mean() < band.mean()


def test_refinement_follows_fur_at_least_as_well_as_the_upsampled_probability():
    """On the pets (cat or dog vs background, boundary band ignored) the refined matte's IoU is
    no worse than the plain probability's: the filter moves the edge to the photo's edges."""
    seg = Segmenter("deeplabv3", num_threads=2, output_confidence_masks=True)
    raw_iou, refined_iou = [], []
    for jpg in sorted((PETS_VOC / "JPEGImages").glob("*.jpg"))[:6]:
        truth = np.asarray(Image.open(PETS_VOC / "SegmentationClass" / f"{jpg.stem}.png"))
        valid = truth != 255
        pet = (truth > 0) & valid
        r = seg.segment(jpg)
        for out, alpha in ((raw_iou, r.alpha()), (refined_iou, r.alpha(image=jpg))):
            mine = (alpha >= 0.5) & valid
            out.append((mine & pet).sum() / max(1, (mine | pet).sum()))
    assert np.mean(refined_iou) >= np.mean(raw_iou) - 0.01, (raw_iou, refined_iou)
    assert np.mean(refined_iou) > 0.5
