"""The work done in a worker thread: decode, segment, draw and encode one request.

Everything CPU-bound is here, off the event loop; the result is the body to send and
the summary that goes into JSON or headers.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .. import viz
from ..errors import ImageTooLargeError
from ..image import load_image, resize
from ..memory import TRIM_AFTER_PIXELS, release_free_memory
from ..postprocess.probabilities import class_plane_u8, probability_pixels, reduced_size
from ..result import SegmentationResult
from ..segmenter import Segmenter, SegmentOptions
from . import exposure
from .config import MiB
from .options import RequestOptions

CONFIDENCE_BUDGET = 128 * MiB  # float32 bytes for all classes' probability maps, per request


@dataclass
class Rendered:
    """What one request produced: the body to send and the summary for headers."""

    body: bytes
    media_type: str
    summary: dict[str, Any]


def segmenter_options(seg: Segmenter, opts: RequestOptions) -> SegmentOptions:
    """What one request asks of the Segmenter: its defaults, with confidence masks for
    output=confidence and the accurate preset for accurate=true."""
    wants = opts.output == "confidence" or (
        opts.output in ("cutout", "effect") and seg.backend.output_kind != "argmax"
    )
    options = seg.options.replace(output_confidence_masks=wants)
    return options.accurate_preset(seg.accurate_scales) if opts.accurate else options


def confidence_png(
    seg: Segmenter, data: bytes, index: int, options: SegmentOptions
) -> tuple[SegmentationResult, bytes, tuple[int, int]]:
    """One class's probability as an 8-bit PNG at the original size, in bounded time and memory.

    All C probability maps at full size cost 4*C bytes a pixel (1 GB for a 12 MP photo) and
    seconds of upsampling, so they are computed at twice the model's resolution per side (less
    if CONFIDENCE_BUDGET says so) and only the class asked for is brought to full size. The
    model's own output is that coarse, so nothing is lost: bilinear of bilinear is bilinear.
    """
    t0 = time.perf_counter()
    n, model_hw = len(seg.label_set), seg.input_size
    # decoded at about the reduced size where the JPEG decoder can (its DCT scaling)
    side = int(math.sqrt(probability_pixels(model_hw, n, CONFIDENCE_BUDGET)))
    loaded = load_image(data, max_pixels=seg.max_pixels, min_size=(side, side))
    full = loaded.size
    small = reduced_size(full, model_hw, n, CONFIDENCE_BUDGET)
    img = loaded.image if loaded.image.size == small else resize(loaded.image, small)
    decode_ms = (time.perf_counter() - t0) * 1e3
    result = seg.segment(img, options)
    result.timings.decode += decode_ms
    t1 = time.perf_counter()
    out = Image.fromarray(class_plane_u8(result.confidence(index), full), mode="L")
    result.timings.postprocess += (time.perf_counter() - t1) * 1e3
    return result, viz.png_bytes(out), full


def effect_png(
    seg: Segmenter, picture: Image.Image, opts: RequestOptions, options: SegmentOptions
) -> tuple[SegmentationResult, bytes]:
    """output=cutout / effect: the matte from the probabilities of a copy reduced as for
    output=confidence (bounded memory), refined along the full-size photo's edges."""
    from ..effects import apply
    from ..matte import matte_from_probability, subject_probability

    full = picture.size
    small = reduced_size(full, seg.input_size, len(seg.label_set), CONFIDENCE_BUDGET)
    result = seg.segment(picture if small == full else resize(picture, small), options)
    t = time.perf_counter()
    p, soft = subject_probability(result, opts.class_names())
    alpha = matte_from_probability(p, full, picture, soft=soft, feather=opts.feather)
    png = viz.png_bytes(apply(picture, alpha, opts.effect_spec()))
    result.timings.postprocess += (time.perf_counter() - t) * 1e3
    return result, png


