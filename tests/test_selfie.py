"""MediaPipe's person models run through the same Segmenter: one sigmoid channel, two classes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES

from seglite import Segmenter, zoo


@pytest.mark.parametrize("name", ["selfie", "selfie-landscape"])
def test_person_mask_on_the_astronaut(name):
    assert zoo.resolve(name).origin == "packaged"  # shipped inside the package
    seg = Segmenter(name, num_threads=2, output_confidence_masks=True)
    assert seg.backend.output_kind == "sigmoid" and seg.label_set.names == ("background", "person")
    result = seg.segment(EXAMPLES / "astronaut.jpg")
    mask, conf = result.category_mask, result.confidence_masks
    h, w = mask.shape
    assert conf.shape == (2, h, w) and conf.min() >= 0 and conf.max() <= 1
    np.testing.assert_allclose(conf.sum(0), 1, atol=1e-5)  # background + person
    assert (mask == (conf[1] > 0.5)).mean() > 0.999
    # She fills the lower middle of the photo; the wall top left and the flag are not her.
    person = mask[h // 3 :, w // 4 : 3 * w // 4]
    assert person.mean() > 0.8
    assert mask[: h // 6, : w // 6].mean() < 0.05 and mask[: h // 3, -w // 6 :].mean() < 0.2
    assert 0.3 < mask.mean() < 0.75


def test_mask_alone_and_accurate_mode_agree_with_the_confidence_path():
    image = EXAMPLES / "astronaut.jpg"
    both = Segmenter("selfie", num_threads=2, output_confidence_masks=True).segment(image)
    alone = Segmenter("selfie", num_threads=2).segment(image)
    assert np.array_equal(alone.category_mask, both.category_mask)
    accurate = Segmenter("selfie", num_threads=2, scales=(1.0, 1.5), flip=True).segment(image)
    assert (accurate.category_mask == both.category_mask).mean() > 0.97