def refuse_bombs(data: bytes, max_pixels: int | None) -> None:
    """Check the pixel count from the file header alone, before anything decodes.

    ``load_image`` checks too, but only after ``getexif()``, which for a PNG decodes the whole
    image: a 110 KB PNG declaring 30000x30000 would cost ~1 GB and seconds before the check.
    """
    if max_pixels is None:
        return
    from ..image import open_image

    try:
        with open_image(io.BytesIO(data), max_pixels=max_pixels) as im:  # the header only
            w, h = im.size
    except ImageTooLargeError:
        raise
    except Exception:  # undecodable or refused: load_image will say why, in its words
        return
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(the server's --max-pixels)"
        )


def _gives_memory_back(render_fn):
    """After a large picture, the memory its arrays took goes back to the system (once
    they are freed, on return): a service must not stay at its largest request."""

    @functools.wraps(render_fn)
    def wrapper(*args, **kwargs) -> Rendered:
        rendered = render_fn(*args, **kwargs)
        width, height = rendered.summary.get("width", 0), rendered.summary.get("height", 0)
        if width * height >= TRIM_AFTER_PIXELS:
            release_free_memory()
        return rendered

    return wrapper


@_gives_memory_back
def render(
    seg: Segmenter,
    data: bytes,
    opts: RequestOptions,
    class_index: int | None,
    started: float,
    admitted: float,
) -> Rendered:
    """Decode, segment, draw and encode: everything CPU-bound, off the event loop."""
    queue_ms = (time.perf_counter() - admitted) * 1e3
    refuse_bombs(data, seg.max_pixels)
    options = segmenter_options(seg, opts)
    png: bytes | None = None
    encode_ms = 0.0
    if opts.output == "confidence":
        assert class_index is not None
        result, png, size = confidence_png(seg, data, class_index, options)
    else:
        t0 = time.perf_counter()
        picture = load_image(data, max_pixels=seg.max_pixels).image  # decoded once, for both
        decode_ms = (time.perf_counter() - t0) * 1e3
        if opts.output in ("cutout", "effect"):  # matte, effect and PNG count as postprocess
            result, png = effect_png(seg, picture, opts, options)
        else:
            result = seg.segment(picture, options)
        result.timings.decode += decode_ms
        size = picture.size
        t = time.perf_counter()
        if opts.output == "overlay":
            # encoded band by band: no second full-size picture beside the photo
            png = viz.overlay_png(picture, result, alpha=opts.alpha, legend=opts.legend)
            del picture
        elif opts.output == "mask":
            png = viz.png_bytes(viz.mask_image(result))
        encode_ms = (time.perf_counter() - t) * 1e3
    summary = result.summary()
    summary.pop("source", None)
    timings = summary.pop("timings_ms")
    timings.update(queue=round(queue_ms, 3), encode=round(encode_ms, 3))
    summary.update(
        width=size[0],
        height=size[1],
        output=opts.output,
        accurate=options.accurate,
        labels=list(result.labels),
        timings_ms=timings,
    )
    if png is None or opts.embed:
        if png is not None:
            summary["image"] = base64.b64encode(png).decode("ascii")
            summary["image_type"] = "image/png"
        timings["server"] = round((time.perf_counter() - started) * 1e3, 3)
        body = json.dumps(summary, separators=(",", ":")).encode()
        return Rendered(body, "application/json", summary)
    timings["server"] = round((time.perf_counter() - started) * 1e3, 3)
    return Rendered(png, "image/png", summary)


def server_timing(timings: dict[str, Any]) -> str:
    keys = ("queue", "decode", "preprocess", "invoke", "postprocess", "encode", "server")
    return ", ".join(f"{k};dur={timings[k]:.1f}" for k in keys if k in timings)


def png_headers(summary: dict[str, Any]) -> dict[str, str]:
    classes = {c["label"]: c["fraction"] for c in summary["classes"]}
    return {
        "X-Seglite-Model": exposure.header_safe(summary["model"]),
        "X-Seglite-Size": f"{summary['width']}x{summary['height']}",
        "X-Seglite-Classes": json.dumps(classes, separators=(",", ":"), ensure_ascii=True),
        "Content-Disposition": f'inline; filename="{summary["output"]}.png"',
    }
